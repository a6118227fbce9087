//! `sluice consume -g`: a member of a classic consumer group (JoinGroup, SyncGroup, Heartbeat,
//! LeaveGroup), subscribed to one topic with the range assignor. When it leads the group it
//! assigns every member's subscribed topics as Kafka's RangeAssignor does: per topic, the
//! members subscribed to it in member-id order each take a contiguous run of partitions, the
//! first `partitions % members` one more. Offsets are fetched when partitions are assigned
//! and committed with the member's generation.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use anyhow::Context;
use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::consumer_protocol_assignment::TopicPartition;
use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use kafka_protocol::messages::join_group_response::JoinGroupResponseMember;
use kafka_protocol::messages::leave_group_request::MemberIdentity;
use kafka_protocol::messages::offset_commit_request::{OffsetCommitRequestPartition, OffsetCommitRequestTopic};
use kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestTopic;
use kafka_protocol::messages::sync_group_request::SyncGroupRequestAssignment;
use kafka_protocol::messages::{
    ConsumerProtocolAssignment, ConsumerProtocolSubscription, FindCoordinatorRequest, GroupId, HeartbeatRequest,
    JoinGroupRequest, LeaveGroupRequest, OffsetCommitRequest, OffsetFetchRequest, SyncGroupRequest,
};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};

use crate::cli::client::{self, check, topic_name, Client};

const FIND_COORDINATOR_VERSION: i16 = 3;
const JOIN_GROUP_VERSION: i16 = 7;
const SYNC_GROUP_VERSION: i16 = 5;
const HEARTBEAT_VERSION: i16 = 4;
const LEAVE_GROUP_VERSION: i16 = 4;
const OFFSET_FETCH_VERSION: i16 = 7;
const OFFSET_COMMIT_VERSION: i16 = 8;
/// The version of the subscription and assignment this member writes.
const CONSUMER_PROTOCOL_VERSION: i16 = 0;
/// The newest version kafka-protocol reads; later versions only append fields.
const CONSUMER_PROTOCOL_VERSION_MAX: i16 = 3;
const ASSIGNOR: &str = "range";
/// Within Kafka's default group.min.session.timeout.ms (6 s) and max (30 min).
const SESSION_TIMEOUT_MS: i32 = 10_000;
/// How long the coordinator waits for members to rejoin; under the client's reply timeout, so
/// a JoinGroup held for a rebalance is still read.
const REBALANCE_TIMEOUT_MS: i32 = 20_000;
const HEARTBEAT_INTERVAL: Duration = Duration::from_secs(3);
/// Longest joining may take, retries included.
const JOIN_TIMEOUT: Duration = Duration::from_secs(60);
/// Pause before retrying a coordinator that is loading or moving.
const RETRY_BACKOFF: Duration = Duration::from_millis(100);

/// What a heartbeat found.
pub enum Beat {
    Stable,
    /// A rebalance began: commit, then join again.
    Rebalance,
    /// This member's generation is over: join again without committing.
    Lost,
}

pub struct Member {
    bootstrap: String,
    coordinator: Client,
    group: String,
    topic: String,
    member_id: String,
    generation: i32,
    last_heartbeat: Instant,
}

fn str_bytes(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_string())
}

fn group_id(group: &str) -> GroupId {
    GroupId(str_bytes(group))
}

/// The broker coordinating `group`.
fn find_coordinator(bootstrap: &str, group: &str) -> anyhow::Result<Client> {
    let deadline = Instant::now() + JOIN_TIMEOUT;
    loop {
        let found = Client::connect(bootstrap)?.call(
            FIND_COORDINATOR_VERSION,
            &FindCoordinatorRequest::default().with_key(str_bytes(group)),
        )?;
        let retriable = ResponseError::try_from_code(found.error_code).is_some_and(|e| e.is_retriable());
        if found.error_code == 0 {
            let address = format!("{}:{}", found.host.as_str(), found.port);
            return Client::connect(&address).with_context(|| format!("the coordinator of group {group}"));
        }
        if !retriable || Instant::now() >= deadline {
            check(
                found.error_code,
                found.error_message.as_ref(),
                format_args!("finding the coordinator of group {group}"),
            )?;
        }
        std::thread::sleep(RETRY_BACKOFF);
    }
}

