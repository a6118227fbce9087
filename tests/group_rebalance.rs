//! Classic-protocol rebalances as real clients drive them: a member's Heartbeat during a
//! rebalance is answered at once (REBALANCE_IN_PROGRESS) and keeps it in the group, so an
//! OffsetCommit pipelined behind it succeeds and the group completes in one more generation;
//! static members (`group.instance.id`) split a topic without owning a partition twice, and a
//! restarted static member takes its partition back without a new generation (librdkafka and
//! aiokafka).

mod common;

use std::collections::HashSet;
use std::io::Write;
use std::net::TcpStream;
use std::time::{Duration, Instant};

use bytes::{Buf, Bytes};
use common::raw::{connect, request, response};
use common::{Broker, WAIT};
use kafka_protocol::messages::describe_groups_request::DescribeGroupsRequest;
use kafka_protocol::messages::describe_groups_response::DescribeGroupsResponse;
use kafka_protocol::messages::heartbeat_request::HeartbeatRequest;
use kafka_protocol::messages::heartbeat_response::HeartbeatResponse;
use kafka_protocol::messages::join_group_request::{JoinGroupRequest, JoinGroupRequestProtocol};
use kafka_protocol::messages::join_group_response::JoinGroupResponse;
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequest, OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::offset_commit_response::OffsetCommitResponse;
use kafka_protocol::messages::offset_fetch_request::{OffsetFetchRequest, OffsetFetchRequestTopic};
use kafka_protocol::messages::offset_fetch_response::OffsetFetchResponse;
use kafka_protocol::messages::sync_group_request::{SyncGroupRequest, SyncGroupRequestAssignment};
use kafka_protocol::messages::sync_group_response::SyncGroupResponse;
use kafka_protocol::messages::{ApiKey, GroupId, TopicName};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use rdkafka::consumer::{BaseConsumer, Consumer};

const REBALANCE_IN_PROGRESS: i16 = 27;
const MEMBER_ID_REQUIRED: i16 = 79;

/// Versions the raw members speak: JoinGroup v7 (member id handshake, instance ids),
/// SyncGroup v5, Heartbeat v4, OffsetCommit v8, OffsetFetch v7, DescribeGroups v5.
const JOIN_VERSION: i16 = 7;
const SYNC_VERSION: i16 = 5;
const HEARTBEAT_VERSION: i16 = 4;
const COMMIT_VERSION: i16 = 8;
const FETCH_OFFSETS_VERSION: i16 = 7;
const DESCRIBE_VERSION: i16 = 5;

/// Well under a second: what "answered at once" means for a Heartbeat on loopback.
const PROMPT: Duration = Duration::from_millis(500);

fn text(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_string())
}

/// One client connection speaking the group protocol, with pipelined requests.
struct Connection {
    stream: TcpStream,
    correlation: i32,
}

impl Connection {
    fn open(broker: &Broker) -> Connection {
        Connection {
            stream: connect(broker),
            correlation: 0,
        }
    }

    /// Writes a request without waiting for its answer; returns its correlation id.
    fn send<Q: Encodable>(&mut self, key: ApiKey, version: i16, body: &Q) -> i32 {
        self.correlation += 1;
        self.stream
            .write_all(&request(key, version, self.correlation, body))
            .expect("send a request");
        self.correlation
    }

    /// Reads the next answer, which must be the one to `correlation`.
    fn receive<R: Decodable>(&mut self, key: ApiKey, version: i16, correlation: i32) -> R {
        response(&mut self.stream, key, version, correlation)
    }

    fn call<Q: Encodable, R: Decodable>(&mut self, key: ApiKey, version: i16, body: &Q) -> R {
        let correlation = self.send(key, version, body);
        self.receive(key, version, correlation)
    }

    /// A JoinGroup as a consumer with `member_id`; its answer comes when the join completes.
    fn send_join(&mut self, group: &str, member_id: &str, session_timeout_ms: i32) -> i32 {
        let join = JoinGroupRequest::default()
            .with_group_id(GroupId(text(group)))
            .with_session_timeout_ms(session_timeout_ms)
            .with_rebalance_timeout_ms(30_000)
            .with_member_id(text(member_id))
            .with_protocol_type(text("consumer"))
            .with_protocols(vec![JoinGroupRequestProtocol::default()
                .with_name(text("range"))
                .with_metadata(Bytes::from_static(b"subscription"))]);
        self.send(ApiKey::JoinGroup, JOIN_VERSION, &join)
    }

