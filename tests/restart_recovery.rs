//! A restarted broker serves everything it had and continues offsets; a log cut mid-batch
//! (a torn tail) is truncated to its last whole batch on start.

mod common;

use std::fs::OpenOptions;

use common::{assign, consume, flush, send, Broker};
use rdkafka::consumer::Consumer;
use rdkafka::message::Message;
use rdkafka::producer::BaseRecord;
use rdkafka::Offset;

fn produce(broker: &Broker, topic: &str, from: usize, to: usize) {
    let producer = broker.producer(&[("linger.ms", "0"), ("batch.num.messages", "50")]);
    for i in from..to {
        send(
            &producer,
            BaseRecord::to(topic)
                .partition(0)
                .key("k".as_bytes())
                .payload(format!("record-{i}").as_bytes()),
        );
    }
    flush(&producer);
}

fn read_all(broker: &Broker, topic: &str, count: usize) -> Vec<(i64, String)> {
    let consumer = broker.consumer(&[]);
    assign(&consumer, topic, 1, Offset::Beginning);
    consume(&consumer, count, |m| {
        (m.offset(), String::from_utf8(m.payload().unwrap().to_vec()).unwrap())
    })
}

#[test]
fn restart_keeps_data_and_continues_offsets() {
    let mut broker = Broker::start();
    broker.create_topic("durable", 1);
    produce(&broker, "durable", 0, 1000);
    broker.restart();
    produce(&broker, "durable", 1000, 1500);
    // Ctrl-C stops as cleanly as SIGTERM.
    broker.stop_with(libc::SIGINT);
    broker.restart();
    let records = read_all(&broker, "durable", 1500);
    for (i, (offset, value)) in records.iter().enumerate() {
        assert_eq!(*offset, i as i64);
        assert_eq!(value, &format!("record-{i}"));
    }
}

#[test]
fn torn_tail_is_truncated_to_the_last_whole_batch() {
    let mut broker = Broker::start();
    broker.create_topic("torn", 1);
    produce(&broker, "torn", 0, 500);
    broker.stop();

    let log = broker.data_dir().join("torn-0").join("00000000000000000000.log");
    let length = std::fs::metadata(&log).unwrap().len();
    // Cut the file inside its last batch, and drop the index so it is rebuilt too.
    let file = OpenOptions::new().write(true).open(&log).unwrap();
    file.set_len(length - 7).unwrap();
    drop(file);
    let _ = std::fs::remove_file(log.with_extension("index"));
    // A torn write only happens to data not yet flushed: as after a crash whose last
    // recovery-point checkpoint came before the final appends.
    std::fs::write(broker.data_dir().join("torn-0").join("recovery-point"), "250").unwrap();

    broker.restart();
    let consumer = broker.consumer(&[]);
    let (low, high) = consumer.fetch_watermarks("torn", 0, common::WAIT).expect("watermarks");
    assert_eq!(low, 0);
    assert!(
        high > 0 && high < 500,
        "the torn last batch is gone, the rest kept: high watermark {high}"
    );
    assert!(
        std::fs::metadata(&log).unwrap().len() < length - 7,
        "log truncated to a batch boundary"
    );

    produce(&broker, "torn", high as usize, 600);
    let records = read_all(&broker, "torn", 600);
    for (i, (offset, value)) in records.iter().enumerate() {
        assert_eq!(*offset, i as i64, "offsets continue after the truncation point");
        assert_eq!(value, &format!("record-{i}"));
    }
}
