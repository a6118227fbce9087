//! 200,000 keyed records with headers through an 8-partition topic with acks=all, consumed
//! back with librdkafka: each exactly once, in order per partition, at contiguous offsets,
//! every key on one partition, headers and timestamps intact.

mod common;

use std::collections::HashMap;

use common::{assign, consume, flush, send, Broker};
use rdkafka::message::{Header, Headers, Message, OwnedHeaders};
use rdkafka::producer::BaseRecord;
use rdkafka::Offset;

const RECORDS: usize = 200_000;
const PARTITIONS: i32 = 8;
const KEYS: usize = 1_000;
const BASE_TIMESTAMP: i64 = 1_700_000_000_000;

fn value(i: usize) -> Vec<u8> {
    format!("{i:0100}").into_bytes()
}

#[test]
fn keyed_records_round_trip_exactly_once_in_order() {
    let broker = Broker::start();
    broker.create_topic("orders", PARTITIONS);

    let producer = broker.producer(&[("acks", "all"), ("linger.ms", "5"), ("batch.num.messages", "2000")]);
    for i in 0..RECORDS {
        let key = format!("key-{}", i % KEYS);
        let value = value(i);
        let headers = OwnedHeaders::new()
            .insert(Header {
                key: "seq",
                value: Some(i.to_string().as_bytes()),
            })
            .insert(Header {
                key: "origin",
                value: Some("produce_fetch".as_bytes()),
            });
        send(
            &producer,
            BaseRecord::to("orders")
                .key(key.as_bytes())
                .payload(value.as_slice())
                .headers(headers)
                .timestamp(BASE_TIMESTAMP + i as i64),
        );
    }
    flush(&producer);

    let consumer = broker.consumer(&[]);
    assign(&consumer, "orders", PARTITIONS, Offset::Beginning);
    let seen = consume(&consumer, RECORDS, |m| {
        let headers = m.headers().expect("headers");
        let seq: usize = std::str::from_utf8(headers.get(0).value.unwrap())
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(headers.get(0).key, "seq");
        assert_eq!(headers.get(1).key, "origin");
        assert_eq!(headers.get(1).value, Some("produce_fetch".as_bytes()));
        assert_eq!(m.payload(), Some(value(seq).as_slice()), "value of record {seq}");
        assert_eq!(
            m.timestamp().to_millis(),
            Some(BASE_TIMESTAMP + seq as i64),
            "timestamp of {seq}"
        );
        let key = String::from_utf8(m.key().unwrap().to_vec()).unwrap();
        assert_eq!(key, format!("key-{}", seq % KEYS));
        (m.partition(), m.offset(), seq, key)
    });

    let mut next_offset: HashMap<i32, i64> = HashMap::new();
    let mut last_seq: HashMap<i32, usize> = HashMap::new();
    let mut key_partition: HashMap<String, i32> = HashMap::new();
    let mut delivered = vec![false; RECORDS];
    for (partition, offset, seq, key) in seen {
        let expected = next_offset.entry(partition).or_insert(0);
        assert_eq!(offset, *expected, "offsets of partition {partition} are contiguous");
        *expected += 1;
        if let Some(previous) = last_seq.insert(partition, seq) {
            assert!(seq > previous, "partition {partition}: {seq} after {previous}");
        }
        assert_eq!(
            *key_partition.entry(key.clone()).or_insert(partition),
            partition,
            "{key} on two partitions"
        );
        assert!(!delivered[seq], "record {seq} delivered twice");
        delivered[seq] = true;
    }
    assert!(delivered.iter().all(|d| *d), "every record delivered");
    assert_eq!(
        next_offset.len(),
        PARTITIONS as usize,
        "every partition received records"
    );
}

/// Far more data than a 64 KiB shard cache holds, read back on the same (fresh) broker: the
/// batches come from disk through direct I/O.
#[test]
fn reads_older_than_the_cache_come_from_disk() {
    let broker = Broker::start_with_config("\"batch.cache.bytes\" = 65536\n");
    broker.create_topic("deep", 1);
    let producer = broker.producer(&[("linger.ms", "5")]);
    let records = 4_000;
    for i in 0..records {
        let value = format!("{i:01000}");
        send(
            &producer,
            BaseRecord::to("deep").key(b"k".as_slice()).payload(value.as_bytes()),
        );
    }
    flush(&producer);
    let consumer = broker.consumer(&[("fetch.max.bytes", "1048576"), ("max.partition.fetch.bytes", "262144")]);
    assign(&consumer, "deep", 1, Offset::Beginning);
    let values = consume(&consumer, records, |m| {
        (m.offset(), String::from_utf8(m.payload().unwrap().to_vec()).unwrap())
    });
    for (i, (offset, value)) in values.into_iter().enumerate() {
        assert_eq!(offset, i as i64);
        assert_eq!(value, format!("{i:01000}"));
    }
}

/// A batch larger than the consumer's per-partition and total fetch limits is still
/// delivered whole: a fetch always returns at least one batch.
#[test]
fn a_batch_larger_than_the_fetch_limits_still_arrives() {
    let broker = Broker::start();
    broker.create_topic("big", 1);
    let producer = broker.producer(&[("message.max.bytes", "1000000")]);
    let big = vec![b'b'; 600_000];
    send(
        &producer,
        BaseRecord::to("big").key(b"k".as_slice()).payload(big.as_slice()),
    );
    send(
        &producer,
        BaseRecord::to("big").key(b"k".as_slice()).payload(b"small".as_slice()),
    );
    flush(&producer);
    let consumer = broker.consumer(&[
        ("max.partition.fetch.bytes", "1024"),
        ("fetch.max.bytes", "2048"),
        ("message.max.bytes", "1000"),
    ]);
    assign(&consumer, "big", 1, Offset::Beginning);
    let sizes = consume(&consumer, 2, |m| m.payload().map_or(0, <[u8]>::len));
    assert_eq!(sizes, vec![600_000, 5]);
}

