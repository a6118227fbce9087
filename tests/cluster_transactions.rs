//! Transactions on a three-node cluster: one spanning partitions led by different brokers
//! commits everywhere at once, and one in flight when its coordinator's broker is SIGKILLed is
//! committed or aborted as a whole once the coordinator has failed over, with read_committed
//! consumers seeing all of it or none of it.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use common::cluster::{Cluster, CLUSTER_CONFIG};
use common::raw::call;
use common::{send, WAIT};
use kafka_protocol::messages::{ApiKey, FindCoordinatorRequest, FindCoordinatorResponse};
use kafka_protocol::protocol::StrBytes;
use rdkafka::admin::{NewTopic, TopicReplication};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};

const PARTITIONS: i32 = 3;
const PER_PARTITION: usize = 20;

fn producer(cluster: &Cluster, id: &str) -> BaseProducer {
    let producer: BaseProducer = cluster
        .client_config()
        .set("transactional.id", id)
        .set("acks", "all")
        .set("linger.ms", "0")
        .set("topic.metadata.refresh.interval.ms", "1000")
        .create()
        .expect("producer");
    producer
        .init_transactions(Duration::from_secs(60))
        .expect("init_transactions");
    producer
}

fn write(producer: &BaseProducer, tag: &str) {
    for p in 0..PARTITIONS {
        for i in 0..PER_PARTITION {
            send(
                producer,
                BaseRecord::to("spread")
                    .partition(p)
                    .payload(format!("{tag}-{p}-{i}").as_bytes())
                    .key(b"k".as_slice()),
            );
        }
    }
    producer.flush(WAIT).expect("flush");
}

