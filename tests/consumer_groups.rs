//! Classic consumer groups with librdkafka: partitions split across members exactly once,
//! failover when a member vanishes (killed, no LeaveGroup), offsets that survive a broker
//! restart, and independent groups on one topic.

mod common;

use std::collections::{HashMap, HashSet};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use common::{flush, send, Broker, WAIT};
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::BaseRecord;

const TOPIC: &str = "work";
const PARTITIONS: i32 = 12;
/// Short initial rebalance delay so groups form quickly in tests.
const CONFIG: &str = "\"group.initial.rebalance.delay.ms\" = 300\n";

struct Member {
    consumer: BaseConsumer,
    /// (partition, offset, value) in arrival order.
    received: Vec<(i32, i64, String)>,
}

fn member(broker: &Broker, group: &str, extra: &[(&str, &str)]) -> Member {
    let mut settings = vec![
        ("group.id", group),
        ("session.timeout.ms", "6000"),
        ("heartbeat.interval.ms", "300"),
        ("auto.offset.reset", "earliest"),
        ("partition.assignment.strategy", "range"),
    ];
    settings.extend_from_slice(extra);
    let consumer = broker.consumer(&settings);
    consumer.subscribe(&[TOPIC]).expect("subscribe");
    Member {
        consumer,
        received: Vec::new(),
    }
}

fn assigned(member: &Member) -> Vec<i32> {
    let mut partitions: Vec<i32> = member
        .consumer
        .assignment()
        .expect("assignment")
        .elements_for_topic(TOPIC)
        .iter()
        .map(|e| e.partition())
        .collect();
    partitions.sort();
    partitions
}

/// Polls every member until `done` holds, failing after [`WAIT`].
fn pump(members: &mut [Member], what: &str, done: impl Fn(&[Member]) -> bool) {
    let deadline = Instant::now() + WAIT;
    loop {
        for member in members.iter_mut() {
            while let Some(result) = member.consumer.poll(Duration::from_millis(10)) {
                match result {
                    Ok(m) => member.received.push((
                        m.partition(),
                        m.offset(),
                        String::from_utf8(m.payload().unwrap_or_default().to_vec()).unwrap(),
                    )),
                    Err(rdkafka::error::KafkaError::PartitionEOF(_)) => {}
                    Err(e) => panic!("consumer error while waiting for {what}: {e}"),
                }
            }
        }
        if done(members) {
            return;
        }
        assert!(Instant::now() < deadline, "{what} did not happen within {WAIT:?}");
    }
}

/// The members' assignments cover `count` partitions between them, each exactly once.
fn exact_cover(members: &[Member], count: usize) -> bool {
    let all: Vec<i32> = members.iter().flat_map(assigned).collect();
    let unique: HashSet<i32> = all.iter().copied().collect();
    all.len() == count && unique.len() == count
}

fn produce(broker: &Broker, from: usize, to: usize) {
    let producer = broker.producer(&[]);
    for i in from..to {
        let value = i.to_string();
        send(
            &producer,
            BaseRecord::to(TOPIC).key(value.as_bytes()).payload(value.as_bytes()),
        );
    }
    flush(&producer);
}

fn values(members: &[Member]) -> Vec<usize> {
    members
        .iter()
        .flat_map(|m| m.received.iter().map(|(_, _, v)| v.parse::<usize>().unwrap()))
        .collect()
}

#[test]
fn three_members_split_twelve_partitions_and_consume_everything_once() {
    let broker = Broker::start_with_config(CONFIG);
    broker.create_topic(TOPIC, PARTITIONS);
    let mut members: Vec<Member> = (0..3).map(|_| member(&broker, "split", &[])).collect();
    pump(&mut members, "an even, exact assignment", |m| {
        exact_cover(m, PARTITIONS as usize) && m.iter().all(|m| assigned(m).len() == 4)
    });

    produce(&broker, 0, 3000);
    pump(&mut members, "every record consumed", |m| values(m).len() >= 3000);
    let mut all = values(&members);
    all.sort();
    assert_eq!(
        all,
        (0..3000).collect::<Vec<_>>(),
        "each record exactly once across the group"
    );
    for m in &members {
        let owned: HashSet<i32> = assigned(m).into_iter().collect();
        assert!(
            m.received.iter().all(|(p, _, _)| owned.contains(p)),
            "records only from owned partitions"
        );
    }

    // The group is visible through ListGroups and DescribeGroups.
    let groups = members[0]
        .consumer
        .fetch_group_list(Some("split"), WAIT)
        .expect("group list");
    let group = &groups.groups()[0];
    assert_eq!(group.state(), "Stable");
    assert_eq!(group.protocol(), "range");
    assert_eq!(group.members().len(), 3);
}