    fn receive_join(&mut self, correlation: i32) -> JoinGroupResponse {
        self.receive(ApiKey::JoinGroup, JOIN_VERSION, correlation)
    }

    /// The member id handshake of JoinGroup v4+: an empty id is answered MEMBER_ID_REQUIRED.
    fn member_id(&mut self, group: &str, session_timeout_ms: i32) -> String {
        let correlation = self.send_join(group, "", session_timeout_ms);
        let answer = self.receive_join(correlation);
        assert_eq!(answer.error_code, MEMBER_ID_REQUIRED);
        answer.member_id.to_string()
    }

    fn send_sync(&mut self, group: &str, generation: i32, member_id: &str, assignments: &[(&str, Bytes)]) -> i32 {
        let sync = SyncGroupRequest::default()
            .with_group_id(GroupId(text(group)))
            .with_generation_id(generation)
            .with_member_id(text(member_id))
            .with_protocol_type(Some(text("consumer")))
            .with_protocol_name(Some(text("range")))
            .with_assignments(
                assignments
                    .iter()
                    .map(|(member, assignment)| {
                        SyncGroupRequestAssignment::default()
                            .with_member_id(text(member))
                            .with_assignment(assignment.clone())
                    })
                    .collect(),
            );
        self.send(ApiKey::SyncGroup, SYNC_VERSION, &sync)
    }

    fn receive_sync(&mut self, correlation: i32) -> SyncGroupResponse {
        self.receive(ApiKey::SyncGroup, SYNC_VERSION, correlation)
    }

    fn send_heartbeat(&mut self, group: &str, generation: i32, member_id: &str) -> i32 {
        let heartbeat = HeartbeatRequest::default()
            .with_group_id(GroupId(text(group)))
            .with_generation_id(generation)
            .with_member_id(text(member_id));
        self.send(ApiKey::Heartbeat, HEARTBEAT_VERSION, &heartbeat)
    }

    fn heartbeat(&mut self, group: &str, generation: i32, member_id: &str) -> i16 {
        let correlation = self.send_heartbeat(group, generation, member_id);
        let answer: HeartbeatResponse = self.receive(ApiKey::Heartbeat, HEARTBEAT_VERSION, correlation);
        answer.error_code
    }

    fn send_commit(&mut self, group: &str, generation: i32, member_id: &str, topic: &str, offset: i64) -> i32 {
        let commit = OffsetCommitRequest::default()
            .with_group_id(GroupId(text(group)))
            .with_generation_id_or_member_epoch(generation)
            .with_member_id(text(member_id))
            .with_topics(vec![OffsetCommitRequestTopic::default()
                .with_name(TopicName(text(topic)))
                .with_partitions(vec![OffsetCommitRequestPartition::default()
                    .with_partition_index(0)
                    .with_committed_offset(offset)])]);
        self.send(ApiKey::OffsetCommit, COMMIT_VERSION, &commit)
    }

    fn committed(&mut self, group: &str, topic: &str) -> i64 {
        let fetch = OffsetFetchRequest::default()
            .with_group_id(GroupId(text(group)))
            .with_topics(Some(vec![OffsetFetchRequestTopic::default()
                .with_name(TopicName(text(topic)))
                .with_partition_indexes(vec![0])]));
        let answer: OffsetFetchResponse = self.call(ApiKey::OffsetFetch, FETCH_OFFSETS_VERSION, &fetch);
        assert_eq!(answer.error_code, 0);
        answer.topics[0].partitions[0].committed_offset
    }
}

/// The group as DescribeGroups shows it: state, and (member id, assignment) of each member.
fn describe(broker: &Broker, group: &str) -> (String, Vec<(String, Bytes)>) {
    let mut connection = Connection::open(broker);
    let request = DescribeGroupsRequest::default().with_groups(vec![GroupId(text(group))]);
    let answer: DescribeGroupsResponse = connection.call(ApiKey::DescribeGroups, DESCRIBE_VERSION, &request);
    let described = &answer.groups[0];
    assert_eq!(described.error_code, 0);
    let members = described
        .members
        .iter()
        .map(|m| (m.member_id.to_string(), m.member_assignment.clone()))
        .collect();
    (described.group_state.to_string(), members)
}