/// The coordinator of transactional id `id`, as node `ask` answers FindCoordinator.
fn coordinator(cluster: &Cluster, ask: usize, id: &str) -> i32 {
    let deadline = Instant::now() + WAIT;
    loop {
        let found: FindCoordinatorResponse = call(
            cluster.node(ask),
            ApiKey::FindCoordinator,
            3,
            &FindCoordinatorRequest::default()
                .with_key(StrBytes::from_string(id.to_string()))
                .with_key_type(1),
        );
        if found.error_code == 0 {
            return found.node_id.0;
        }
        assert!(
            Instant::now() < deadline,
            "no coordinator for {id}: error {}",
            found.error_code
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A read_committed consumer of every partition of `topic`, from the beginning.
fn read_committed(cluster: &Cluster, topic: &str) -> BaseConsumer {
    let consumer: BaseConsumer = cluster
        .client_config()
        .set("group.id", "unused")
        .set("isolation.level", "read_committed")
        .set("enable.partition.eof", "false")
        .create()
        .unwrap();
    let mut list = TopicPartitionList::new();
    for p in 0..PARTITIONS {
        list.add_partition_offset(topic, p, Offset::Beginning).unwrap();
    }
    consumer.assign(&list).unwrap();
    consumer
}

/// Every record a read_committed consumer sees, grouped by tag, once the log is stable.
fn committed_by_tag(cluster: &Cluster, expected_total: impl Fn(usize) -> bool) -> BTreeMap<String, usize> {
    let consumer = read_committed(cluster, "spread");
    let mut seen = BTreeSet::new();
    let deadline = Instant::now() + WAIT;
    let mut quiet_since = Instant::now();
    loop {
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(m)) => {
                let value = String::from_utf8(m.payload().unwrap().to_vec()).unwrap();
                assert!(seen.insert(value.clone()), "{value} read twice");
                quiet_since = Instant::now();
            }
            Some(Err(e)) => eprintln!("consumer: {e}"),
            None => {}
        }
        if expected_total(seen.len()) && quiet_since.elapsed() > Duration::from_secs(1) {
            break;
        }
        assert!(Instant::now() < deadline, "read_committed saw {} records", seen.len());
    }
    let mut tags = BTreeMap::new();
    for value in seen {
        *tags.entry(value.split('-').next().unwrap().to_string()).or_insert(0) += 1;
    }
    tags
}

#[test]
fn a_transaction_over_several_leaders_survives_its_coordinators_death() {
    let mut cluster = Cluster::new(3, CLUSTER_CONFIG);
    cluster.start_all();
    cluster.create_topic(NewTopic::new("spread", PARTITIONS, TopicReplication::Fixed(3)));
    let leaders = cluster.wait_for_isr("spread", PARTITIONS as usize, &[1, 2, 3]);
    assert!(
        leaders.iter().collect::<BTreeSet<_>>().len() > 1,
        "the partitions are led by more than one broker: {leaders:?}"
    );
    cluster.wait_for_isr("__transaction_state", 50, &[1, 2, 3]);

    let first = producer(&cluster, "spread-txn");
    first.begin_transaction().unwrap();
    write(&first, "one");
    first.commit_transaction(WAIT).unwrap();

    first.begin_transaction().unwrap();
    write(&first, "two");
    let doomed = coordinator(&cluster, 1, "spread-txn") as usize;
    cluster.kill(doomed);
    // The commit may reach the new coordinator or fail with the old one gone; either way the
    // transaction must end whole.
    let committed = first.commit_transaction(Duration::from_secs(60));
    eprintln!("commit across the coordinator's death: {committed:?}");
    drop(first);
    let survivor = (1..=3).find(|n| *n != doomed).unwrap();
    let new_coordinator = coordinator(&cluster, survivor, "spread-txn");
    assert_ne!(new_coordinator as usize, doomed, "the coordinator moved");

    // A new producer with the same id fences the old one, after its transaction is ended.
    let second = producer(&cluster, "spread-txn");
    second.begin_transaction().unwrap();
    write(&second, "three");
    second.commit_transaction(WAIT).unwrap();

    let whole = PARTITIONS as usize * PER_PARTITION;
    let tags = committed_by_tag(&cluster, |n| n == 2 * whole || n == 3 * whole);
    assert_eq!(tags.get("one"), Some(&whole));
    assert_eq!(tags.get("three"), Some(&whole));
    match tags.get("two") {
        None => assert!(committed.is_err(), "an acknowledged commit was lost"),
        Some(n) => assert_eq!(*n, whole, "the second transaction is visible in part"),
    }
}

/// A transaction-version-2 producer (raw protocol) writing to partitions led by other
/// brokers than its coordinator's: each leader adds its partition to the transaction through
/// AddPartitionsToTxn v5 to the coordinator, and the commit's markers reach every leader.
#[test]
fn a_v2_producers_partitions_join_its_transaction_from_every_leader() {
    use common::txn::{batch, describe, end_txn, init_producer_id, produce, until_settled};
    let mut cluster = Cluster::new(3, CLUSTER_CONFIG);
    cluster.start_all();
    cluster.create_topic(NewTopic::new("v2-spread", PARTITIONS, TopicReplication::Fixed(3)));
    let leaders = cluster.wait_for_isr("v2-spread", PARTITIONS as usize, &[1, 2, 3]);
    cluster.wait_for_isr("__transaction_state", 50, &[1, 2, 3]);
    let id = "v2-spread-txn";
    let home = coordinator(&cluster, 1, id);
    assert!(
        leaders.iter().any(|l| *l != home),
        "some partition is led away from the coordinator {home}: {leaders:?}"
    );
    let coordinator_node = cluster.node(home as usize);
    let (pid, epoch) = init_producer_id(coordinator_node, id);
    for (partition, leader) in leaders.iter().enumerate() {
        let values = [format!("v2-{partition}")];
        let values: Vec<&str> = values.iter().map(String::as_str).collect();
        let codes = produce(
            cluster.node(*leader as usize),
            id,
            "v2-spread",
            vec![(partition as i32, batch(pid, epoch, 0, &values))],
        );
        assert_eq!(codes, vec![0], "partition {partition} at its leader {leader}");
    }
    let (state, _, partitions) = describe(coordinator_node, id);
    assert_eq!(state, "Ongoing");
    assert_eq!(partitions.len(), PARTITIONS as usize, "{partitions:?}");
    let (code, next) = until_settled("EndTxn", || end_txn(coordinator_node, id, (pid, epoch), true));
    assert_eq!((code, next), (0, (pid, epoch + 1)));

    let consumer = read_committed(&cluster, "v2-spread");
    let mut seen = BTreeSet::new();
    let deadline = Instant::now() + WAIT;
    while seen.len() < PARTITIONS as usize {
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(100)) {
            seen.insert(String::from_utf8(m.payload().unwrap().to_vec()).unwrap());
        }
        assert!(Instant::now() < deadline, "read_committed saw {seen:?}");
    }
    assert_eq!(seen, (0..PARTITIONS).map(|p| format!("v2-{p}")).collect());
}