/// Set by the parent for the child process that plays the member that vanishes.
const VANISHING_MEMBER: &str = "SLUICE_TEST_VANISHING_MEMBER";
/// The group and protocol ("classic" or "consumer") the vanishing member uses.
const VANISHING_GROUP: &str = "SLUICE_TEST_VANISHING_GROUP";
const VANISHING_PROTOCOL: &str = "SLUICE_TEST_VANISHING_PROTOCOL";

/// Not a test on its own: the member process of `a_vanished_member_is_replaced...`, which
/// joins the group and consumes until the parent kills it with SIGKILL.
#[test]
#[ignore = "helper process for the vanishing-member test"]
fn vanishing_member_process() {
    let Ok(bootstrap) = std::env::var(VANISHING_MEMBER) else {
        return;
    };
    let group = std::env::var(VANISHING_GROUP).expect("group");
    let mut config = rdkafka::config::ClientConfig::new();
    config
        .set("bootstrap.servers", &bootstrap)
        .set("group.id", &group)
        .set("auto.offset.reset", "earliest");
    if std::env::var(VANISHING_PROTOCOL).as_deref() == Ok("consumer") {
        config.set("group.protocol", "consumer");
    } else {
        config
            .set("session.timeout.ms", "6000")
            .set("heartbeat.interval.ms", "300")
            .set("partition.assignment.strategy", "range");
    }
    let consumer: BaseConsumer = config.create().expect("consumer");
    consumer.subscribe(&[TOPIC]).expect("subscribe");
    loop {
        let _ = consumer.poll(Duration::from_millis(100));
    }
}

/// The member process; killed when dropped, so a failing test never leaves it running.
struct MemberProcess(Child);

impl MemberProcess {
    fn kill(&mut self) {
        self.0.kill().expect("kill the member process");
        self.0.wait().expect("reap the member process");
    }
}

impl Drop for MemberProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Kills the member process once records flow, waits for the survivors to own every
/// partition, and checks that together they consume every record, none twice per member.
/// Returns how long the takeover took.
fn fail_over_and_check(broker: &Broker, members: &mut [Member], child: &mut MemberProcess) -> Duration {
    produce(broker, 0, 600);
    child.kill();
    let killed = Instant::now();
    pump(members, "the survivors taking every partition", |m| {
        exact_cover(m, PARTITIONS as usize)
    });
    let failover = killed.elapsed();
    // Detection takes one session timeout (6 s here) and the takeover one rebalance; the bound
    // is loose on purpose, but far below the 60 s generic wait, so a session that never
    // expired would fail here.
    assert!(failover < Duration::from_secs(30), "takeover took {failover:?}");
    produce(broker, 600, 1200);
    pump(members, "every record consumed by the survivors", |m| {
        values(m).into_iter().collect::<HashSet<_>>().len() >= 1200
    });
    let seen: HashSet<usize> = values(members).into_iter().collect();
    assert_eq!(seen, (0..1200).collect::<HashSet<_>>(), "no record is lost");
    for m in members.iter() {
        let mut positions = HashSet::new();
        for (p, offset, _) in &m.received {
            assert!(positions.insert((*p, *offset)), "a member received {p}@{offset} twice");
        }
    }
    failover
}

fn spawn_vanishing_member(broker: &Broker, group: &str, protocol: &str) -> MemberProcess {
    let child = Command::new(std::env::current_exe().expect("test binary"))
        .args(["--exact", "vanishing_member_process", "--ignored", "--nocapture"])
        .env(VANISHING_MEMBER, &broker.addr)
        .env(VANISHING_GROUP, group)
        .env(VANISHING_PROTOCOL, protocol)
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("spawn member process");
    MemberProcess(child)
}

#[test]
fn a_vanished_member_is_replaced_within_the_session_timeout() {
    let broker = Broker::start_with_config(CONFIG);
    broker.create_topic(TOPIC, PARTITIONS);
    let mut child = spawn_vanishing_member(&broker, "failover", "classic");
    let commit_often = [
        ("enable.auto.commit", "true"),
        ("enable.auto.offset.store", "true"),
        ("auto.commit.interval.ms", "100"),
    ];
    let mut members: Vec<Member> = (0..2).map(|_| member(&broker, "failover", &commit_often)).collect();
    // Two of three members: 8 of 12 partitions here, the other 4 with the child.
    pump(&mut members, "a three-way split", |m| {
        exact_cover(m, 8) && m.iter().all(|m| assigned(m).len() == 4)
    });
    let failover = fail_over_and_check(&broker, &mut members, &mut child);
    eprintln!("classic failover took {failover:?} (session timeout 6 s)");
}

