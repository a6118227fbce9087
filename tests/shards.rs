//! More partitions than shards: partitions live on both shards, and clients whose
//! connections land on every shard produce and consume through them, so work crosses the
//! mesh in both directions.

mod common;

use std::collections::HashSet;

use common::{consume, flush, send, Broker};
use rdkafka::consumer::Consumer;
use rdkafka::message::Message;
use rdkafka::producer::BaseRecord;
use rdkafka::{Offset, TopicPartitionList};

const PARTITIONS: i32 = 8;
const PRODUCERS: usize = 12;
const PER_PRODUCER: usize = 500;
const CONSUMERS: i32 = 4;

#[test]
fn partitions_spread_over_shards_and_every_shard_serves_clients() {
    let broker = Broker::start_with(&[]);
    broker.create_topic("spread", PARTITIONS);

    // Placement put partitions on both shards.
    let metadata = std::fs::read_to_string(broker.data_dir().join("meta/cluster.json")).unwrap();
    let cluster: serde_json::Value = serde_json::from_str(&metadata).unwrap();
    let spread = cluster["topics"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "spread")
        .expect("topic spread in metadata");
    let owners: HashSet<u64> = spread["placement"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_u64().unwrap())
        .collect();
    assert_eq!(owners, HashSet::from([0, 1]), "partitions on both shards");

    // Many clients, each with its own connection; SO_REUSEPORT spreads them over shards.
    let producers: Vec<_> = (0..PRODUCERS).map(|_| broker.producer(&[("linger.ms", "2")])).collect();
    for (p, producer) in producers.iter().enumerate() {
        for i in 0..PER_PRODUCER {
            let value = format!("{p}:{i}");
            send(
                producer,
                BaseRecord::to("spread").key(value.as_bytes()).payload(value.as_bytes()),
            );
        }
    }
    for producer in &producers {
        flush(producer);
    }

    let mut seen = HashSet::new();
    for c in 0..CONSUMERS {
        let consumer = broker.consumer(&[]);
        let mut list = TopicPartitionList::new();
        for p in (c..PARTITIONS).step_by(CONSUMERS as usize) {
            list.add_partition_offset("spread", p, Offset::Beginning).unwrap();
        }
        consumer.assign(&list).unwrap();
        let expected: i64 = list
            .elements()
            .iter()
            .map(|e| {
                let (low, high) = consumer
                    .fetch_watermarks("spread", e.partition(), common::WAIT)
                    .unwrap();
                high - low
            })
            .sum();
        for value in consume(&consumer, expected as usize, |m| {
            String::from_utf8(m.payload().unwrap().to_vec()).unwrap()
        }) {
            assert!(seen.insert(value.clone()), "{value} consumed twice");
        }
    }
    assert_eq!(seen.len(), PRODUCERS * PER_PRODUCER, "every record consumed once");

    for shard in 0..2 {
        broker.wait_for_log(&format!("of shard {shard} accepting"), |line| {
            line.contains(&format!("shard {shard} accepted a connection"))
        });
    }
}

/// A restart with another shard count re-places every partition; all data stays readable
/// and appends continue where they left off.
#[test]
fn changing_the_shard_count_keeps_every_partition() {
    let mut broker = Broker::start_with(&["--cores", "0,1"]);
    broker.create_topic("moving", 4);
    let produce = |broker: &Broker, from: usize, to: usize| {
        let producer = broker.producer(&[]);
        for i in from..to {
            let value = i.to_string();
            send(
                &producer,
                BaseRecord::to("moving")
                    .partition((i % 4) as i32)
                    .key(value.as_bytes())
                    .payload(value.as_bytes()),
            );
        }
        flush(&producer);
    };
    produce(&broker, 0, 400);
    broker.restart_with(&["--cores", "0"]);
    produce(&broker, 400, 800);
    let metadata = std::fs::read_to_string(broker.data_dir().join("meta/cluster.json")).unwrap();
    let cluster: serde_json::Value = serde_json::from_str(&metadata).unwrap();
    assert_eq!(cluster["shard_count"], 1);

    let consumer = broker.consumer(&[]);
    common::assign(&consumer, "moving", 4, Offset::Beginning);
    let mut values: Vec<usize> = consume(&consumer, 800, |m| {
        std::str::from_utf8(m.payload().unwrap()).unwrap().parse().unwrap()
    });
    values.sort();
    assert_eq!(values, (0..800).collect::<Vec<_>>());
}