/// Fetch answers go out as the stored batches themselves (several cache entries, or one disk
/// read, per partition), by vectored sends that outrun the socket's buffer: 12 MB over four
/// partitions, fetched in responses of up to 48 MB with CRC checks on, arrive byte for byte,
/// first from the batch cache, then from disk after a restart.
#[test]
fn large_fetches_of_many_stored_batches_arrive_intact() {
    const PARTS: i32 = 4;
    const PER_PARTITION: usize = 10_000;
    let mut broker = Broker::start_with_config("\"batch.cache.bytes\" = 67108864\n");
    broker.create_topic("spliced", PARTS);
    // Batches of about 3 KB: each partition's answer is hundreds of stored batches.
    let producer = broker.producer(&[("linger.ms", "5"), ("batch.num.messages", "10")]);
    let payload = |partition: i32, i: usize| format!("{partition}-{i:0298}");
    for i in 0..PER_PARTITION {
        for partition in 0..PARTS {
            let value = payload(partition, i);
            send(
                &producer,
                BaseRecord::to("spliced").partition(partition).payload(value.as_bytes()),
            );
        }
    }
    flush(&producer);
    let read_back = |broker: &Broker| {
        // A small receive buffer, so every large answer outruns what the socket holds.
        let consumer = broker.consumer(&[
            ("check.crcs", "true"),
            ("socket.receive.buffer.bytes", "65536"),
            ("fetch.max.bytes", "50331648"),
            ("max.partition.fetch.bytes", "16777216"),
            ("fetch.wait.max.ms", "10"),
        ]);
        assign(&consumer, "spliced", PARTS, Offset::Beginning);
        let seen = consume(&consumer, PER_PARTITION * PARTS as usize, |m| {
            (m.partition(), m.offset(), m.payload().unwrap().to_vec())
        });
        let mut next: HashMap<i32, i64> = HashMap::new();
        for (partition, offset, value) in seen {
            let expected = next.entry(partition).or_insert(0);
            assert_eq!(
                offset, *expected,
                "partition {partition}: offsets in order, none missing"
            );
            assert_eq!(
                value,
                payload(partition, offset as usize).into_bytes(),
                "{partition}@{offset}"
            );
            *expected += 1;
        }
    };
    // The answers must have outrun the socket's buffer at least once, or the vectored sends
    // that wait were not exercised. A client that happens to drain as fast as the broker
    // writes can leave one read-back without a wait, so it reads everything again (checking
    // every byte each time), a bounded number of times.
    const READ_BACKS_MAX: usize = 4;
    for _ in 0..READ_BACKS_MAX {
        read_back(&broker);
        if broker.counter("response_send_waits_total") > 0 {
            break;
        }
    }
    assert!(
        broker.counter("response_send_waits_total") > 0,
        "answers this large outran the socket's buffer, so sends waited for the client"
    );
    broker.restart();
    read_back(&broker);
}

/// With LogAppendTime the log stamps the timestamp type, max timestamp and CRC into a copy of
/// each batch's header while the records stay the producer's bytes: large batches (kept as
/// slices of their request) and one-record batches (copied out of theirs) read back with CRC
/// checks on, stamped with the broker's clock, from the batch cache and from disk.
#[test]
fn log_append_time_batches_keep_valid_crcs() {
    const LARGE: usize = 3_000;
    const SMALL: usize = 20;
    let mut broker = Broker::start();
    broker.create_topic_with("stamped", 1, &[("message.timestamp.type", "LogAppendTime")]);
    let producer = broker.producer(&[("linger.ms", "50"), ("batch.size", "2000000")]);
    let payload = |i: usize| format!("{i:0300}");
    let started = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    // Each record carries an old producer timestamp, which the broker's clock replaces.
    let send_one = |i: usize| {
        let value = payload(i);
        send(
            &producer,
            BaseRecord::to("stamped")
                .payload(value.as_bytes())
                .timestamp(BASE_TIMESTAMP),
        );
    };
    (0..LARGE).for_each(send_one);
    flush(&producer);
    for i in LARGE..LARGE + SMALL {
        send_one(i);
        flush(&producer);
    }
    let read_back = |broker: &Broker| {
        let consumer = broker.consumer(&[("check.crcs", "true")]);
        assign(&consumer, "stamped", 1, Offset::Beginning);
        let seen = consume(&consumer, LARGE + SMALL, |m| {
            (m.offset(), m.timestamp(), m.payload().unwrap().to_vec())
        });
        for (offset, timestamp, value) in seen {
            assert_eq!(value, payload(offset as usize).into_bytes(), "record {offset}");
            match timestamp {
                rdkafka::Timestamp::LogAppendTime(at) => assert!(
                    at >= started,
                    "record {offset}: stamped at {at}, before the test started at {started}"
                ),
                other => panic!("record {offset}: {other:?}, not the broker's LogAppendTime"),
            }
        }
    };
    read_back(&broker);
    broker.restart();
    read_back(&broker);
}