#[test]
fn committed_offsets_survive_a_restart_and_a_new_member_resumes_there() {
    let mut broker = Broker::start_with_config(CONFIG);
    broker.create_topic(TOPIC, PARTITIONS);
    produce(&broker, 0, 1200);
    let manual = [("enable.auto.commit", "false"), ("enable.auto.offset.store", "true")];
    let mut first = vec![member(&broker, "resume", &manual)];
    pump(&mut first, "half the records", |m| m[0].received.len() >= 600);
    let consumed = first[0].received.clone();
    first[0]
        .consumer
        .commit_consumer_state(CommitMode::Sync)
        .expect("commit");
    let mut committed: HashMap<i32, i64> = HashMap::new();
    for (p, offset, _) in &consumed {
        let next = committed.entry(*p).or_insert(0);
        *next = (*next).max(offset + 1);
    }
    drop(first);

    broker.restart();
    let mut second = vec![member(&broker, "resume", &manual)];
    pump(&mut second, "the rest of the records", |m| {
        m[0].received.len() >= 1200 - consumed.len()
    });
    let mut first_seen: HashMap<i32, i64> = HashMap::new();
    for (p, offset, _) in &second[0].received {
        first_seen.entry(*p).or_insert(*offset);
    }
    for (p, start) in &first_seen {
        assert_eq!(
            *start,
            committed.get(p).copied().unwrap_or(0),
            "partition {p} resumed at its commit"
        );
    }
    let mut all: Vec<usize> = consumed.iter().map(|(_, _, v)| v.parse().unwrap()).collect();
    all.extend(values(&second));
    all.sort();
    assert_eq!(
        all,
        (0..1200).collect::<Vec<_>>(),
        "nothing skipped or repeated across the restart"
    );
}

#[test]
fn two_groups_each_receive_everything() {
    let broker = Broker::start_with_config(CONFIG);
    broker.create_topic(TOPIC, PARTITIONS);
    produce(&broker, 0, 500);
    let mut a = vec![member(&broker, "group-a", &[]), member(&broker, "group-a", &[])];
    let mut b = vec![member(&broker, "group-b", &[])];
    pump(&mut a, "group a to read everything", |m| values(m).len() >= 500);
    pump(&mut b, "group b to read everything", |m| values(m).len() >= 500);
    for group in [&a, &b] {
        let mut all = values(group);
        all.sort();
        assert_eq!(all, (0..500).collect::<Vec<_>>());
    }
}

/// Polls until `done`, checking `invariant` after every round.
fn pump_checking(members: &mut [Member], what: &str, invariant: impl Fn(&[Member]), done: impl Fn(&[Member]) -> bool) {
    pump(members, what, |m| {
        invariant(m);
        done(m)
    });
}

#[test]
fn cooperative_sticky_rebalances_incrementally() {
    let broker = Broker::start_with_config(CONFIG);
    broker.create_topic(TOPIC, PARTITIONS);
    let cooperative = [("partition.assignment.strategy", "cooperative-sticky")];
    let mut members = vec![
        member(&broker, "sticky", &cooperative),
        member(&broker, "sticky", &cooperative),
    ];
    pump(&mut members, "a two-way split", |m| {
        exact_cover(m, 12) && m.iter().all(|m| assigned(m).len() == 6)
    });
    let before: Vec<HashSet<i32>> = members.iter().map(|m| assigned(m).into_iter().collect()).collect();

    members.push(member(&broker, "sticky", &cooperative));
    pump_checking(
        &mut members,
        "a three-way split",
        |m| {
            // Incremental: the first two keep what they had while the newcomer joins; they
            // only ever give partitions up, never take new ones, and never drop to nothing.
            for (i, previous) in before.iter().enumerate() {
                let now: HashSet<i32> = assigned(&m[i]).into_iter().collect();
                assert!(!now.is_empty(), "member {i} lost every partition: an eager revocation");
                assert!(now.is_subset(previous), "member {i} gained partitions it did not have");
            }
        },
        |m| exact_cover(m, 12) && m.iter().all(|m| assigned(m).len() == 4),
    );
}

