//! Compaction: `cleanup.policy=compact` keeps the newest record per key in closed segments at
//! its original offset, removes tombstones once `delete.retention.ms` has passed, works with
//! `compact,delete`, survives restarts, and keeps the offsets topic small while committed
//! offsets stay right.

mod common;

use std::time::{Duration, Instant};

use common::{assign, block_on, consume, flush, send, Broker, WAIT};
use rdkafka::admin::{AdminOptions, AlterConfig, ResourceSpecifier};
use rdkafka::consumer::{CommitMode, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::BaseRecord;
use rdkafka::{Offset, TopicPartitionList};

const CONFIG: &str = "\"log.cleaner.backoff.ms\" = 100\n";

/// Every record of partition 0 up to the high watermark: (offset, key, value).
fn read_all(broker: &Broker, topic: &str) -> Vec<(i64, String, Option<String>)> {
    let consumer = broker.consumer(&[]);
    let (low, high) = consumer.fetch_watermarks(topic, 0, WAIT).expect("watermarks");
    assign(&consumer, topic, 1, Offset::Beginning);
    let text = |b: Option<&[u8]>| b.map(|b| String::from_utf8(b.to_vec()).unwrap());
    let mut records = Vec::new();
    let deadline = Instant::now() + WAIT;
    // Compaction leaves gaps, so the count is unknown: read until the high watermark.
    while records.last().is_none_or(|(offset, _, _)| offset + 1 < high) && high > low {
        assert!(Instant::now() < deadline, "did not reach the high watermark {high}");
        for (offset, key, value) in consume(&consumer, 1, |m| (m.offset(), text(m.key()), text(m.payload()))) {
            records.push((offset, key.unwrap(), value));
        }
    }
    records
}

/// Polls until `done` holds for the topic's records.
fn wait_for(broker: &Broker, topic: &str, what: &str, done: impl Fn(&[(i64, String, Option<String>)]) -> bool) {
    let deadline = Instant::now() + WAIT;
    loop {
        let records = read_all(broker, topic);
        if done(&records) {
            return;
        }
        let keyed = keyed(&records);
        assert!(
            Instant::now() < deadline,
            "{what} did not happen within {WAIT:?}: {} records, {} keyed: {:?}...",
            records.len(),
            keyed.len(),
            &keyed[..keyed.len().min(30)]
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn keyed(records: &[(i64, String, Option<String>)]) -> Vec<(i64, String, Option<String>)> {
    records.iter().filter(|(_, k, _)| k.starts_with('k')).cloned().collect()
}

/// `fillers_before` unique-key records of `filler_bytes`, then 30 rounds over keys k0..k19,
/// tombstones for k0..k4, then 200 small unique-key records so the keyed records all end up in
/// closed segments.
fn produce_history(broker: &Broker, topic: &str, fillers_before: usize, filler_bytes: usize) {
    let producer = broker.producer(&[("linger.ms", "0")]);
    let big = vec![b'x'; filler_bytes];
    for filler in 0..fillers_before {
        let k = format!("b{filler}");
        send(
            &producer,
            BaseRecord::to(topic).partition(0).key(k.as_bytes()).payload(&big[..]),
        );
        // One batch each, so they spread over segments retention can delete one by one.
        flush(&producer);
    }
    for round in 0..30 {
        for key in 0..20 {
            let (k, v) = (format!("k{key}"), format!("k{key}-r{round}"));
            send(
                &producer,
                BaseRecord::to(topic)
                    .partition(0)
                    .key(k.as_bytes())
                    .payload(v.as_bytes()),
            );
        }
        flush(&producer);
    }
    for key in 0..5 {
        let k = format!("k{key}");
        send(
            &producer,
            BaseRecord::<[u8], [u8]>::to(topic).partition(0).key(k.as_bytes()),
        );
    }
    flush(&producer);
    for filler in 0..200 {
        let k = format!("f{filler}");
        send(
            &producer,
            BaseRecord::to(topic)
                .partition(0)
                .key(k.as_bytes())
                .payload(&b"filler"[..]),
        );
        // Many small batches: segments roll after the tombstones whatever the batching.
        flush(&producer);
    }
}

/// What compaction leaves of the keyed history produced from offset `from`: the newest value
/// of k5..k19 (round 29) and, while young, the tombstones of k0..k4, at their original offsets.
fn compacted_history(from: i64, with_tombstones: bool) -> Vec<(i64, String, Option<String>)> {
    let mut expected: Vec<(i64, String, Option<String>)> = (5..20)
        .map(|key| (from + 29 * 20 + key, format!("k{key}"), Some(format!("k{key}-r29"))))
        .collect();
    if with_tombstones {
        expected.extend((0..5).map(|key| (from + 600 + key, format!("k{key}"), None)));
    }
    expected
}

#[test]
fn compaction_keeps_the_newest_record_per_key_and_drops_old_tombstones() {
    let mut broker = Broker::start_with_config(CONFIG);
    broker.create_topic_with(
        "compacted",
        1,
        &[
            ("cleanup.policy", "compact"),
            ("segment.bytes", "4096"),
            ("delete.retention.ms", "3600000"),
        ],
    );
    produce_history(&broker, "compacted", 0, 0);
    let expected = compacted_history(0, true);
    wait_for(&broker, "compacted", "compaction", |records| keyed(records) == expected);
    let fillers = read_all(&broker, "compacted").len() - expected.len();
    assert_eq!(fillers, 200, "records with unique keys all stay");

    // Once delete.retention.ms is 0, the tombstones go too. (AlterConfigs replaces the
    // whole set, so the other overrides are repeated.)
    let alter = AlterConfig::new(ResourceSpecifier::Topic("compacted"))
        .set("cleanup.policy", "compact")
        .set("segment.bytes", "4096")
        .set("delete.retention.ms", "0");
    block_on(broker.admin().alter_configs([&alter], &AdminOptions::new())).expect("alter configs");
    let expected = compacted_history(0, false);
    wait_for(&broker, "compacted", "tombstone removal", |records| {
        keyed(records) == expected
    });

    // The compacted log survives a clean restart and a crash, and takes appends after them.
    broker.restart();
    assert_eq!(keyed(&read_all(&broker, "compacted")), expected);
    broker.kill();
    broker.restart();
    let after = read_all(&broker, "compacted");
    assert_eq!(keyed(&after), expected);
    assert_eq!(after.last().unwrap().0, 804, "the log end is unchanged");
    let producer = broker.producer(&[]);
    send(
        &producer,
        BaseRecord::to("compacted")
            .partition(0)
            .key(&b"k7"[..])
            .payload(&b"k7-new"[..]),
    );
    flush(&producer);
    assert_eq!(read_all(&broker, "compacted").last().unwrap().0, 805);
}

#[test]
fn compact_delete_compacts_and_applies_retention() {
    let broker = Broker::start_with_config(&format!("{CONFIG}\"log.retention.check.interval.ms\" = 100\n"));
    broker.create_topic_with(
        "both",
        1,
        &[
            ("cleanup.policy", "compact,delete"),
            ("segment.bytes", "4096"),
            ("retention.bytes", "16384"),
            ("delete.retention.ms", "3600000"),
        ],
    );
    // 100 records of 300 bytes first: retention deletes their segments, compaction the
    // superseded keyed records after them.
    produce_history(&broker, "both", 100, 300);
    let consumer = broker.consumer(&[]);
    let expected = compacted_history(100, true);
    wait_for(&broker, "both", "compaction and retention", |records| {
        let (low, _) = consumer.fetch_watermarks("both", 0, WAIT).expect("watermarks");
        low > 0 && keyed(records) == expected
    });
}

#[test]
fn the_offsets_topic_is_compacted_and_commits_survive() {
    let mut broker = Broker::start_with_config(&format!(
        "{CONFIG}\"offsets.topic.num.partitions\" = 1\n\"offsets.topic.segment.bytes\" = 4096\n"
    ));
    broker.create_topic("tracked", 2);
    let consumer = broker.consumer(&[("group.id", "committer")]);
    for round in 1..=300i64 {
        let mut offsets = TopicPartitionList::new();
        offsets
            .add_partition_offset("tracked", 0, Offset::Offset(round))
            .unwrap();
        offsets
            .add_partition_offset("tracked", 1, Offset::Offset(round * 2))
            .unwrap();
        consumer.commit(&offsets, CommitMode::Sync).expect("commit");
    }
    drop(consumer);
    let offsets_dir = broker.data_dir().join("__consumer_offsets-0");
    let log_bytes = || -> u64 {
        std::fs::read_dir(&offsets_dir)
            .unwrap()
            .flatten()
            .filter(|e| e.path().extension().is_some_and(|x| x == "log"))
            .map(|e| e.metadata().unwrap().len())
            .sum()
    };
    // 300 commits of two offsets take tens of KiB uncompacted; compacted, the closed segments
    // hold little more than the newest commit of each partition.
    let deadline = Instant::now() + WAIT;
    while log_bytes() > 8192 {
        assert!(Instant::now() < deadline, "offsets log still {} bytes", log_bytes());
        std::thread::sleep(Duration::from_millis(100));
    }
    broker.restart();
    let consumer = broker.consumer(&[("group.id", "committer")]);
    let mut wanted = TopicPartitionList::new();
    wanted.add_partition("tracked", 0);
    wanted.add_partition("tracked", 1);
    let committed = consumer.committed_offsets(wanted, WAIT).expect("committed offsets");
    let offset = |p| committed.find_partition("tracked", p).unwrap().offset();
    assert_eq!((offset(0), offset(1)), (Offset::Offset(300), Offset::Offset(600)));
}
