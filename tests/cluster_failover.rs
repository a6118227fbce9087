//! Failover without losing an acknowledged record: three nodes (each broker and controller
//! voter), an RF=3 topic with `min.insync.replicas=2`, idempotent acks=all producers writing
//! throughout while the broker leading most partitions and the active controller are
//! SIGKILLed in turn and restarted (`SLUICE_FAILOVER_ROUNDS` times, at least four). Writes
//! resume on the new leaders within seconds, topics can still be created without the old
//! controller, the restarted node catches up and rejoins every ISR, and at the end every
//! acknowledged record is read back exactly once, at its acknowledged offset, each
//! producer's records in order.

mod common;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::cluster::{Cluster, CLUSTER_CONFIG};
use common::{assign, consume, WAIT};
use rdkafka::admin::{NewTopic, TopicReplication};
use rdkafka::client::ClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext};
use rdkafka::Offset;

const TOPIC: &str = "failover";
const PARTITIONS: i32 = 6;
const PRODUCERS: u64 = 2;
/// Kill rounds in the suite: even ones take the broker leading most partitions, odd ones
/// the active controller. `SLUICE_FAILOVER_ROUNDS` asks for more (the soak, perf/cluster_soak.sh).
const ROUNDS_MIN: usize = 4;

fn rounds() -> usize {
    common::env_at_least("SLUICE_FAILOVER_ROUNDS", ROUNDS_MIN)
}
/// How soon after a kill every partition must be acknowledging writes again.
const RESUME_WITHIN: Duration = Duration::from_secs(20);

/// A followers' lag limit short enough that a dead replica leaves the ISR within the test.
fn config() -> String {
    format!("{CLUSTER_CONFIG}\"replica.lag.time.max.ms\" = 3000\n")
}

struct Ack {
    partition: i32,
    offset: i64,
    value: u64,
    at: Instant,
}

#[derive(Default)]
struct Deliveries {
    acked: Vec<Ack>,
    failed: Vec<String>,
}

#[derive(Clone)]
struct Tally(Arc<Mutex<Deliveries>>);

impl ClientContext for Tally {}

impl ProducerContext for Tally {
    type DeliveryOpaque = Box<u64>;

    fn delivery(&self, result: &DeliveryResult<'_>, value: Box<u64>) {
        let mut deliveries = self.0.lock().unwrap();
        match result {
            Ok(message) => deliveries.acked.push(Ack {
                partition: message.partition(),
                offset: message.offset(),
                value: *value,
                at: Instant::now(),
            }),
            Err((e, _)) => deliveries.failed.push(e.to_string()),
        }
    }
}

/// Writes unique values (producer id in the high half, sequence in the low) until `stop`,
/// about a thousand a second, then waits for every outstanding delivery.
fn produce(bootstrap: String, producer: u64, tally: Tally, stop: Arc<AtomicBool>) {
    let client: BaseProducer<Tally> = rdkafka::config::ClientConfig::new()
        .set("bootstrap.servers", &bootstrap)
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("linger.ms", "2")
        // Long enough to ride out a failover: the records wait for the new leader.
        .set("message.timeout.ms", "120000")
        .set("topic.metadata.refresh.interval.ms", "1000")
        .create_with_context(tally)
        .expect("producer");
    let mut sequence = 0u64;
    while !stop.load(Ordering::Relaxed) {
        let value = (producer << 32) | sequence;
        let payload = value.to_string();
        let record = BaseRecord::with_opaque_to(TOPIC, Box::new(value))
            .key(payload.as_bytes())
            .payload(payload.as_bytes());
        if client.send(record).is_ok() {
            sequence += 1;
        }
        client.poll(Duration::from_millis(1));
    }
    client
        .flush(Duration::from_secs(120))
        .expect("every record delivered or failed");
}

/// The node most of `leaders` name.
fn busiest(leaders: &[i32]) -> i32 {
    let mut counts: HashMap<i32, usize> = HashMap::new();
    for leader in leaders {
        *counts.entry(*leader).or_default() += 1;
    }
    counts
        .into_iter()
        .max_by_key(|(node, count)| (*count, -node))
        .expect("leaders")
        .0
}

