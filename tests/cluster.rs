//! A cluster of three `sluice serve` nodes on loopback, each broker and controller voter:
//! the quorum forms whatever the start order, a late node catches up, and the loss of the
//! active controller (SIGKILL) elects another, fences the dead broker, and takes it back
//! when it returns.

mod common;

use bytes::Bytes;
use common::cluster::{Cluster, CLUSTER_CONFIG};
use common::raw::call;
use common::WAIT;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{ApiKey, ProduceRequest, ProduceResponse, TopicName};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::Compression;
use rdkafka::admin::{AdminOptions, NewTopic, TopicReplication};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::BaseRecord;
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::Offset;

const NOT_LEADER_OR_FOLLOWER: i16 = 6;

#[test]
fn the_quorum_forms_fences_a_dead_broker_and_survives_its_controller() {
    let mut cluster = Cluster::new(3, CLUSTER_CONFIG);
    // A majority forms the quorum; the third node joins later and catches up.
    cluster.start(3);
    cluster.start(1);
    cluster.wait_for_brokers(&[1, 3]);
    cluster.start(2);
    let controller = cluster.wait_for_brokers(&[1, 2, 3]);

    // The active controller dies: the others elect one of themselves and fence it.
    cluster.kill(controller as usize);
    let remaining: Vec<i32> = [1, 2, 3].into_iter().filter(|id| *id != controller).collect();
    let successor = cluster.wait_for_brokers(&remaining);
    assert_ne!(successor, controller);

    // It comes back on its data: it registers again and is listed once more.
    cluster.start(controller as usize);
    cluster.wait_for_brokers(&[1, 2, 3]);

    // Two of three down, then one back: a majority again, and the quorum with it.
    let (first, second) = (remaining[0] as usize, remaining[1] as usize);
    cluster.kill(first);
    cluster.kill(second);
    cluster.start(first);
    let mut brokers = vec![controller, first as i32];
    brokers.sort();
    cluster.wait_for_brokers(&brokers);
}

/// An RF=3 topic spreads its leaders; every broker reports the same replicas and ISR; a
/// producer's records reach the leaders (librdkafka routes by Metadata); a produce sent to a
/// broker that does not lead is refused with NOT_LEADER_OR_FOLLOWER naming the leader and its
/// endpoint (KIP-951); a replication factor beyond the brokers is refused.
#[test]
fn topics_are_created_by_the_controller_and_led_across_brokers() {
    let mut cluster = Cluster::new(3, CLUSTER_CONFIG);
    for id in 1..=3 {
        cluster.start(id);
    }
    cluster.wait_for_brokers(&[1, 2, 3]);
    let node = cluster.node(1);
    let admin = node.admin();
    let created = common::block_on(admin.create_topics(
        &[
            NewTopic::new("spread", 6, TopicReplication::Fixed(3)),
            NewTopic::new("too-wide", 1, TopicReplication::Fixed(4)),
        ],
        &AdminOptions::new(),
    ))
    .expect("CreateTopics");
    assert!(created[0].is_ok(), "{:?}", created[0]);
    assert!(
        matches!(&created[1], Err((_, RDKafkaErrorCode::InvalidReplicationFactor))),
        "{:?}",
        created[1]
    );

    // Every broker's Metadata agrees: three replicas, all in sync, two leaders each.
    let mut leaders = Vec::new();
    for id in 1..=3 {
        // Each broker learns of the topic from the controller's image, soon after it exists.
        let consumer: BaseConsumer = cluster.node(id).client_config().create().unwrap();
        let deadline = std::time::Instant::now() + WAIT;
        let metadata = loop {
            let metadata = consumer.fetch_metadata(Some("spread"), WAIT).expect("metadata");
            if metadata.topics()[0].partitions().len() == 6 {
                break metadata;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "broker {id} never learned of the topic"
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        };
        let topic = &metadata.topics()[0];
        let here: Vec<i32> = topic.partitions().iter().map(|p| p.leader()).collect();
        for p in topic.partitions() {
            let mut replicas = p.replicas().to_vec();
            replicas.sort();
            assert_eq!(replicas, vec![1, 2, 3]);
            assert_eq!(p.isr().len(), 3);
        }
        if id > 1 {
            assert_eq!(here, leaders, "broker {id} sees other leaders");
        }
        leaders = here;
    }
    for broker in 1..=3 {
        assert_eq!(leaders.iter().filter(|l| **l == broker).count(), 2, "{leaders:?}");
    }

    // librdkafka sends each partition's records to its leader.
    let producer = node.producer(&[("acks", "all")]);
    for p in 0..6 {
        common::send(
            &producer,
            BaseRecord::to("spread").partition(p).payload(&b"v"[..]).key(&b"k"[..]),
        );
    }
    common::flush(&producer);
    let consumer = node.consumer(&[]);
    common::assign(&consumer, "spread", 6, Offset::Beginning);
    let read = common::consume(&consumer, 6, |m| rdkafka::Message::partition(m));
    let mut partitions = read.clone();
    partitions.sort();
    assert_eq!(partitions, vec![0, 1, 2, 3, 4, 5]);

    // A produce to a broker that does not lead partition 0 names the leader.
    let leader = leaders[0];
    let elsewhere = (1..=3).find(|id| *id != leader).unwrap() as usize;
    let batch = sluice::record::encode_batch([(None, Some(Bytes::from_static(b"x")), 0)], Compression::None).unwrap();
    let request = ProduceRequest::default()
        .with_acks(-1)
        .with_timeout_ms(30_000)
        .with_topic_data(vec![TopicProduceData::default()
            .with_name(TopicName(StrBytes::from_static_str("spread")))
            .with_partition_data(vec![PartitionProduceData::default()
                .with_index(0)
                .with_records(Some(batch))])]);
    let answer: ProduceResponse = call(cluster.node(elsewhere), ApiKey::Produce, 11, &request);
    let partition = &answer.responses[0].partition_responses[0];
    assert_eq!(partition.error_code, NOT_LEADER_OR_FOLLOWER);
    assert_eq!(partition.current_leader.leader_id.0, leader);
    assert_eq!(answer.node_endpoints.len(), 1);
    assert_eq!(answer.node_endpoints[0].node_id.0, leader);
    let leader_port = cluster
        .node(leader as usize)
        .addr
        .rsplit_once(':')
        .unwrap()
        .1
        .parse::<i32>()
        .unwrap();
    assert_eq!(answer.node_endpoints[0].port, leader_port);
}
