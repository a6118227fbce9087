//! A cluster of three `sluice serve` nodes on loopback, each broker and controller voter:
//! the quorum forms whatever the start order, a late node catches up, and the loss of the
//! active controller (SIGKILL) elects another, fences the dead broker, and takes it back
//! when it returns.

mod common;

use std::time::Duration;

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
use rdkafka::{Message, Offset};

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
    cluster.start_all();
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
    let read = common::consume(&consumer, 6, |m| m.partition());
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

/// The node FindCoordinator (v3) names for `group`, asked of node `via`.
fn coordinator_of(cluster: &Cluster, via: usize, group: &str) -> (i16, i32) {
    use kafka_protocol::messages::{FindCoordinatorRequest, FindCoordinatorResponse};
    let request = FindCoordinatorRequest::default()
        .with_key(StrBytes::from_string(group.to_string()))
        .with_key_type(0);
    let answer: FindCoordinatorResponse = call(cluster.node(via), ApiKey::FindCoordinator, 3, &request);
    (answer.error_code, answer.node_id.0)
}

/// A consumer group keeps consuming when the broker coordinating it is SIGKILLed: the
/// leader of its offsets partition moves, the new leader replays the partition and
/// coordinates the group with its committed offsets intact (nothing below them is
/// delivered again, nothing above them is skipped), and commits go on there.
#[test]
fn a_group_survives_its_coordinator() {
    use rdkafka::consumer::CommitMode;
    use rdkafka::TopicPartitionList;
    use std::collections::{BTreeMap, BTreeSet};

    const PARTITIONS: i32 = 3;
    const RECORDS: i64 = 300;
    let mut cluster = Cluster::new(3, CLUSTER_CONFIG);
    cluster.start_all();
    cluster.create_topic(NewTopic::new("work", PARTITIONS, TopicReplication::Fixed(3)));
    cluster.wait_for_isr("work", PARTITIONS as usize, &[1, 2, 3]);
    cluster.wait_for_isr("__consumer_offsets", 50, &[1, 2, 3]);
    let producer: rdkafka::producer::BaseProducer = cluster.client_config().set("acks", "all").create().unwrap();
    for i in 0..RECORDS {
        let value = i.to_string();
        common::send(
            &producer,
            BaseRecord::to("work")
                .partition((i % PARTITIONS as i64) as i32)
                .payload(value.as_bytes()),
        );
    }
    common::flush(&producer);

    let consumer: BaseConsumer = cluster
        .client_config()
        .set("group.id", "survivor")
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .set("session.timeout.ms", "6000")
        .set("heartbeat.interval.ms", "500")
        .set("topic.metadata.refresh.interval.ms", "1000")
        .create()
        .expect("consumer");
    consumer.subscribe(&["work"]).expect("subscribe");
    // Next offset to read per partition, as consumed.
    let mut next: BTreeMap<i32, i64> = BTreeMap::new();
    let poll_one = |next: &mut BTreeMap<i32, i64>| -> Option<(i32, i64)> {
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(m)) => {
                next.insert(m.partition(), m.offset() + 1);
                Some((m.partition(), m.offset()))
            }
            Some(Err(e)) => {
                eprintln!("consumer: {e}");
                None
            }
            None => None,
        }
    };
    let deadline = std::time::Instant::now() + WAIT;
    let mut read = 0;
    while read < RECORDS / 3 {
        assert!(std::time::Instant::now() < deadline, "consumed only {read} records");
        if poll_one(&mut next).is_some() {
            read += 1;
        }
    }
    let mut committed = TopicPartitionList::new();
    for (p, offset) in &next {
        committed
            .add_partition_offset("work", *p, Offset::Offset(*offset))
            .unwrap();
    }
    consumer.commit(&committed, CommitMode::Sync).expect("commit");
    let before = next.clone();

    // Its coordinator dies; another broker takes the offsets partition and the group.
    let (code, coordinator) = coordinator_of(&cluster, 1, "survivor");
    assert_eq!(code, 0);
    cluster.kill(coordinator as usize);
    let survivor = (1..=3).find(|id| *id != coordinator as usize).unwrap();
    let deadline = std::time::Instant::now() + WAIT;
    let moved_to = loop {
        let (code, node) = coordinator_of(&cluster, survivor, "survivor");
        if code == 0 && node != coordinator {
            break node;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the group's coordinator never moved"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    eprintln!("coordinator moved from node {coordinator} to node {moved_to}");
    // The new coordinator has the offsets committed to the old one.
    let committed_now = |cluster: &Cluster| {
        let asking: BaseConsumer = cluster.client_config().set("group.id", "survivor").create().unwrap();
        let mut wanted = TopicPartitionList::new();
        for p in 0..PARTITIONS {
            wanted.add_partition("work", p);
        }
        let stored = asking.committed_offsets(wanted, WAIT).expect("committed offsets");
        (0..PARTITIONS)
            .filter_map(
                |p| match stored.find_partition("work", p).expect("partition").offset() {
                    Offset::Offset(o) => Some((p, o)),
                    _ => None,
                },
            )
            .collect::<BTreeMap<i32, i64>>()
    };
    assert_eq!(committed_now(&cluster), before);

    // The consumer reads on: whatever it reads after a rejoin starts at the committed offsets.
    let mut seen: BTreeSet<(i32, i64)> = BTreeSet::new();
    let ends: BTreeMap<i32, i64> = (0..PARTITIONS).map(|p| (p, RECORDS / PARTITIONS as i64)).collect();
    let deadline = std::time::Instant::now() + WAIT * 2;
    let done = |seen: &BTreeSet<(i32, i64)>| {
        ends.iter()
            .all(|(p, end)| (before.get(p).copied().unwrap_or(0)..*end).all(|o| seen.contains(&(*p, o))))
    };
    while !done(&seen) {
        assert!(
            std::time::Instant::now() < deadline,
            "after the failover the group read only {} records",
            seen.len()
        );
        if let Some((p, offset)) = poll_one(&mut next) {
            let floor = before.get(&p).copied().unwrap_or(0);
            assert!(
                offset >= floor,
                "partition {p}: offset {offset} delivered again below the committed {floor}"
            );
            seen.insert((p, offset));
        }
    }
    // Commits go to the new coordinator (the consumer may first have to find it).
    let mut all = TopicPartitionList::new();
    for (p, end) in &ends {
        all.add_partition_offset("work", *p, Offset::Offset(*end)).unwrap();
    }
    let deadline = std::time::Instant::now() + WAIT;
    while let Err(e) = consumer.commit(&all, CommitMode::Sync) {
        assert!(std::time::Instant::now() < deadline, "commit after the failover: {e}");
        consumer.poll(Duration::from_millis(100));
    }
    drop(consumer);

    // The old coordinator returns; the offsets stand wherever the group is coordinated.
    cluster.start(coordinator as usize);
    cluster.wait_for_isr("__consumer_offsets", 50, &[1, 2, 3]);
    assert_eq!(committed_now(&cluster), ends);
}

/// Replicas (in order) and leader of each partition of `topic`, as node `id` reports them.
fn replicas_and_leaders(cluster: &Cluster, id: usize, topic: &str) -> Vec<(Vec<i32>, i32)> {
    let consumer: BaseConsumer = cluster.node(id).client_config().create().unwrap();
    let metadata = consumer.fetch_metadata(Some(topic), WAIT).expect("metadata");
    metadata.topics()[0]
        .partitions()
        .iter()
        .map(|p| (p.replicas().to_vec(), p.leader()))
        .collect()
}

/// The admin APIs of a cluster go through the controller: CreatePartitions places new
/// replicas over the brokers, a topic config set through one broker is what every broker
/// describes, a preferred ElectLeaders moves leadership back to the first replica once it
/// has returned, and DescribeQuorum names the active controller and every voter.
#[test]
fn admin_changes_are_made_by_the_controller() {
    use kafka_protocol::messages::describe_quorum_request::{PartitionData, TopicData};
    use kafka_protocol::messages::elect_leaders_request::TopicPartitions;
    use kafka_protocol::messages::{
        DescribeQuorumRequest, DescribeQuorumResponse, ElectLeadersRequest, ElectLeadersResponse,
    };
    use rdkafka::admin::{AlterConfig, NewPartitions, ResourceSpecifier};

    let mut cluster = Cluster::new(3, CLUSTER_CONFIG);
    cluster.start_all();
    let admin: rdkafka::admin::AdminClient<_> = cluster.client_config().create().unwrap();
    cluster.create_topic(NewTopic::new("grow", 2, TopicReplication::Fixed(3)));
    cluster.wait_for_isr("grow", 2, &[1, 2, 3]);

    // Two more partitions, three replicas each, on every broker.
    let grown = common::block_on(admin.create_partitions(&[NewPartitions::new("grow", 4)], &AdminOptions::new()))
        .expect("CreatePartitions");
    assert!(grown[0].is_ok(), "{:?}", grown[0]);
    cluster.wait_for_isr("grow", 4, &[1, 2, 3]);
    let shrunk = common::block_on(admin.create_partitions(&[NewPartitions::new("grow", 3)], &AdminOptions::new()))
        .expect("CreatePartitions");
    assert!(
        matches!(&shrunk[0], Err((_, RDKafkaErrorCode::InvalidPartitions))),
        "{:?}",
        shrunk[0]
    );

    // A topic config set through broker 2 is what broker 3 describes.
    let altered = common::block_on(cluster.node(2).admin().alter_configs(
        &[AlterConfig::new(ResourceSpecifier::Topic("grow")).set("retention.ms", "12345")],
        &AdminOptions::new(),
    ))
    .expect("AlterConfigs");
    assert!(altered[0].is_ok(), "{:?}", altered[0]);
    for id in 1..=3 {
        let described = common::block_on(
            cluster
                .node(id)
                .admin()
                .describe_configs(&[ResourceSpecifier::Topic("grow")], &AdminOptions::new()),
        )
        .expect("DescribeConfigs");
        let resource = described[0].as_ref().expect("topic configs");
        assert_eq!(
            resource.get("retention.ms").and_then(|e| e.value.clone()).as_deref(),
            Some("12345"),
            "broker {id}"
        );
    }

    // Partition 0's preferred leader dies and returns: another broker leads until a
    // preferred election moves the lead back.
    let (replicas, _) = replicas_and_leaders(&cluster, 1, "grow")[0].clone();
    let preferred = replicas[0] as usize;
    cluster.kill(preferred);
    let mut others: Vec<i32> = (1..=3).filter(|id| *id != preferred as i32).collect();
    others.sort();
    cluster.wait_for_isr("grow", 4, &others);
    cluster.start(preferred);
    cluster.wait_for_isr("grow", 4, &[1, 2, 3]);
    let via = cluster.running()[0];
    assert_ne!(replicas_and_leaders(&cluster, via, "grow")[0].1, preferred as i32);
    let elect = ElectLeadersRequest::default()
        .with_election_type(0)
        .with_timeout_ms(30_000)
        .with_topic_partitions(Some(vec![TopicPartitions::default()
            .with_topic(TopicName(StrBytes::from_static_str("grow")))
            .with_partitions(vec![0])]));
    let answer: ElectLeadersResponse = call(cluster.node(via), ApiKey::ElectLeaders, 1, &elect);
    assert_eq!(
        answer.replica_election_results[0].partition_result[0].error_code, 0,
        "{answer:?}"
    );
    let deadline = std::time::Instant::now() + WAIT;
    while replicas_and_leaders(&cluster, via, "grow")[0].1 != preferred as i32 {
        assert!(std::time::Instant::now() < deadline, "the preferred replica never led");
        std::thread::sleep(Duration::from_millis(100));
    }
    let again: ElectLeadersResponse = call(cluster.node(via), ApiKey::ElectLeaders, 1, &elect);
    const ELECTION_NOT_NEEDED: i16 = 84;
    assert_eq!(
        again.replica_election_results[0].partition_result[0].error_code,
        ELECTION_NOT_NEEDED
    );

    // The quorum: the active controller leads, every voter is listed.
    cluster.wait_for_brokers(&[1, 2, 3]);
    let quorum = DescribeQuorumRequest::default().with_topics(vec![TopicData::default()
        .with_topic_name(TopicName(StrBytes::from_static_str("__cluster_metadata")))
        .with_partitions(vec![PartitionData::default().with_partition_index(0)])]);
    let answer: DescribeQuorumResponse = call(cluster.node(via), ApiKey::DescribeQuorum, 2, &quorum);
    assert_eq!(answer.error_code, 0, "{answer:?}");
    assert_eq!(answer.nodes.len(), 3, "each voter's controller endpoint");
    let partition = &answer.topics[0].partitions[0];
    assert_eq!(partition.leader_id.0, cluster.controller(via));
    assert!(partition.high_watermark > 0);
    let mut voters: Vec<i32> = partition.current_voters.iter().map(|v| v.replica_id.0).collect();
    voters.sort();
    assert_eq!(voters, vec![1, 2, 3]);
}

/// The reassignments in progress, as node `via` lists them: (topic, partition, replicas).
fn reassignments(cluster: &Cluster, via: usize) -> Vec<(String, i32, Vec<i32>)> {
    use kafka_protocol::messages::{ListPartitionReassignmentsRequest, ListPartitionReassignmentsResponse};
    let answer: ListPartitionReassignmentsResponse = call(
        cluster.node(via),
        ApiKey::ListPartitionReassignments,
        0,
        &ListPartitionReassignmentsRequest::default().with_timeout_ms(10_000),
    );
    assert_eq!(answer.error_code, 0);
    answer
        .topics
        .iter()
        .flat_map(|t| {
            t.partitions.iter().map(|p| {
                (
                    t.name.0.to_string(),
                    p.partition_index,
                    p.replicas.iter().map(|b| b.0).collect(),
                )
            })
        })
        .collect()
}

/// AlterPartitionReassignments of `topic`-0 to `replicas` (None: cancel), asked of node
/// `via`: the partition's error code.
fn reassign(cluster: &Cluster, via: usize, topic: &str, replicas: Option<&[i32]>) -> i16 {
    use kafka_protocol::messages::alter_partition_reassignments_request::{ReassignablePartition, ReassignableTopic};
    use kafka_protocol::messages::{AlterPartitionReassignmentsRequest, AlterPartitionReassignmentsResponse, BrokerId};
    let request = AlterPartitionReassignmentsRequest::default()
        .with_timeout_ms(30_000)
        .with_topics(vec![ReassignableTopic::default()
            .with_name(TopicName(StrBytes::from_string(topic.to_string())))
            .with_partitions(vec![ReassignablePartition::default()
                .with_partition_index(0)
                .with_replicas(
                    replicas.map(|r| r.iter().map(|id| BrokerId(*id)).collect()),
                )])]);
    let answer: AlterPartitionReassignmentsResponse =
        call(cluster.node(via), ApiKey::AlterPartitionReassignments, 0, &request);
    assert_eq!(answer.error_code, 0, "{answer:?}");
    answer.responses[0].partitions[0].error_code
}

/// A partition written throughout moves from brokers 1 and 2 to 2 and 3: broker 3 catches
/// up and joins the ISR before broker 1 leaves (and deletes its copy); the lead moves off
/// broker 1; every record sent is delivered and read back once, in order.
#[test]
fn a_reassignment_moves_a_partition_while_it_is_written() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;

    let mut cluster = Cluster::new(3, CLUSTER_CONFIG);
    cluster.start_all();
    cluster.create_topic(NewTopic::new("moving", 1, TopicReplication::Variable(&[&[1, 2]])));
    assert_eq!(cluster.wait_for_isr("moving", 1, &[1, 2]), vec![1]);

    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (bootstrap, stop) = (cluster.bootstrap(), stop.clone());
        std::thread::spawn(move || {
            let producer: rdkafka::producer::BaseProducer = rdkafka::config::ClientConfig::new()
                .set("bootstrap.servers", &bootstrap)
                .set("enable.idempotence", "true")
                .set("acks", "all")
                .set("linger.ms", "2")
                .set("topic.metadata.refresh.interval.ms", "1000")
                .create()
                .expect("producer");
            let mut sent = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let value = sent.to_string();
                common::send(
                    &producer,
                    BaseRecord::to("moving").partition(0).payload(value.as_bytes()),
                );
                sent += 1;
                producer.poll(Duration::from_millis(1));
            }
            common::flush(&producer);
            sent
        })
    };
    let log_on_1 = cluster.node(1).data_dir().join("moving-0");
    // Written for a while on brokers 1 and 2 before the move.
    let deadline = std::time::Instant::now() + WAIT;
    while !log_on_1.exists() {
        assert!(std::time::Instant::now() < deadline, "broker 1 never held moving-0");
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(500));

    assert_eq!(reassign(&cluster, 3, "moving", Some(&[2, 3])), 0);

    // It completes on its own: listed while in progress (unless already done), then not.
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let ongoing = reassignments(&cluster, 1);
        if ongoing.is_empty() {
            break;
        }
        assert_eq!(ongoing, vec![("moving".to_string(), 0, vec![2, 3, 1])]);
        assert!(std::time::Instant::now() < deadline, "the reassignment never completed");
        std::thread::sleep(Duration::from_millis(50));
    }
    let leader = cluster.wait_for_isr("moving", 1, &[2, 3])[0];
    assert_ne!(leader, 1);
    for id in 1..=3 {
        let (mut replicas, _) = replicas_and_leaders(&cluster, id, "moving")[0].clone();
        replicas.sort();
        assert_eq!(replicas, vec![2, 3], "broker {id}");
    }
    let deadline = std::time::Instant::now() + WAIT;
    while log_on_1.exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "broker 1 kept its copy of moving-0"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // Cancelling once it completed: nothing is in progress.
    const NO_REASSIGNMENT_IN_PROGRESS: i16 = 85;
    assert_eq!(reassign(&cluster, 2, "moving", None), NO_REASSIGNMENT_IN_PROGRESS);

    std::thread::sleep(Duration::from_millis(500));
    stop.store(true, Ordering::Relaxed);
    let sent = writer.join().expect("writer") as usize;
    assert!(sent > 100, "only {sent} records were written");
    let consumer = cluster
        .client_config()
        .set("group.id", "moving-check")
        .set("enable.auto.commit", "false")
        .create::<BaseConsumer>()
        .unwrap();
    let (_, high) = consumer.fetch_watermarks("moving", 0, WAIT).expect("watermarks");
    assert_eq!(high as usize, sent, "every record stored once");
    common::assign(&consumer, "moving", 1, Offset::Beginning);
    let values: Vec<u64> = common::consume(&consumer, sent, |m| {
        std::str::from_utf8(m.payload().unwrap()).unwrap().parse().unwrap()
    });
    assert_eq!(values, (0..sent as u64).collect::<Vec<_>>());
}

