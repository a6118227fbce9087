//! What a partition may cost: a broker holds at most `max.partitions`, a near-empty partition
//! reserves a small step of disk rather than a whole segment, and files dropped into a
//! partition directory are not read as its log.

mod common;

use std::os::unix::fs::MetadataExt;
use std::path::Path;

use common::{block_on, Broker, WAIT};
use rdkafka::admin::{AdminOptions, NewPartitions, NewTopic, TopicReplication};
use rdkafka::consumer::Consumer;
use rdkafka::producer::{BaseRecord, Producer};
use rdkafka::types::RDKafkaErrorCode;

/// Bytes of disk the files under `dir` occupy (allocated blocks, not apparent sizes).
fn disk_usage(dir: &Path) -> u64 {
    let mut total = 0;
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let meta = entry.metadata().unwrap();
        total += if meta.is_dir() {
            disk_usage(&entry.path())
        } else {
            meta.blocks() * 512
        };
    }
    total
}

#[test]
fn topics_past_max_partitions_are_refused_by_name() {
    // The offsets and transaction state topics hold 100 of the 110.
    let broker = Broker::start_with_config("\"max.partitions\" = 110\n");
    let admin = broker.admin();
    let create = |name: &str, partitions: i32| {
        let topic = NewTopic::new(name, partitions, TopicReplication::Fixed(1));
        block_on(admin.create_topics([&topic], &AdminOptions::new())).expect("request")[0].clone()
    };
    assert!(create("fits", 8).is_ok());
    let refused = create("too-many", 3).unwrap_err();
    assert_eq!(refused.1, RDKafkaErrorCode::PolicyViolation);
    let grow = NewPartitions::new("fits", 11);
    let grown = block_on(admin.create_partitions([&grow], &AdminOptions::new())).expect("request");
    assert_eq!(grown[0].clone().unwrap_err().1, RDKafkaErrorCode::PolicyViolation);
    assert!(create("last-two", 2).is_ok(), "up to the limit is allowed");
}

#[test]
fn near_empty_partitions_cost_little_disk() {
    let broker = Broker::start();
    broker.create_topic("many", 200);
    let before = disk_usage(broker.data_dir());
    let producer = broker.producer(&[("acks", "all")]);
    for partition in 0..200 {
        common::send(
            &producer,
            BaseRecord::to("many")
                .partition(partition)
                .payload(&b"x"[..])
                .key(&[][..]),
        );
    }
    producer.flush(WAIT).unwrap();
    let grown = disk_usage(broker.data_dir()) - before;
    // A 16 MiB reservation per partition would be 3.2 GB; a small first step is well under
    // 1 MiB each.
    assert!(
        grown < 200 * 1024 * 1024,
        "200 one-record partitions took {grown} bytes of disk"
    );
}

#[test]
fn a_stray_segment_file_is_set_aside_not_read_as_the_log() {
    let mut broker = Broker::start();
    broker.create_topic("strayed", 1);
    let producer = broker.producer(&[("acks", "all")]);
    for i in 0..300 {
        let value = format!("v{i}");
        common::send(
            &producer,
            BaseRecord::to("strayed").payload(value.as_bytes()).key(&[][..]),
        );
    }
    producer.flush(WAIT).unwrap();
    drop(producer);
    broker.stop();
    let dir = broker.data_dir().join("strayed-0");
    std::fs::write(dir.join("00000000000000999999.log"), b"").unwrap();
    broker.restart();

    let consumer = broker.consumer(&[]);
    let (low, high) = consumer.fetch_watermarks("strayed", 0, WAIT).unwrap();
    assert_eq!((low, high), (0, 300), "the stray file did not move the log's end");
    broker.wait_for_log("about the stray segment", |line| {
        line.contains("ignoring") && line.contains("00000000000000999999.log")
    });
    assert!(dir.join("00000000000000999999.log.stray").exists());
    assert!(!dir.join("00000000000000999999.log").exists());

    // The log goes on at offset 300.
    let producer = broker.producer(&[("acks", "all")]);
    common::send(&producer, BaseRecord::to("strayed").payload(&b"next"[..]).key(&[][..]));
    producer.flush(WAIT).unwrap();
    let (_, high) = consumer.fetch_watermarks("strayed", 0, WAIT).unwrap();
    assert_eq!(high, 301);
}