#[test]
fn a_static_member_rejoins_without_a_rebalance() {
    let broker = Broker::start_with_config(CONFIG);
    broker.create_topic(TOPIC, PARTITIONS);
    let static_member = |instance: &str| {
        member(
            &broker,
            "static",
            &[("group.instance.id", instance), ("session.timeout.ms", "30000")],
        )
    };
    let mut members = vec![static_member("alpha"), static_member("beta")];
    pump(&mut members, "a two-way split", |m| {
        exact_cover(m, 12) && m.iter().all(|m| assigned(m).len() == 6)
    });
    let alpha = assigned(&members[0]);
    let beta = assigned(&members[1]);

    // Beta restarts: a static member's close does not leave the group, and its replacement
    // with the same instance id takes over its partitions without a rebalance.
    let restarted = members.pop().expect("beta");
    drop(restarted);
    members.push(static_member("beta"));
    pump_checking(
        &mut members,
        "beta to get its partitions back",
        |m| assert_eq!(assigned(&m[0]), alpha, "alpha's assignment never changed"),
        |m| assigned(&m[1]) == beta,
    );
    let groups = members[0]
        .consumer
        .fetch_group_list(Some("static"), WAIT)
        .expect("group list");
    assert_eq!(groups.groups()[0].members().len(), 2, "still two members");
    let generations = broker
        .log
        .lock()
        .unwrap()
        .iter()
        .filter(|line| line.contains("group static: generation"))
        .count();
    assert_eq!(generations, 1, "the rejoin completed no new generation");
}

/// Consumer-protocol (KIP-848) members: the broker's uniform assignor splits the topic, and a
/// killed member's partitions move to the survivors within the session timeout.
#[test]
fn consumer_protocol_members_split_and_fail_over() {
    let broker = Broker::start_with_config(
        "\"group.consumer.session.timeout.ms\" = 6000\n\"group.consumer.heartbeat.interval.ms\" = 300\n\
         \"group.consumer.min.session.timeout.ms\" = 1000\n\"group.consumer.min.heartbeat.interval.ms\" = 100\n",
    );
    broker.create_topic(TOPIC, PARTITIONS);
    let consumer_member = |broker: &Broker| {
        let consumer = broker.consumer(&[
            ("group.id", "kip848"),
            ("group.protocol", "consumer"),
            ("auto.offset.reset", "earliest"),
            ("enable.auto.commit", "true"),
            ("enable.auto.offset.store", "true"),
            ("auto.commit.interval.ms", "100"),
        ]);
        consumer.subscribe(&[TOPIC]).expect("subscribe");
        Member {
            consumer,
            received: Vec::new(),
        }
    };
    let mut child = spawn_vanishing_member(&broker, "kip848", "consumer");
    let mut members = vec![consumer_member(&broker), consumer_member(&broker)];
    pump(&mut members, "a three-way split by the broker", |m| {
        exact_cover(m, 8) && m.iter().all(|m| assigned(m).len() == 4)
    });
    let failover = fail_over_and_check(&broker, &mut members, &mut child);
    eprintln!("consumer-protocol failover took {failover:?} (session timeout 6 s)");
    // DescribeGroups shows a consumer-protocol group as Kafka does.
    let groups = members[0]
        .consumer
        .fetch_group_list(Some("kip848"), WAIT)
        .expect("group list");
    let group = &groups.groups()[0];
    assert_eq!((group.protocol_type(), group.protocol()), ("consumer", "uniform"));
    assert_eq!(group.members().len(), 2, "the killed member is gone");
}

/// `offsets.retention.minutes`: a standalone consumer's commit (no group members) expires
/// that long after it was made.
#[test]
fn offsets_of_a_group_without_members_expire_after_the_retention() {
    let broker = Broker::start_with_config("\"offsets.retention.minutes\" = 1\n");
    broker.create_topic(TOPIC, 1);
    let consumer = broker.consumer(&[("group.id", "standalone")]);
    let mut list = rdkafka::TopicPartitionList::new();
    list.add_partition_offset(TOPIC, 0, rdkafka::Offset::Offset(42))
        .unwrap();
    consumer.commit(&list, CommitMode::Sync).expect("standalone commit");
    let committed = |consumer: &BaseConsumer| {
        let mut wanted = rdkafka::TopicPartitionList::new();
        wanted.add_partition(TOPIC, 0);
        consumer
            .committed_offsets(wanted, WAIT)
            .expect("committed")
            .find_partition(TOPIC, 0)
            .expect("partition")
            .offset()
    };
    assert_eq!(committed(&consumer), rdkafka::Offset::Offset(42));
    let committed_at = Instant::now();
    // Retention is one minute: poll until the offset is gone, allowing generous slack.
    let deadline = committed_at + Duration::from_secs(150);
    while committed(&consumer) != rdkafka::Offset::Invalid {
        assert!(Instant::now() < deadline, "the offset never expired");
        std::thread::sleep(Duration::from_millis(500));
    }
    assert!(
        committed_at.elapsed() >= Duration::from_secs(55),
        "expired before the retention"
    );
}
