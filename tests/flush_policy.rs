//! The flush policy: consumers see only durable records (the high watermark trails fsync);
//! acks=all and acks=1 are answered once their records are durable (so visible), cutting any
//! `flush.ms` delay short; acks=0 records are flushed in the background within `flush.ms`, or
//! sooner once `flush.messages` records are waiting.

mod common;

use std::time::{Duration, Instant};

use common::{flush, send, Broker, WAIT};
use rdkafka::consumer::Consumer;
use rdkafka::producer::BaseRecord;

fn create(broker: &Broker, name: &str, configs: &[(&str, &str)]) {
    broker.create_topic_with(name, 1, configs);
}

fn produce(broker: &Broker, topic: &str, acks: &str, count: usize) {
    let producer = broker.producer(&[("acks", acks)]);
    for i in 0..count {
        send(
            &producer,
            BaseRecord::to(topic)
                .key(b"k".as_slice())
                .payload(format!("{i}").as_bytes()),
        );
    }
    flush(&producer);
}

fn high_watermark(broker: &Broker, topic: &str) -> i64 {
    broker
        .consumer(&[])
        .fetch_watermarks(topic, 0, WAIT)
        .expect("watermarks")
        .1
}

fn wait_for_high_watermark(broker: &Broker, topic: &str, expected: i64) -> Duration {
    let started = Instant::now();
    while high_watermark(broker, topic) != expected {
        assert!(started.elapsed() < WAIT, "high watermark never reached {expected}");
        std::thread::sleep(Duration::from_millis(50));
    }
    started.elapsed()
}

#[test]
fn unacknowledged_records_become_visible_only_when_flushed() {
    let broker = Broker::start();
    create(&broker, "lazy", &[("flush.ms", "10000")]);
    produce(&broker, "lazy", "0", 50);
    // Sent without acks, written in the background, not yet durable: consumers cannot see
    // them yet.
    assert_eq!(high_watermark(&broker, "lazy"), 0, "visible before the flush");
    wait_for_high_watermark(&broker, "lazy", 50);
}

#[test]
fn acknowledged_records_do_not_wait_out_flush_ms() {
    for acks in ["all", "1"] {
        let broker = Broker::start();
        create(&broker, "eager", &[("flush.ms", "30000")]);
        let started = Instant::now();
        produce(&broker, "eager", acks, 20);
        let took = started.elapsed();
        // Durable before the answer: the high watermark already covers every record.
        assert_eq!(high_watermark(&broker, "eager"), 20, "acks={acks}");
        assert!(
            took < Duration::from_secs(15),
            "acks={acks} waited out flush.ms: {took:?}"
        );
    }
}

#[test]
fn flush_messages_flushes_before_flush_ms() {
    let broker = Broker::start();
    create(&broker, "counted", &[("flush.ms", "60000"), ("flush.messages", "100")]);
    produce(&broker, "counted", "0", 150);
    let waited = wait_for_high_watermark(&broker, "counted", 150);
    assert!(waited < Duration::from_secs(30), "flushed only after {waited:?}");
}