#[test]
fn acknowledged_records_survive_sigkill_of_leaders_and_controllers() {
    let mut cluster = Cluster::new(3, &config());
    cluster.start_all();
    cluster.create_topic(NewTopic::new(TOPIC, PARTITIONS, TopicReplication::Fixed(3)).set("min.insync.replicas", "2"));
    let mut leaders = cluster.wait_for_isr(TOPIC, PARTITIONS as usize, &[1, 2, 3]);

    let tally = Tally(Arc::new(Mutex::new(Deliveries::default())));
    let stop = Arc::new(AtomicBool::new(false));
    let producers: Vec<_> = (0..PRODUCERS)
        .map(|producer| {
            let (bootstrap, tally, stop) = (cluster.bootstrap(), tally.clone(), stop.clone());
            std::thread::spawn(move || produce(bootstrap, producer, tally, stop))
        })
        .collect();
    let acked = || tally.0.lock().unwrap().acked.len();
    let wait_for_acks = |more: usize| {
        let target = acked() + more;
        let deadline = Instant::now() + WAIT;
        while acked() < target {
            assert!(Instant::now() < deadline, "acknowledgements stalled at {}", acked());
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    wait_for_acks(2_000);

    let rounds = rounds();
    for round in 0..rounds {
        let victim = if round % 2 == 0 {
            busiest(&leaders)
        } else {
            cluster.controller(cluster.running()[0])
        } as usize;
        let killed_at = Instant::now();
        cluster.kill(victim);
        // Answers the victim sent just before it died may still be reported for a moment.
        let fresh = killed_at + Duration::from_millis(200);
        let others: Vec<i32> = (1..=3).filter(|id| *id != victim as i32).collect();

        // Every partition acknowledges writes again, on leaders among the survivors.
        let deadline = killed_at + RESUME_WITHIN;
        let resumed = loop {
            let since: Vec<Instant> = {
                let deliveries = tally.0.lock().unwrap();
                (0..PARTITIONS)
                    .filter_map(|p| {
                        deliveries
                            .acked
                            .iter()
                            .rev()
                            .take_while(|a| a.at > fresh)
                            .filter(|a| a.partition == p)
                            .map(|a| a.at)
                            .last()
                    })
                    .collect()
            };
            if since.len() == PARTITIONS as usize {
                break since.into_iter().max().expect("partitions") - killed_at;
            }
            assert!(
                Instant::now() < deadline,
                "round {round}: after node {victim} was killed only {} of {PARTITIONS} partitions took writes within \
                 {RESUME_WITHIN:?}",
                since.len()
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        eprintln!("round {round}: node {victim} killed; every partition acknowledging again after {resumed:?}");

        if round % 2 == 1 {
            // A new controller creates topics. It places replicas on the brokers it has not
            // fenced, so first it fences the dead one (a full session after its election).
            cluster.wait_for_brokers(&others);
            let name = format!("after-controller-{round}");
            cluster.create_topic(NewTopic::new(&name, 2, TopicReplication::Fixed(2)));
            cluster.wait_for_isr(&name, 2, &others);
        }

        // The survivors carry on; then the victim returns, catches up and rejoins every ISR.
        wait_for_acks(1_000);
        cluster.start(victim);
        leaders = cluster.wait_for_isr(TOPIC, PARTITIONS as usize, &[1, 2, 3]);
        wait_for_acks(1_000);
    }

    stop.store(true, Ordering::Relaxed);
    for producer in producers {
        producer.join().expect("producer thread");
    }
    let deliveries = std::mem::take(&mut *tally.0.lock().unwrap());
    assert!(
        deliveries.failed.is_empty(),
        "{} deliveries failed, first {:?}",
        deliveries.failed.len(),
        deliveries.failed.first()
    );

    // Every record of every partition, read from the leaders to the end.
    let consumer: BaseConsumer = cluster
        .client_config()
        .set("group.id", "failover-check")
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "false")
        .create()
        .expect("consumer");
    let mut total = 0;
    for p in 0..PARTITIONS {
        let (low, high) = consumer.fetch_watermarks(TOPIC, p, WAIT).expect("watermarks");
        assert_eq!(low, 0);
        total += high as usize;
    }
    assign(&consumer, TOPIC, PARTITIONS, Offset::Beginning);
    let stored: Vec<(i32, i64, u64)> = consume(&consumer, total, |m| {
        let value = std::str::from_utf8(m.payload().expect("payload"))
            .expect("utf-8")
            .parse()
            .expect("a number");
        (m.partition(), m.offset(), value)
    });
    let at: HashMap<(i32, i64), u64> = stored.iter().map(|(p, o, v)| ((*p, *o), *v)).collect();
    let mut count: HashMap<u64, usize> = HashMap::new();
    for (_, _, value) in &stored {
        *count.entry(*value).or_default() += 1;
    }
    // Idempotence: nothing is stored twice, acknowledged or not.
    if let Some((value, n)) = count.iter().find(|(_, n)| **n > 1) {
        panic!("{value} stored {n} times");
    }
    for ack in &deliveries.acked {
        assert_eq!(
            at.get(&(ack.partition, ack.offset)),
            Some(&ack.value),
            "acknowledged {} at {}@{}",
            ack.value,
            ack.partition,
            ack.offset
        );
    }
    // Per partition, each producer's values in the order it sent them.
    let mut last: HashMap<(i32, u64), u64> = HashMap::new();
    for (partition, _, value) in &stored {
        if let Some(previous) = last.insert((*partition, value >> 32), *value) {
            assert!(*value > previous, "partition {partition}: {value} after {previous}");
        }
    }
    eprintln!(
        "{} records acknowledged over {rounds} kills, {total} stored",
        deliveries.acked.len()
    );
}

/// One record, acks=all (or `acks`), straight to `node`: the partition's error code.
fn produce_one(node: &common::Broker, topic: &str, acks: i16) -> i16 {
    use bytes::Bytes;
    use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
    use kafka_protocol::messages::{ApiKey, ProduceRequest, ProduceResponse, TopicName};
    use kafka_protocol::protocol::StrBytes;
    let batch = sluice::record::encode_batch(
        [(None, Some(Bytes::from_static(b"below min.isr")), 0)],
        kafka_protocol::records::Compression::None,
    )
    .expect("batch");
    let request = ProduceRequest::default()
        .with_acks(acks)
        .with_timeout_ms(1_500)
        .with_topic_data(vec![TopicProduceData::default()
            .with_name(TopicName(StrBytes::from_string(topic.to_string())))
            .with_partition_data(vec![PartitionProduceData::default()
                .with_index(0)
                .with_records(Some(batch))])]);
    let answer: ProduceResponse = common::raw::call(node, ApiKey::Produce, 11, &request);
    answer.responses[0].partition_responses[0].error_code
}

const NONE: i16 = 0;
const REQUEST_TIMED_OUT: i16 = 7;
const NOT_ENOUGH_REPLICAS: i16 = 19;

/// With `min.insync.replicas=2`, one replica down still takes acks=all writes; two of three
/// down (and with them the controller quorum, so the ISR can no longer shrink in the
/// metadata) refuses them with NOT_ENOUGH_REPLICAS once the leader finds its followers gone,
/// while acks=1 is still taken; a replica back makes acks=all work again.
#[test]
fn acks_all_is_refused_below_min_insync_replicas() {
    // Fencing a broker also takes it out of every ISR, by the controller: the session here
    // outlasts the replica lag, so the leader is the one that shrinks the ISR (and counts it).
    let config = "\"broker.session.timeout.ms\" = 8000\n\"broker.heartbeat.interval.ms\" = 500\n\"replica.lag.time.max.ms\" = 3000\n";
    let mut cluster = Cluster::new(3, config);
    cluster.start_all();
    cluster.create_topic(NewTopic::new("guarded", 1, TopicReplication::Fixed(3)).set("min.insync.replicas", "2"));
    let leader = cluster.wait_for_isr("guarded", 1, &[1, 2, 3])[0] as usize;
    let followers: Vec<usize> = (1..=3).filter(|id| *id != leader).collect();
    assert_eq!(produce_one(cluster.node(leader), "guarded", -1), NONE);

    // One follower down: it leaves the ISR and two replicas still take acks=all.
    cluster.kill(followers[0]);
    let mut two = vec![leader as i32, followers[1] as i32];
    two.sort();
    assert_eq!(cluster.wait_for_isr("guarded", 1, &two), vec![leader as i32]);
    assert_eq!(produce_one(cluster.node(leader), "guarded", -1), NONE);
    // The leader counts the shrink and reports its partition under-replicated.
    let leading = cluster.node(leader);
    assert!(leading.counter("isr_shrinks_total") >= 1);
    assert!(leading.counter("under_replicated_partitions") >= 1);
    assert!(leading.counter("leader_partitions") >= 1);
    assert_eq!(leading.counter("broker_fenced"), 0);
    let controllers: u64 = cluster
        .running()
        .iter()
        .map(|id| cluster.node(*id).counter("controller_active"))
        .sum();
    assert_eq!(controllers, 1, "one active controller among the running nodes");
    // `sluice cluster` names the controller and lists the partition short of a replica.
    let shown = std::process::Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(["cluster", "-b", &leading.addr])
        .output()
        .expect("sluice cluster");
    let text = String::from_utf8_lossy(&shown.stdout);
    assert!(
        shown.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&shown.stderr)
    );
    assert!(text.contains(" brokers, active controller "), "{text}");
    assert!(text.contains("quorum: leader"), "{text}");
    let under: Vec<&str> = text
        .lines()
        .skip_while(|l| !l.starts_with("under-replicated partitions:"))
        .take_while(|l| !l.starts_with("offline partitions:"))
        .collect();
    assert!(under.iter().any(|l| l.starts_with("guarded ")), "{text}");

    // Both down: no write is acknowledged with acks=all; once the leader sees its last
    // follower gone it refuses outright.
    cluster.kill(followers[1]);
    let deadline = Instant::now() + WAIT;
    loop {
        match produce_one(cluster.node(leader), "guarded", -1) {
            NOT_ENOUGH_REPLICAS => break,
            REQUEST_TIMED_OUT => {}
            code => panic!("acks=all with one replica of three up answered {code}"),
        }
        assert!(
            Instant::now() < deadline,
            "acks=all was never refused with NOT_ENOUGH_REPLICAS"
        );
    }
    assert_eq!(produce_one(cluster.node(leader), "guarded", -1), NOT_ENOUGH_REPLICAS);
    assert_eq!(produce_one(cluster.node(leader), "guarded", 1), NONE);

    // A follower back: the quorum returns, it catches up and acks=all is taken again.
    cluster.start(followers[1]);
    let deadline = Instant::now() + WAIT;
    while produce_one(cluster.node(leader), "guarded", -1) != NONE {
        assert!(
            Instant::now() < deadline,
            "acks=all never worked again with two replicas up"
        );
    }
}
