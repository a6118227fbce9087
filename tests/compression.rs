//! Batches compressed by librdkafka with each codec are stored as sent and come back intact.

mod common;

use common::{assign, consume, flush, send, Broker};
use rdkafka::message::Message;
use rdkafka::producer::BaseRecord;
use rdkafka::Offset;

const RECORDS: usize = 2_000;

#[test]
fn every_codec_round_trips_unchanged() {
    let broker = Broker::start();
    for codec in ["gzip", "snappy", "lz4", "zstd"] {
        let topic = format!("compressed-{codec}");
        broker.create_topic(&topic, 2);
        let producer = broker.producer(&[("compression.codec", codec), ("linger.ms", "20")]);
        for i in 0..RECORDS {
            // Repetitive values so every codec actually shrinks the batch.
            let value = format!("{codec} record {i} {}", "abc".repeat(30));
            send(
                &producer,
                BaseRecord::to(&topic)
                    .key(i.to_string().as_bytes())
                    .payload(value.as_bytes()),
            );
        }
        flush(&producer);

        let consumer = broker.consumer(&[]);
        assign(&consumer, &topic, 2, Offset::Beginning);
        let mut values = consume(&consumer, RECORDS, |m| {
            String::from_utf8(m.payload().expect("payload").to_vec()).expect("utf-8")
        });
        values.sort();
        let mut expected: Vec<String> = (0..RECORDS)
            .map(|i| format!("{codec} record {i} {}", "abc".repeat(30)))
            .collect();
        expected.sort();
        assert_eq!(values, expected, "{codec}");

        let stored: u64 = (0..2)
            .map(|p| {
                let dir = broker.data_dir().join(format!("{topic}-{p}"));
                std::fs::read_dir(dir)
                    .unwrap()
                    .flatten()
                    .filter(|e| e.file_name().to_string_lossy().ends_with(".log"))
                    .map(|e| e.metadata().unwrap().len())
                    .sum::<u64>()
            })
            .sum();
        let raw: usize = expected.iter().map(String::len).sum();
        assert!(
            stored < raw as u64 / 2,
            "{codec}: {stored} bytes on disk for {raw} bytes of values: batches were not stored compressed"
        );
    }
}