/// A retriable coordinator error: the member finds the coordinator again and retries.
fn coordinator_moved(code: i16) -> bool {
    [
        ResponseError::CoordinatorNotAvailable,
        ResponseError::CoordinatorLoadInProgress,
        ResponseError::NotCoordinator,
    ]
    .iter()
    .any(|e| e.code() == code)
}

impl Member {
    pub fn new(bootstrap: &str, group: &str, topic: &str) -> anyhow::Result<Member> {
        Ok(Member {
            bootstrap: bootstrap.to_string(),
            coordinator: find_coordinator(bootstrap, group)?,
            group: group.to_string(),
            topic: topic.to_string(),
            member_id: String::new(),
            generation: -1,
            last_heartbeat: Instant::now(),
        })
    }

    /// Joins (or rejoins) the group and returns the partitions of the topic assigned to this
    /// member, in order.
    pub fn join(&mut self) -> anyhow::Result<Vec<i32>> {
        let deadline = Instant::now() + JOIN_TIMEOUT;
        let mut subscription = BytesMut::new();
        subscription.put_i16(CONSUMER_PROTOCOL_VERSION);
        ConsumerProtocolSubscription::default()
            .with_topics(vec![str_bytes(&self.topic)])
            .encode(&mut subscription, CONSUMER_PROTOCOL_VERSION)?;
        let subscription = subscription.freeze();
        loop {
            anyhow::ensure!(
                Instant::now() < deadline,
                "could not join group {} within {JOIN_TIMEOUT:?}",
                self.group
            );
            let request = JoinGroupRequest::default()
                .with_group_id(group_id(&self.group))
                .with_session_timeout_ms(SESSION_TIMEOUT_MS)
                .with_rebalance_timeout_ms(REBALANCE_TIMEOUT_MS)
                .with_member_id(str_bytes(&self.member_id))
                .with_protocol_type(str_bytes("consumer"))
                .with_protocols(vec![JoinGroupRequestProtocol::default()
                    .with_name(str_bytes(ASSIGNOR))
                    .with_metadata(subscription.clone())]);
            let joined = self.coordinator.call(JOIN_GROUP_VERSION, &request)?;
            match ResponseError::try_from_code(joined.error_code) {
                None => {}
                Some(ResponseError::MemberIdRequired) => {
                    self.member_id = joined.member_id.to_string();
                    continue;
                }
                Some(ResponseError::UnknownMemberId) => {
                    self.member_id.clear();
                    continue;
                }
                Some(_) if coordinator_moved(joined.error_code) => {
                    std::thread::sleep(RETRY_BACKOFF);
                    self.coordinator = find_coordinator(&self.bootstrap, &self.group)?;
                    continue;
                }
                Some(_) => check(joined.error_code, None, format_args!("joining group {}", self.group))?,
            }
            self.member_id = joined.member_id.to_string();
            self.generation = joined.generation_id;
            let assignments = if joined.leader == joined.member_id {
                self.assign(&joined.members)?
            } else {
                Vec::new()
            };
            let request = SyncGroupRequest::default()
                .with_group_id(group_id(&self.group))
                .with_generation_id(self.generation)
                .with_member_id(str_bytes(&self.member_id))
                .with_protocol_type(Some(str_bytes("consumer")))
                .with_protocol_name(Some(joined.protocol_name.unwrap_or_else(|| str_bytes(ASSIGNOR))))
                .with_assignments(assignments);
            let synced = self.coordinator.call(SYNC_GROUP_VERSION, &request)?;
            match ResponseError::try_from_code(synced.error_code) {
                None => {}
                Some(ResponseError::RebalanceInProgress | ResponseError::IllegalGeneration) => continue,
                Some(ResponseError::UnknownMemberId) => {
                    self.member_id.clear();
                    continue;
                }
                Some(_) => check(synced.error_code, None, format_args!("syncing group {}", self.group))?,
            }
            self.last_heartbeat = Instant::now();
            return self.own_partitions(synced.assignment);
        }
    }