fn wait_for_state(broker: &Broker, group: &str, state: &str) {
    let deadline = Instant::now() + WAIT;
    while describe(broker, group).0 != state {
        assert!(Instant::now() < deadline, "group {group} not {state} within {WAIT:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The generations of `group` whose assignment was handed out, in order, from the broker's
/// log.
fn generations(broker: &Broker, group: &str) -> Vec<i32> {
    let needle = format!("group {group}: generation ");
    broker
        .log
        .lock()
        .unwrap()
        .iter()
        .filter_map(|line| {
            let rest = &line[line.find(&needle)? + needle.len()..];
            rest.split_whitespace().next()?.parse().ok()
        })
        .collect()
}

#[test]
fn a_heartbeat_during_a_rebalance_is_answered_at_once_and_keeps_the_member() {
    let broker = Broker::start_with_config(
        "\"group.initial.rebalance.delay.ms\" = 200\n\"group.min.session.timeout.ms\" = 1000\n",
    );
    broker.create_topic("rebalanced", 1);
    let group = "heartbeats";
    let session_timeout_ms = 1500;

    // Generation 1: member a alone.
    let mut a = Connection::open(&broker);
    let a_id = a.member_id(group, session_timeout_ms);
    let join = a.send_join(group, &a_id, session_timeout_ms);
    let first = a.receive_join(join);
    assert_eq!((first.error_code, first.generation_id), (0, 1));
    assert_eq!(first.leader.as_str(), a_id);
    let sync = a.send_sync(group, 1, &a_id, &[(&a_id, Bytes::from_static(b"a:1"))]);
    assert_eq!(a.receive_sync(sync).error_code, 0);
    assert_eq!(a.heartbeat(group, 1, &a_id), 0);

    // Member b joins: its JoinGroup waits while a must rejoin.
    let mut b = Connection::open(&broker);
    let b_id = b.member_id(group, session_timeout_ms);
    let b_join = b.send_join(group, &b_id, session_timeout_ms);
    wait_for_state(&broker, group, "PreparingRebalance");

    // a's Heartbeat and an OffsetCommit pipelined behind it on the same connection.
    let started = Instant::now();
    let heartbeat = a.send_heartbeat(group, 1, &a_id);
    let commit = a.send_commit(group, 1, &a_id, "rebalanced", 42);
    let answer: HeartbeatResponse = a.receive(ApiKey::Heartbeat, HEARTBEAT_VERSION, heartbeat);
    let heartbeat_took = started.elapsed();
    assert_eq!(answer.error_code, REBALANCE_IN_PROGRESS);
    assert!(heartbeat_took < PROMPT, "the heartbeat took {heartbeat_took:?}");
    let committed: OffsetCommitResponse = a.receive(ApiKey::OffsetCommit, COMMIT_VERSION, commit);
    assert_eq!(committed.topics[0].partitions[0].error_code, 0, "the commit succeeded");
    assert_eq!(a.committed(group, "rebalanced"), 42);

    // Heartbeats keep a in the group past its session timeout while it has not rejoined.
    let until = Instant::now() + Duration::from_millis(2 * session_timeout_ms as u64);
    while Instant::now() < until {
        let sent = Instant::now();
        let code = a.heartbeat(group, 1, &a_id);
        assert!(sent.elapsed() < PROMPT, "a heartbeat took {:?}", sent.elapsed());
        assert_eq!(
            code,
            REBALANCE_IN_PROGRESS,
            "{:?} into the rebalance",
            started.elapsed()
        );
        std::thread::sleep(Duration::from_millis(300));
    }

    // a rejoins: both joins complete generation 2, exactly one more generation.
    let a_join = a.send_join(group, &a_id, session_timeout_ms);
    let a_second = a.receive_join(a_join);
    let b_second = b.receive_join(b_join);
    assert_eq!((a_second.error_code, a_second.generation_id), (0, 2));
    assert_eq!((b_second.error_code, b_second.generation_id), (0, 2));
    assert_eq!(a_second.leader.as_str(), a_id, "the leader stays the leader");
    let roster: HashSet<String> = a_second.members.iter().map(|m| m.member_id.to_string()).collect();
    assert_eq!(roster, HashSet::from([a_id.clone(), b_id.clone()]));

    let b_sync = b.send_sync(group, 2, &b_id, &[]);
    let a_sync = a.send_sync(
        group,
        2,
        &a_id,
        &[(&a_id, Bytes::from_static(b"a:2")), (&b_id, Bytes::from_static(b"b:2"))],
    );
    assert_eq!(a.receive_sync(a_sync).assignment, Bytes::from_static(b"a:2"));
    assert_eq!(b.receive_sync(b_sync).assignment, Bytes::from_static(b"b:2"));
    assert_eq!(a.heartbeat(group, 2, &a_id), 0);
    assert_eq!(b.heartbeat(group, 2, &b_id), 0);

    let (state, mut members) = describe(&broker, group);
    members.sort();
    let mut expected = vec![
        (a_id.clone(), Bytes::from_static(b"a:2")),
        (b_id.clone(), Bytes::from_static(b"b:2")),
    ];
    expected.sort();
    assert_eq!((state.as_str(), members), ("Stable", expected));
    assert_eq!(generations(&broker, group), [1, 2], "generations 1 and 2, no other");
}

// ---- static members with librdkafka --------------------------------------------------------

const STATIC_TOPIC: &str = "static-split";

/// The broker's shortest session timeout in the static tests, so a member's session can be
/// shorter than another's heartbeat interval.
const STATIC_CONFIG: &str = "\"group.initial.rebalance.delay.ms\" = 300\n\"group.min.session.timeout.ms\" = 1000\n";

/// How soon a split must follow the second member's start: a few of the first member's
/// heartbeat intervals (3 s), with room for a slow machine; well under its session (30 s).
const SPLIT_WITHIN: Duration = Duration::from_secs(12);

/// A static member heartbeating every `heartbeat_ms`, with session timeout `session_ms`.
fn static_member(broker: &Broker, group: &str, instance: &str, session_ms: &str, heartbeat_ms: &str) -> BaseConsumer {
    let consumer = broker.consumer(&[
        ("group.id", group),
        ("group.instance.id", instance),
        ("session.timeout.ms", session_ms),
        ("heartbeat.interval.ms", heartbeat_ms),
        ("auto.offset.reset", "earliest"),
        ("partition.assignment.strategy", "range"),
    ]);
    consumer.subscribe(&[STATIC_TOPIC]).expect("subscribe");
    consumer
}

fn owned(consumer: &BaseConsumer) -> Vec<i32> {
    let mut partitions: Vec<i32> = consumer
        .assignment()
        .expect("assignment")
        .elements_for_topic(STATIC_TOPIC)
        .iter()
        .map(|e| e.partition())
        .collect();
    partitions.sort();
    partitions
}

/// Polls every consumer until `done` holds, checking that no partition is ever owned twice.
fn pump(consumers: &[&BaseConsumer], what: &str, done: impl Fn(&[Vec<i32>]) -> bool) {
    let deadline = Instant::now() + WAIT;
    loop {
        for consumer in consumers {
            while let Some(result) = consumer.poll(Duration::from_millis(10)) {
                match result {
                    Ok(_) | Err(rdkafka::error::KafkaError::PartitionEOF(_)) => {}
                    Err(e) => panic!("consumer error while waiting for {what}: {e}"),
                }
            }
        }
        let owners: Vec<Vec<i32>> = consumers.iter().map(|c| owned(c)).collect();
        let all: Vec<i32> = owners.iter().flatten().copied().collect();
        let unique: HashSet<i32> = all.iter().copied().collect();
        assert_eq!(all.len(), unique.len(), "a partition owned twice: {owners:?}");
        if done(&owners) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{what} did not happen within {WAIT:?}: {owners:?}"
        );
    }
}

/// The partitions of [`STATIC_TOPIC`] in a ConsumerProtocolAssignment (any version).
fn assigned_partitions(assignment: &[u8]) -> Vec<i32> {
    let mut bytes = assignment;
    if bytes.is_empty() {
        return Vec::new();
    }
    let _version = bytes.get_i16();
    let mut partitions = Vec::new();
    for _ in 0..bytes.get_i32() {
        let length = bytes.get_i16() as usize;
        let topic = std::str::from_utf8(&bytes[..length]).expect("topic name").to_string();
        bytes.advance(length);
        for _ in 0..bytes.get_i32() {
            let partition = bytes.get_i32();
            if topic == STATIC_TOPIC {
                partitions.push(partition);
            }
        }
    }
    partitions.sort();
    partitions
}

/// Each member's partitions as the coordinator recorded them (DescribeGroups), sorted.
fn described_partitions(consumer: &BaseConsumer, group: &str) -> Vec<Vec<i32>> {
    let groups = consumer
        .fetch_group_list(Some(group), WAIT)
        .expect("describe the group");
    let described = &groups.groups()[0];
    assert_eq!(described.state(), "Stable");
    let mut members: Vec<Vec<i32>> = described
        .members()
        .iter()
        .map(|m| assigned_partitions(m.assignment().unwrap_or_default()))
        .collect();
    members.sort();
    members
}

#[test]
fn static_members_own_one_partition_each_and_a_restart_keeps_the_generation() {
    let broker = Broker::start_with_config(STATIC_CONFIG);
    broker.create_topic(STATIC_TOPIC, 2);
    let group = "static-split";

    // Alpha hears of a rebalance only at its next heartbeat, up to 3 s away: longer than
    // beta's whole session, which must not matter while beta waits on its join.
    let alpha = static_member(&broker, group, "alpha", "30000", "3000");
    pump(&[&alpha], "alpha to own both partitions", |o| o[0] == [0, 1]);
    assert_eq!(generations(&broker, group), [1]);

    // A new static member joins a Stable group: alpha must give a partition up first.
    let started = Instant::now();
    let beta = static_member(&broker, group, "beta", "1000", "300");
    pump(&[&alpha, &beta], "a split into one partition each", |o| {
        o[0].len() == 1 && o[1].len() == 1
    });
    let took = started.elapsed();
    assert!(took < SPLIT_WITHIN, "the split took {took:?}: alpha heard of it late");
    assert_eq!(generations(&broker, group), [1, 2], "one rebalance for the new member");
    let (alpha_owns, beta_owns) = (owned(&alpha), owned(&beta));
    let mut clients = vec![alpha_owns.clone(), beta_owns.clone()];
    clients.sort();
    assert_eq!(
        described_partitions(&beta, group),
        clients,
        "DescribeGroups agrees with the clients"
    );

    // Alpha (the leader) restarts: a static member's close does not leave the group, and
    // its replacement with the same instance id takes its partition back with no new
    // generation, while beta keeps its own.
    drop(alpha);
    let alpha = static_member(&broker, group, "alpha", "30000", "3000");
    pump(&[&alpha, &beta], "alpha to get its partition back", |o| {
        assert_eq!(o[1], beta_owns, "beta's assignment never changed");
        o[0] == alpha_owns
    });
    assert_eq!(
        generations(&broker, group),
        [1, 2],
        "the restart completed no new generation"
    );
    assert_eq!(
        described_partitions(&beta, group),
        clients,
        "still the same two members"
    );
}

// ---- static members with aiokafka -----------------------------------------------------------

/// The reported case: two aiokafka consumers with `group_instance_id` on a two-partition
/// topic, the second started after the first owns both partitions; the first hears of the
/// rebalance later than the second's session timeout.
#[test]
fn aiokafka_static_members_never_own_a_partition_twice() {
    let broker = Broker::start_with_config(STATIC_CONFIG);
    broker.create_topic("aiokafka-static", 2);
    common::run_python(
        "aiokafka_static.py",
        &[broker.addr.as_str(), "aiokafka-static", "aiokafka-static"],
    );
    assert_eq!(
        generations(&broker, "aiokafka-static"),
        [1, 2],
        "one generation for the first member, one for the second, none for the restart"
    );
}
