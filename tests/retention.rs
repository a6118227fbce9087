//! Retention deletes whole closed segments by size and by age; DeleteRecords moves the log
//! start explicitly and durably; consumers below the log start are reset by
//! `auto.offset.reset`.

mod common;

use std::time::{Duration, Instant};

use common::{assign, block_on, consume, flush, send, Broker, WAIT};
use rdkafka::admin::AdminOptions;
use rdkafka::consumer::Consumer;
use rdkafka::message::Message;
use rdkafka::producer::BaseRecord;
use rdkafka::{Offset, TopicPartitionList};

const CONFIG: &str = "\"log.retention.check.interval.ms\" = 100\n";

fn create(broker: &Broker, name: &str, configs: &[(&str, &str)]) {
    broker.create_topic_with(name, 1, configs);
}

fn produce(broker: &Broker, topic: &str, count: usize, timestamp: Option<i64>) {
    // One record per batch, so the small segments roll often.
    let producer = broker.producer(&[("linger.ms", "0"), ("batch.num.messages", "1")]);
    for i in 0..count {
        let value = format!("{i:0100}");
        let mut record = BaseRecord::to(topic).key(b"k".as_slice()).payload(value.as_bytes());
        if let Some(timestamp) = timestamp {
            record = record.timestamp(timestamp);
        }
        send(&producer, record);
    }
    flush(&producer);
}

fn watermarks(broker: &Broker, topic: &str) -> (i64, i64) {
    broker
        .consumer(&[])
        .fetch_watermarks(topic, 0, WAIT)
        .expect("watermarks")
}

fn log_bytes(broker: &Broker, topic: &str) -> u64 {
    std::fs::read_dir(broker.data_dir().join(format!("{topic}-0")))
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".log"))
        .map(|e| e.metadata().unwrap().len())
        .sum()
}

fn wait_until(what: &str, done: impl Fn() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !done() {
        assert!(Instant::now() < deadline, "{what} did not happen within {WAIT:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A consumer starting below the log start is reset to it and reads everything after.
fn consume_from_zero(broker: &Broker, topic: &str) -> Vec<i64> {
    let (low, high) = watermarks(broker, topic);
    let consumer = broker.consumer(&[("auto.offset.reset", "earliest")]);
    assign(&consumer, topic, 1, Offset::Offset(0));
    consume(&consumer, (high - low) as usize, |m| m.offset())
}

#[test]
fn retention_bytes_deletes_the_oldest_segments() {
    let broker = Broker::start_with_config(CONFIG);
    create(
        &broker,
        "sized",
        &[("segment.bytes", "4096"), ("retention.bytes", "8192")],
    );
    produce(&broker, "sized", 400, None);
    wait_until("retention by size", || {
        watermarks(&broker, "sized").0 > 0 && log_bytes(&broker, "sized") <= 8192 + 8192
    });
    let (low, high) = watermarks(&broker, "sized");
    assert_eq!(high, 400);
    let offsets = consume_from_zero(&broker, "sized");
    assert_eq!(offsets.first(), Some(&low), "reset to the log start");
    assert_eq!(offsets, (low..high).collect::<Vec<_>>());
}

#[test]
fn retention_ms_deletes_segments_whose_records_are_old() {
    let broker = Broker::start_with_config(CONFIG);
    create(
        &broker,
        "aged",
        &[("segment.bytes", "4096"), ("retention.ms", "600000")],
    );
    let hour_ago = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
        - 3_600_000;
    produce(&broker, "aged", 200, Some(hour_ago));
    produce(&broker, "aged", 1, None);
    // Every closed segment holds only hour-old records; the active one is never deleted.
    wait_until("retention by age", || watermarks(&broker, "aged").0 > 150);
    let (low, high) = watermarks(&broker, "aged");
    assert_eq!(high, 201);
    assert_eq!(consume_from_zero(&broker, "aged"), (low..high).collect::<Vec<_>>());
}

#[test]
fn delete_records_moves_the_log_start_durably() {
    let mut broker = Broker::start_with_config(CONFIG);
    create(&broker, "trimmed", &[("segment.bytes", "4096")]);
    produce(&broker, "trimmed", 300, None);
    let request = |offset: i64| {
        let mut list = TopicPartitionList::new();
        list.add_partition_offset("trimmed", 0, Offset::Offset(offset)).unwrap();
        list
    };
    let result = block_on(broker.admin().delete_records(&request(123), &AdminOptions::new())).expect("delete records");
    let element = result.find_partition("trimmed", 0).unwrap();
    assert!(element.error().is_ok(), "{:?}", element.error());
    assert_eq!(element.offset(), Offset::Offset(123), "low watermark");
    assert_eq!(watermarks(&broker, "trimmed"), (123, 300));

    let beyond = block_on(broker.admin().delete_records(&request(999), &AdminOptions::new())).expect("request");
    assert!(
        beyond.find_partition("trimmed", 0).unwrap().error().is_err(),
        "beyond the end is refused"
    );

    broker.restart();
    assert_eq!(
        watermarks(&broker, "trimmed"),
        (123, 300),
        "the log start survives a restart"
    );
    assert_eq!(consume_from_zero(&broker, "trimmed"), (123..300).collect::<Vec<_>>());
}