    /// This member's partitions of the topic in the assignment the leader sent.
    fn own_partitions(&self, mut assignment: Bytes) -> anyhow::Result<Vec<i32>> {
        if assignment.remaining() < 2 {
            return Ok(Vec::new());
        }
        let version = assignment.get_i16().clamp(0, CONSUMER_PROTOCOL_VERSION_MAX);
        let decoded = ConsumerProtocolAssignment::decode(&mut assignment, version)
            .with_context(|| format!("decoding the assignment of group {}", self.group))?;
        let mut partitions: Vec<i32> = decoded
            .assigned_partitions
            .into_iter()
            .filter(|t| t.topic.0.as_str() == self.topic)
            .flat_map(|t| t.partitions)
            .collect();
        partitions.sort_unstable();
        partitions.dedup();
        Ok(partitions)
    }

    /// The leader's work: a range assignment of every member's subscribed topics.
    fn assign(&mut self, members: &[JoinGroupResponseMember]) -> anyhow::Result<Vec<SyncGroupRequestAssignment>> {
        let mut subscribers: BTreeMap<String, Vec<&str>> = BTreeMap::new();
        for member in members {
            let mut metadata = member.metadata.clone();
            if metadata.remaining() < 2 {
                continue;
            }
            let version = metadata.get_i16().clamp(0, CONSUMER_PROTOCOL_VERSION_MAX);
            // A member whose subscription cannot be read gets nothing rather than failing all.
            let Ok(subscription) = ConsumerProtocolSubscription::decode(&mut metadata, version) else {
                continue;
            };
            let topics: BTreeSet<String> = subscription.topics.iter().map(|t| t.to_string()).collect();
            for topic in topics {
                subscribers.entry(topic).or_default().push(member.member_id.as_str());
            }
        }
        let names: Vec<&str> = subscribers.keys().map(String::as_str).collect();
        let counts: BTreeMap<String, i32> = client::metadata(&mut self.coordinator, Some(&names), false)?
            .into_iter()
            .filter(|t| t.error_code == 0)
            .map(|t| (t.name, t.partitions.len() as i32))
            .collect();
        let mut owned: BTreeMap<&str, Vec<TopicPartition>> =
            members.iter().map(|m| (m.member_id.as_str(), Vec::new())).collect();
        for (topic, mut members) in subscribers {
            members.sort_unstable();
            let count = counts.get(&topic).copied().unwrap_or(0);
            for (member, partitions) in members.iter().zip(range_assign(count, members.len())) {
                if !partitions.is_empty() {
                    owned.get_mut(member).expect("a member of the group").push(
                        TopicPartition::default()
                            .with_topic(topic_name(&topic))
                            .with_partitions(partitions),
                    );
                }
            }
        }
        let mut assignments = Vec::with_capacity(owned.len());
        for (member, topics) in owned {
            let mut assignment = BytesMut::new();
            assignment.put_i16(CONSUMER_PROTOCOL_VERSION);
            ConsumerProtocolAssignment::default()
                .with_assigned_partitions(topics)
                .encode(&mut assignment, CONSUMER_PROTOCOL_VERSION)?;
            assignments.push(
                SyncGroupRequestAssignment::default()
                    .with_member_id(str_bytes(member))
                    .with_assignment(assignment.freeze()),
            );
        }
        Ok(assignments)
    }

    /// Heartbeats if one is due.
    pub fn heartbeat_if_due(&mut self) -> anyhow::Result<Beat> {
        if self.last_heartbeat.elapsed() < HEARTBEAT_INTERVAL {
            return Ok(Beat::Stable);
        }
        let request = HeartbeatRequest::default()
            .with_group_id(group_id(&self.group))
            .with_generation_id(self.generation)
            .with_member_id(str_bytes(&self.member_id));
        let response = self.coordinator.call(HEARTBEAT_VERSION, &request)?;
        self.last_heartbeat = Instant::now();
        match ResponseError::try_from_code(response.error_code) {
            None => Ok(Beat::Stable),
            Some(ResponseError::RebalanceInProgress) => Ok(Beat::Rebalance),
            Some(ResponseError::IllegalGeneration) => Ok(Beat::Lost),
            Some(ResponseError::UnknownMemberId) => {
                self.member_id.clear();
                Ok(Beat::Lost)
            }
            Some(_) if coordinator_moved(response.error_code) => {
                self.coordinator = find_coordinator(&self.bootstrap, &self.group)?;
                Ok(Beat::Lost)
            }
            Some(_) => check(
                response.error_code,
                None,
                format_args!("heartbeat to group {}", self.group),
            )
            .map(|()| Beat::Stable),
        }
    }

