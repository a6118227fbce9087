//! Damage on disk is recovered when it is a torn or zero-filled tail, and refused, loudly and
//! for that partition only, when it lies inside the log.

mod common;

use std::fs::OpenOptions;
use std::io::{Seek, SeekFrom, Write};

use common::raw::call;
use common::{assign, consume, flush, send, Broker, WAIT};
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::{
    ApiKey, BrokerId, FetchRequest, FetchResponse, MetadataRequest, MetadataResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use rdkafka::consumer::Consumer;
use rdkafka::message::Message;
use rdkafka::producer::BaseRecord;
use rdkafka::Offset;

const KAFKA_STORAGE_ERROR: i16 = 56;

fn produce(broker: &Broker, topic: &str, from: usize, to: usize) {
    // One record per batch: a damaged batch is followed by many intact ones.
    let producer = broker.producer(&[("linger.ms", "0"), ("batch.num.messages", "1")]);
    for i in from..to {
        send(
            &producer,
            BaseRecord::to(topic)
                .key(b"k".as_slice())
                .payload(format!("record-{i}").as_bytes()),
        );
    }
    flush(&producer);
}

fn segment(broker: &Broker, topic: &str, base: i64) -> std::path::PathBuf {
    broker
        .data_dir()
        .join(format!("{topic}-0"))
        .join(format!("{base:020}.log"))
}

fn flip_byte(path: &std::path::Path, at: u64) {
    let mut file = OpenOptions::new().read(true).write(true).open(path).unwrap();
    let mut byte = [0u8; 1];
    file.seek(SeekFrom::Start(at)).unwrap();
    std::io::Read::read_exact(&mut file, &mut byte).unwrap();
    file.seek(SeekFrom::Start(at)).unwrap();
    file.write_all(&[byte[0] ^ 0xff]).unwrap();
}

fn fetch_error(broker: &Broker, topic: &str) -> i16 {
    let request = FetchRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_max_wait_ms(0)
        .with_max_bytes(1 << 20)
        .with_topics(vec![FetchTopic::default()
            .with_topic(TopicName(StrBytes::from_string(topic.to_string())))
            .with_partitions(vec![FetchPartition::default()
                .with_partition(0)
                .with_fetch_offset(0)
                .with_partition_max_bytes(1 << 20)])]);
    let response: FetchResponse = call(broker, ApiKey::Fetch, 12, &request);
    response.responses[0].partitions[0].error_code
}

#[test]
fn corruption_inside_the_log_takes_only_that_partition_offline() {
    let mut broker = Broker::start();
    broker.create_topic("damaged", 1);
    broker.create_topic("healthy", 1);
    produce(&broker, "damaged", 0, 100);
    produce(&broker, "healthy", 0, 10);
    broker.stop();

    let log = segment(&broker, "damaged", 0);
    let length = std::fs::metadata(&log).unwrap().len();
    flip_byte(&log, length / 2);
    broker.restart();

    assert_eq!(
        fetch_error(&broker, "damaged"),
        KAFKA_STORAGE_ERROR,
        "the damaged partition is refused"
    );
    assert_eq!(std::fs::metadata(&log).unwrap().len(), length, "nothing was truncated");
    broker.wait_for_log("naming the corrupt file", |line| {
        line.contains("damaged-0 is offline") && line.contains("00000000000000000000.log") && line.contains("at byte")
    });
    // Metadata shows the partition leaderless (the refusal is announced to every shard, so
    // whichever shard answers knows); the healthy one keeps its leader.
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let leaders = partition_leaders(&broker);
        if leaders["damaged"] == (LEADER_NOT_AVAILABLE, -1) {
            assert_eq!(leaders["healthy"], (0, 0));
            break;
        }
        assert!(std::time::Instant::now() < deadline, "metadata still shows {leaders:?}");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    // Every other partition keeps working.
    produce(&broker, "healthy", 10, 20);
    let consumer = broker.consumer(&[]);
    assign(&consumer, "healthy", 1, Offset::Beginning);
    let values = consume(&consumer, 20, |m| {
        String::from_utf8(m.payload().unwrap().to_vec()).unwrap()
    });
    assert_eq!(values, (0..20).map(|i| format!("record-{i}")).collect::<Vec<_>>());
}

/// File positions of the batches of a segment, walking the length fields.
fn batch_positions(path: &std::path::Path) -> Vec<u64> {
    let bytes = std::fs::read(path).unwrap();
    let mut positions = Vec::new();
    let mut at = 0usize;
    while at + 12 <= bytes.len() {
        positions.push(at as u64);
        at += 12 + i32::from_be_bytes(bytes[at + 8..at + 12].try_into().unwrap()) as usize;
    }
    positions
}

#[test]
fn damage_to_flushed_data_is_refused_not_truncated() {
    // A damaged length field mid-log makes the rest unreadable: without the recovery point
    // it would pass for a torn tail and everything after it would be cut away.
    let mut broker = Broker::start();
    broker.create_topic("length", 1);
    broker.create_topic("cut", 1);
    produce(&broker, "length", 0, 100);
    produce(&broker, "cut", 0, 100);
    broker.stop();

    let length_log = segment(&broker, "length", 0);
    let positions = batch_positions(&length_log);
    assert_eq!(positions.len(), 100, "one batch per record");
    flip_byte(&length_log, positions[50] + 8);
    // A flushed segment cut short is lost acknowledged data, not a torn write.
    let cut_log = segment(&broker, "cut", 0);
    let cut_length = std::fs::metadata(&cut_log).unwrap().len() - 7;
    OpenOptions::new()
        .write(true)
        .open(&cut_log)
        .unwrap()
        .set_len(cut_length)
        .unwrap();

    broker.restart();
    for (topic, log, length) in [
        ("length", &length_log, std::fs::metadata(&length_log).unwrap().len()),
        ("cut", &cut_log, cut_length),
    ] {
        assert_eq!(fetch_error(&broker, topic), KAFKA_STORAGE_ERROR, "{topic} is refused");
        assert_eq!(
            std::fs::metadata(log).unwrap().len(),
            length,
            "{topic}: nothing was truncated"
        );
        broker.wait_for_log("naming the damage", |line| {
            line.contains(&format!("{topic}-0 is offline")) && line.contains("below the recovery point")
        });
    }
}

const LEADER_NOT_AVAILABLE: i16 = 5;

/// Per topic, partition 0's (error code, leader id) in a Metadata response.
fn partition_leaders(broker: &Broker) -> std::collections::HashMap<String, (i16, i32)> {
    let request = MetadataRequest::default().with_topics(None);
    let response: MetadataResponse = call(broker, ApiKey::Metadata, 12, &request);
    response
        .topics
        .iter()
        .map(|t| {
            let p = &t.partitions[0];
            (t.name.as_ref().unwrap().0.to_string(), (p.error_code, p.leader_id.0))
        })
        .collect()
}

#[test]
fn zero_filled_tail_pages_are_recovered() {
    let mut broker = Broker::start();
    broker.create_topic("padded", 1);
    produce(&broker, "padded", 0, 50);
    broker.stop();
    let log = segment(&broker, "padded", 0);
    let length = std::fs::metadata(&log).unwrap().len();
    let mut file = OpenOptions::new().append(true).open(&log).unwrap();
    file.write_all(&[0u8; 8192]).unwrap();
    drop(file);

    broker.restart();
    assert_eq!(
        std::fs::metadata(&log).unwrap().len(),
        length,
        "the zero pages are cut away"
    );
    produce(&broker, "padded", 50, 60);
    let consumer = broker.consumer(&[]);
    assign(&consumer, "padded", 1, Offset::Beginning);
    let records = consume(&consumer, 60, |m| {
        (m.offset(), String::from_utf8(m.payload().unwrap().to_vec()).unwrap())
    });
    for (i, (offset, value)) in records.into_iter().enumerate() {
        assert_eq!((offset, value), (i as i64, format!("record-{i}")));
    }
    let (_, high) = consumer.fetch_watermarks("padded", 0, WAIT).unwrap();
    assert_eq!(high, 60);
}

#[test]
fn corruption_in_a_sealed_segment_is_refused_when_read() {
    let mut broker = Broker::start();
    let topic = rdkafka::admin::NewTopic::new("sealed", 1, rdkafka::admin::TopicReplication::Fixed(1))
        .set("segment.bytes", "4096");
    common::block_on(
        broker
            .admin()
            .create_topics([&topic], &rdkafka::admin::AdminOptions::new()),
    )
    .unwrap();
    produce(&broker, "sealed", 0, 200);
    broker.stop();
    // Sealed segments are trusted at start-up (their indexes fit), so the damage is found by
    // the read that reaches it, which must refuse rather than serve or skip it.
    // The last byte is record data of the segment's last batch, inside its CRC.
    let sealed = segment(&broker, "sealed", 0);
    let length = std::fs::metadata(&sealed).unwrap().len();
    flip_byte(&sealed, length - 1);
    broker.restart();
    assert_eq!(fetch_error(&broker, "sealed"), KAFKA_STORAGE_ERROR);
}