/// A topic deleted and created again under the same name while a replica's broker was down:
/// the returning broker drops its copy of the old topic rather than keeping old records at
/// offsets the new topic also has. Once it alone holds the partition, it serves only the new
/// topic's records.
#[test]
fn a_returning_replica_drops_a_deleted_topics_data() {
    let mut cluster = Cluster::new(3, CLUSTER_CONFIG);
    cluster.start_all();
    let admin: rdkafka::admin::AdminClient<_> = cluster.client_config().create().unwrap();
    let reborn = || NewTopic::new("reborn", 1, TopicReplication::Variable(&[&[1, 2, 3]]));
    let write = |cluster: &Cluster, prefix: &str, count: usize| {
        let producer: rdkafka::producer::BaseProducer = cluster.client_config().set("acks", "all").create().unwrap();
        // A batch per record, so that no truncation can drop the old records by whole batches.
        for i in 0..count {
            let value = format!("{prefix}-{i}");
            common::send(
                &producer,
                BaseRecord::to("reborn").partition(0).payload(value.as_bytes()),
            );
            common::flush(&producer);
        }
    };
    cluster.create_topic(reborn());
    cluster.wait_for_isr("reborn", 1, &[1, 2, 3]);
    write(&cluster, "old", 50);
    // Broker 3 holds all 50 (acks=all, in the ISR), then goes away.
    cluster.kill(3);
    cluster.wait_for_brokers(&[1, 2]);
    let deleted = common::block_on(admin.delete_topics(&["reborn"], &AdminOptions::new())).expect("DeleteTopics");
    assert!(deleted[0].is_ok(), "{:?}", deleted[0]);
    let deadline = std::time::Instant::now() + WAIT;
    while !cluster.partitions(1, "reborn").is_empty() {
        assert!(std::time::Instant::now() < deadline, "the topic was never deleted");
        std::thread::sleep(Duration::from_millis(50));
    }
    cluster.create_topic(reborn());
    cluster.wait_for_isr("reborn", 1, &[1, 2]);
    write(&cluster, "new", 10);

    cluster.start(3);
    cluster.wait_for_isr("reborn", 1, &[1, 2, 3]);
    assert_eq!(reassign(&cluster, 1, "reborn", Some(&[3])), 0);
    assert_eq!(cluster.wait_for_isr("reborn", 1, &[3]), vec![3]);
    let consumer: BaseConsumer = cluster
        .client_config()
        .set("group.id", "reborn-check")
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    let (low, high) = consumer.fetch_watermarks("reborn", 0, WAIT).expect("watermarks");
    assert_eq!((low, high), (0, 10));
    common::assign(&consumer, "reborn", 1, Offset::Beginning);
    let values: Vec<String> = common::consume(&consumer, 10, |m| {
        String::from_utf8(m.payload().unwrap().to_vec()).unwrap()
    });
    assert_eq!(values, (0..10).map(|i| format!("new-{i}")).collect::<Vec<_>>());
}