    /// The group's committed offsets of `partitions`; partitions without one are left out.
    pub fn committed(&mut self, partitions: &[i32]) -> anyhow::Result<BTreeMap<i32, i64>> {
        let request = OffsetFetchRequest::default()
            .with_group_id(group_id(&self.group))
            .with_topics(Some(vec![OffsetFetchRequestTopic::default()
                .with_name(topic_name(&self.topic))
                .with_partition_indexes(partitions.to_vec())]));
        let response = self.coordinator.call(OFFSET_FETCH_VERSION, &request)?;
        check(
            response.error_code,
            None,
            format_args!("fetching the offsets of group {}", self.group),
        )?;
        let mut committed = BTreeMap::new();
        for p in response.topics.iter().flat_map(|t| &t.partitions) {
            check(
                p.error_code,
                None,
                format_args!(
                    "the offset of group {} on {}-{}",
                    self.group, self.topic, p.partition_index
                ),
            )?;
            if p.committed_offset >= 0 {
                committed.insert(p.partition_index, p.committed_offset);
            }
        }
        Ok(committed)
    }

    /// Commits `positions` (partition, next offset to read) with this member's generation.
    pub fn commit(&mut self, positions: &BTreeMap<i32, i64>) -> anyhow::Result<()> {
        if positions.is_empty() {
            return Ok(());
        }
        let partitions = positions
            .iter()
            .map(|(p, offset)| {
                OffsetCommitRequestPartition::default()
                    .with_partition_index(*p)
                    .with_committed_offset(*offset)
                    .with_committed_leader_epoch(-1)
            })
            .collect();
        let request = OffsetCommitRequest::default()
            .with_group_id(group_id(&self.group))
            .with_generation_id_or_member_epoch(self.generation)
            .with_member_id(str_bytes(&self.member_id))
            .with_topics(vec![OffsetCommitRequestTopic::default()
                .with_name(topic_name(&self.topic))
                .with_partitions(partitions)]);
        let response = self.coordinator.call(OFFSET_COMMIT_VERSION, &request)?;
        for p in response.topics.iter().flat_map(|t| &t.partitions) {
            check(
                p.error_code,
                None,
                format_args!(
                    "committing group {} on {}-{}",
                    self.group, self.topic, p.partition_index
                ),
            )?;
        }
        Ok(())
    }

    /// Leaves the group, so its partitions go to the other members at once.
    pub fn leave(&mut self) -> anyhow::Result<()> {
        let request = LeaveGroupRequest::default()
            .with_group_id(group_id(&self.group))
            .with_members(vec![
                MemberIdentity::default().with_member_id(str_bytes(&self.member_id))
            ]);
        let response = self.coordinator.call(LEAVE_GROUP_VERSION, &request)?;
        check(response.error_code, None, format_args!("leaving group {}", self.group))?;
        for member in &response.members {
            check(member.error_code, None, format_args!("leaving group {}", self.group))?;
        }
        Ok(())
    }
}

/// Kafka's RangeAssignor for one topic: the partitions each of `members` (in order) gets.
fn range_assign(partitions: i32, members: usize) -> Vec<Vec<i32>> {
    if members == 0 {
        return Vec::new();
    }
    let members = members as i32;
    let (each, extra) = (partitions / members, partitions % members);
    (0..members)
        .map(|i| {
            let start = each * i + i.min(extra);
            let length = each + i32::from(i < extra);
            (start..start + length).collect()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn range_assignment_is_kafkas() {
        assert_eq!(range_assign(5, 2), vec![vec![0, 1, 2], vec![3, 4]]);
        assert_eq!(range_assign(2, 3), vec![vec![0], vec![1], vec![]]);
        assert_eq!(range_assign(4, 1), vec![vec![0, 1, 2, 3]]);
        assert!(range_assign(3, 0).is_empty());
    }
}
