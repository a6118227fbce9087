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
    let broker = Broker::start();
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
