//! ListOffsets through librdkafka: earliest and latest (watermarks), and offsets for
//! timestamps found through the sparse time index across many batches and a segment roll.

mod common;

use common::{flush, send, Broker};
use rdkafka::consumer::Consumer;
use rdkafka::producer::BaseRecord;
use rdkafka::{Offset, TopicPartitionList};

const RECORDS: i64 = 3_000;
const BASE: i64 = 1_600_000_000_000;

fn timestamp(i: i64) -> i64 {
    BASE + i * 10
}

#[test]
fn earliest_latest_and_by_timestamp() {
    let mut broker = Broker::start();
    // Small segments so the lookup crosses segment boundaries, and tiny batches so the time
    // index is sparse relative to the batches.
    let admin = broker.admin();
    let topic = rdkafka::admin::NewTopic::new("timeline", 1, rdkafka::admin::TopicReplication::Fixed(1))
        .set("segment.bytes", "65536");
    let created = common::block_on(admin.create_topics([&topic], &rdkafka::admin::AdminOptions::new())).unwrap();
    assert!(created[0].is_ok());

    let producer = broker.producer(&[("linger.ms", "0"), ("batch.num.messages", "7")]);
    for i in 0..RECORDS {
        let value = vec![b'x'; 100];
        send(
            &producer,
            BaseRecord::to("timeline")
                .key(b"k".as_slice())
                .payload(value.as_slice())
                .timestamp(timestamp(i)),
        );
    }
    flush(&producer);
    let segments = std::fs::read_dir(broker.data_dir().join("timeline-0"))
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".log"))
        .count();
    assert!(segments > 2, "segment.bytes rolled the log ({segments} segments)");

    check_lookups(&broker);

    // Lose the index files of the first (sealed) segment: a restart rebuilds them from the log
    // and every lookup still lands on the same record.
    broker.stop();
    let dir = broker.data_dir().join("timeline-0");
    std::fs::remove_file(dir.join("00000000000000000000.index")).unwrap();
    std::fs::remove_file(dir.join("00000000000000000000.timeindex")).unwrap();
    broker.restart();
    check_lookups(&broker);
    assert!(dir.join("00000000000000000000.log").exists());
}

fn check_lookups(broker: &Broker) {
    let consumer = broker.consumer(&[]);
    let (low, high) = consumer.fetch_watermarks("timeline", 0, common::WAIT).unwrap();
    assert_eq!((low, high), (0, RECORDS));

    for (asked, expected) in [
        (timestamp(0) - 1_000, Offset::Offset(0)),
        (timestamp(0), Offset::Offset(0)),
        (timestamp(1234), Offset::Offset(1234)),
        (timestamp(1234) + 5, Offset::Offset(1235)),
        (timestamp(2999), Offset::Offset(2999)),
        (timestamp(2999) + 1, Offset::End),
    ] {
        let mut list = TopicPartitionList::new();
        list.add_partition_offset("timeline", 0, Offset::Offset(asked)).unwrap();
        let found = consumer.offsets_for_times(list, common::WAIT).unwrap();
        let offset = found.find_partition("timeline", 0).unwrap().offset();
        assert_eq!(offset, expected, "offset for timestamp {asked}");
    }
}

/// `segment.ms` rolls a segment once the active one is older than it, on the next append.
#[test]
fn segment_ms_rolls_by_age() {
    let broker = Broker::start();
    let topic =
        rdkafka::admin::NewTopic::new("aging", 1, rdkafka::admin::TopicReplication::Fixed(1)).set("segment.ms", "100");
    let created = common::block_on(
        broker
            .admin()
            .create_topics([&topic], &rdkafka::admin::AdminOptions::new()),
    )
    .unwrap();
    assert!(created[0].is_ok());
    let producer = broker.producer(&[("linger.ms", "0")]);
    let dir = broker.data_dir().join("aging-0");
    let segments = || {
        std::fs::read_dir(&dir)
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().ends_with(".log"))
            .count()
    };
    let deadline = std::time::Instant::now() + common::WAIT;
    let mut sent = 0;
    while segments() < 2 {
        assert!(std::time::Instant::now() < deadline, "no roll after {sent} appends");
        send(
            &producer,
            BaseRecord::to("aging").key(b"k".as_slice()).payload(b"tick".as_slice()),
        );
        flush(&producer);
        sent += 1;
    }
    let consumer = broker.consumer(&[]);
    let (low, high) = consumer.fetch_watermarks("aging", 0, common::WAIT).unwrap();
    assert_eq!((low, high), (0, sent));
}
