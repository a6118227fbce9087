//! The classic group protocol (JoinGroup, SyncGroup, Heartbeat, LeaveGroup) as a state
//! machine, kept synchronous so every transition is unit-testable. A group lives on the shard
//! that coordinates it ([`crate::group`]) and only that shard touches it.
//!
//! States follow Kafka's classic coordinator: Empty → PreparingRebalance (members (re)join) →
//! CompletingRebalance (the leader computes the assignment) → Stable, and back to
//! PreparingRebalance whenever a member joins, leaves, dies or changes its subscription.
//! Members of the old generation learn of a rebalance from their heartbeats
//! (REBALANCE_IN_PROGRESS) and must rejoin before the new generation is handed out.
//!
//! Requests that must wait for other members (a join until the rebalance completes, a sync
//! until the leader's assignment is durable) get a oneshot receiver, answered when the group
//! moves on. Everything else, Heartbeat above all, is answered at once. Time enters only
//! through `now` arguments and [`Group::next_deadline`], which the coordinator's timer sleeps
//! until; every deadline is one [`Group::tick`] acts on, so the timer never wakes for nothing.
//!
//! Sessions follow Kafka's `hasSatisfiedHeartbeat`: a member waiting on its JoinGroup or
//! SyncGroup needs no heartbeat (its request is the sign of life), except a new member, which
//! must complete its first join within [`NEW_MEMBER_JOIN_TIMEOUT`]. Any other member is
//! removed once its session timeout passes without a heartbeat, in every state.
//!
//! Invariants, asserted after every transition ([`Group::check_invariants`]):
//! - a member waits on a join only while PreparingRebalance, on a sync only while
//!   CompletingRebalance;
//! - CompletingRebalance and Stable have a protocol and a leader, and the leader is a member;
//! - each static instance id maps to exactly one member, which carries that id;
//! - the generation only increases;
//! - after a tick at `now`, no deadline is still due.

mod join;
mod sync;
/// Topics in a consumer's subscription (ConsumerProtocolSubscription: version, then an
/// array of topic strings); empty when the metadata is not a consumer subscription.
fn subscribed_topics(mut metadata: Bytes) -> Vec<String> {
    let mut topics = Vec::new();
    if metadata.remaining() < 6 {
        return topics;
    }
    let _version = metadata.get_i16();
    let count = metadata.get_i32();
    for _ in 0..count.max(0) {
        if metadata.remaining() < 2 {
            break;
        }
        let length = metadata.get_i16();
        if length < 0 || metadata.remaining() < length as usize {
            break;
        }
        match String::from_utf8(metadata.split_to(length as usize).to_vec()) {
            Ok(topic) => topics.push(topic),
            Err(_) => break,
        }
    }
    topics
}

#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use bytes::{Buf, Bytes};
use futures::channel::oneshot;
use indexmap::IndexMap;

use crate::error::KafkaCode;
use crate::group::records::OffsetValue;

pub use sync::Assignment;

/// How long a new member's first JoinGroup may wait for its rebalance to complete (Kafka's
/// `group.new.member.join.timeout.ms`). A member still waiting then is dropped: the client
/// most likely gave up on the request and will retry with a new one.
pub const NEW_MEMBER_JOIN_TIMEOUT: Duration = Duration::from_secs(300);

/// The shortest step between now and a deadline. A zero timeout (a client may ask for a
/// rebalance timeout of 0) would make a deadline due the moment it is set.
const DEADLINE_STEP_MIN: Duration = Duration::from_millis(1);

fn after(now: Instant, timeout: Duration) -> Instant {
    now + timeout.max(DEADLINE_STEP_MIN)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GroupState {
    Empty,
    PreparingRebalance,
    CompletingRebalance,
    Stable,
    Dead,
}

impl GroupState {
    /// The name Kafka's DescribeGroups and ListGroups use.
    pub fn name(self) -> &'static str {
        match self {
            GroupState::Empty => "Empty",
            GroupState::PreparingRebalance => "PreparingRebalance",
            GroupState::CompletingRebalance => "CompletingRebalance",
            GroupState::Stable => "Stable",
            GroupState::Dead => "Dead",
        }
    }
}

/// Timeouts the broker imposes (Kafka's `group.*` configs).
#[derive(Clone, Copy, Debug)]
pub struct GroupLimits {
    pub initial_rebalance_delay: Duration,
    pub min_session_timeout: Duration,
    pub max_session_timeout: Duration,
}

pub struct Member {
    pub id: String,
    pub instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub session_timeout: Duration,
    pub rebalance_timeout: Duration,
    pub protocols: Vec<(String, Bytes)>,
    pub assignment: Bytes,
    session_deadline: Instant,
    /// Joined in the current rebalance and has not completed a join yet (Kafka's `isNew`).
    is_new: bool,
    /// Has its JoinGroup answer for the current generation but has not sent SyncGroup.
    awaiting_sync_request: bool,
    join_waiter: Option<oneshot::Sender<JoinOutcome>>,
    sync_waiter: Option<oneshot::Sender<SyncOutcome>>,
}

impl Member {
    /// The member's metadata for `protocol`, as the leader needs it.
    pub fn metadata(&self, protocol: &str) -> Bytes {
        self.protocols
            .iter()
            .find(|(name, _)| name == protocol)
            .map(|(_, metadata)| metadata.clone())
            .unwrap_or_default()
    }

    /// When the member is removed for silence, if it can be now.
    fn expiry(&self) -> Option<Instant> {
        let waiting = self.join_waiter.is_some() || self.sync_waiter.is_some();
        (self.is_new || !waiting).then_some(self.session_deadline)
    }

    /// Answers the JoinGroup the member waits on, if any; returns whether there was one.
    fn answer_join(&mut self, outcome: JoinOutcome) -> bool {
        let Some(waiter) = self.join_waiter.take() else {
            return false;
        };
        // A waiter whose request went away (its connection closed) has nobody to tell.
        let _ = waiter.send(outcome);
        true
    }

    /// Answers the SyncGroup the member waits on, if any; returns whether there was one.
    fn answer_sync(&mut self, outcome: SyncOutcome) -> bool {
        let Some(waiter) = self.sync_waiter.take() else {
            return false;
        };
        let _ = waiter.send(outcome);
        true
    }

    /// Answers its SyncGroup, and the session of a member that stays restarts then: while
    /// it waited, its request was its sign of life (Kafka's `propagateAssignment`).
    fn answer_sync_and_restart(&mut self, outcome: SyncOutcome, now: Instant) {
        if self.answer_sync(outcome) {
            self.session_deadline = after(now, self.session_timeout);
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct JoinOutcome {
    pub error: Option<KafkaCode>,
    pub generation: i32,
    pub protocol_type: Option<String>,
    pub protocol: Option<String>,
    pub leader: String,
    pub member_id: String,
    /// Filled for the leader only: (member id, instance id, metadata for the chosen protocol).
    pub members: Vec<(String, Option<String>, Bytes)>,
    /// JoinGroup v9+: the leader need not assign (a static leader's restart in a Stable group).
    pub skip_assignment: bool,
}

impl JoinOutcome {
    pub fn failed(error: KafkaCode, member_id: &str) -> JoinOutcome {
        JoinOutcome {
            error: Some(error),
            generation: -1,
            member_id: member_id.to_string(),
            ..JoinOutcome::default()
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct SyncOutcome {
    pub error: Option<KafkaCode>,
    pub protocol_type: Option<String>,
    pub protocol: Option<String>,
    pub assignment: Bytes,
}

impl SyncOutcome {
    pub fn failed(error: KafkaCode) -> SyncOutcome {
        SyncOutcome {
            error: Some(error),
            ..SyncOutcome::default()
        }
    }
}

/// An answer now, or one to wait for.
pub enum Reply<T> {
    Now(T),
    Later(oneshot::Receiver<T>),
}

pub struct JoinRequest {
    pub member_id: String,
    pub instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub session_timeout: Duration,
    pub rebalance_timeout: Duration,
    pub protocol_type: String,
    pub protocols: Vec<(String, Bytes)>,
    /// JoinGroup v4+: a member without an id is first handed one (MEMBER_ID_REQUIRED).
    pub require_known_member_id: bool,
    /// JoinGroup v9+: the answer may tell a leader to skip the assignment.
    pub supports_skip_assignment: bool,
}

pub struct Group {
    pub id: String,
    pub state: GroupState,
    pub generation: i32,
    pub protocol_type: Option<String>,
    pub protocol: Option<String>,
    pub leader: Option<String>,
    pub members: IndexMap<String, Member>,
    /// Member ids handed out with MEMBER_ID_REQUIRED, valid until their deadline.
    pending: HashMap<String, Instant>,
    /// group.instance.id → current member id, for static members.
    static_members: HashMap<String, String>,
    /// While PreparingRebalance: when the join phase completes with whoever has rejoined.
    rebalance_deadline: Option<Instant>,
    /// After a join completes: when members that have not sent SyncGroup are removed.
    sync_deadline: Option<Instant>,
    /// The current rebalance forms the group from empty: it waits out the initial delay so
    /// members starting together land in one generation.
    forming: bool,
    /// The leader's assignment for this generation is being persisted.
    assignment_in_flight: bool,
    /// Committed offsets by (topic, partition).
    pub offsets: HashMap<(String, i32), OffsetValue>,
    /// When the group last became Empty, for offset retention.
    pub empty_since_ms: i64,
}

impl Group {
    pub fn new(id: &str, now_ms: i64) -> Group {
        Group {
            id: id.to_string(),
            state: GroupState::Empty,
            generation: 0,
            protocol_type: None,
            protocol: None,
            leader: None,
            members: IndexMap::new(),
            pending: HashMap::new(),
            static_members: HashMap::new(),
            rebalance_deadline: None,
            sync_deadline: None,
            forming: false,
            assignment_in_flight: false,
            offsets: HashMap::new(),
            empty_since_ms: now_ms,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// Every topic a member's subscription names (for the consumer protocol type; none for
    /// others).
    pub fn subscribed_topics(&self) -> Vec<String> {
        let protocol = self.protocol.clone().unwrap_or_default();
        self.members
            .values()
            .flat_map(|m| subscribed_topics(m.metadata(&protocol)))
            .collect()
    }

    /// When the coordinator's timer must next call [`Group::tick`]: only deadlines a tick acts
    /// on, so a deadline that has passed is always one the next tick clears.
    pub fn next_deadline(&self) -> Option<Instant> {
        let sessions = self.members.values().filter_map(Member::expiry);
        let pending = self.pending.values().copied();
        sessions
            .chain(pending)
            .chain(self.rebalance_deadline)
            .chain(self.sync_deadline)
            .min()
    }

    /// Kafka's `validateMember`: a static member is known by its instance id, which must map
    /// to this member id; a dynamic one by its member id.
    fn validate_member(&self, member_id: &str, instance_id: Option<&str>) -> Result<(), KafkaCode> {
        match instance_id {
            Some(instance) => match self.static_members.get(instance) {
                None => Err(KafkaCode::UnknownMemberId),
                Some(current) if current != member_id => Err(KafkaCode::FencedInstanceId),
                Some(_) => Ok(()),
            },
            None if self.members.contains_key(member_id) => Ok(()),
            None => Err(KafkaCode::UnknownMemberId),
        }
    }

    /// The longest rebalance timeout of any member: how long a rebalance waits for rejoins.
    fn rebalance_timeout(&self) -> Duration {
        self.members
            .values()
            .map(|m| m.rebalance_timeout)
            .max()
            .unwrap_or_default()
    }

    fn is_leader(&self, member_id: &str) -> bool {
        self.leader.as_deref() == Some(member_id)
    }

    /// Keeps a member alive and tells it whether to rejoin; answered at once in every state.
    /// A member of the current generation gets REBALANCE_IN_PROGRESS while the group prepares
    /// a rebalance, and its session restarts, as for any heartbeat.
    pub fn heartbeat(
        &mut self,
        member_id: &str,
        instance_id: Option<&str>,
        generation: i32,
        now: Instant,
    ) -> Option<KafkaCode> {
        if self.state == GroupState::Dead {
            return Some(KafkaCode::CoordinatorNotAvailable);
        }
        if let Err(code) = self.validate_member(member_id, instance_id) {
            return Some(code);
        }
        if generation != self.generation {
            return Some(KafkaCode::IllegalGeneration);
        }
        let answer = match self.state {
            GroupState::PreparingRebalance => Some(KafkaCode::RebalanceInProgress),
            GroupState::CompletingRebalance | GroupState::Stable => None,
            GroupState::Empty | GroupState::Dead => return Some(KafkaCode::UnknownMemberId),
        };
        let member = self.members.get_mut(member_id).expect("a validated member is a member");
        member.session_deadline = after(now, member.session_timeout);
        answer
    }

    /// Why an OffsetCommit from `member_id` at `generation` is refused, if it is (Kafka's
    /// `validateOffsetCommit`). Generation -1 without a member (simple consumers, admin tools)
    /// may commit only to a group without members.
    pub fn commit_error(&self, member_id: &str, instance_id: Option<&str>, generation: i32) -> Option<KafkaCode> {
        if self.state == GroupState::Dead {
            return Some(KafkaCode::CoordinatorNotAvailable);
        }
        if generation < 0 && self.state == GroupState::Empty {
            return None;
        }
        if generation >= 0 || !member_id.is_empty() || instance_id.is_some() {
            if let Err(code) = self.validate_member(member_id, instance_id) {
                return Some(code);
            }
            if generation != self.generation {
                return Some(KafkaCode::IllegalGeneration);
            }
        } else if self.state != GroupState::Empty {
            return Some(KafkaCode::UnknownMemberId);
        }
        // A member that has its JoinGroup answer but not its assignment is mid-rebalance.
        (self.state == GroupState::CompletingRebalance).then_some(KafkaCode::RebalanceInProgress)
    }

    /// A member leaves (LeaveGroup); the others rebalance. LeaveGroup v3+ may name a static
    /// member by its instance id alone.
    pub fn leave(
        &mut self,
        member_id: &str,
        instance_id: Option<&str>,
        now: Instant,
        now_ms: i64,
        limits: &GroupLimits,
    ) -> Option<KafkaCode> {
        if self.state == GroupState::Dead {
            return Some(KafkaCode::CoordinatorNotAvailable);
        }
        let member_id = match instance_id {
            Some(instance) => match self.static_members.get(instance) {
                None => return Some(KafkaCode::UnknownMemberId),
                Some(current) if !member_id.is_empty() && current != member_id => {
                    return Some(KafkaCode::FencedInstanceId)
                }
                Some(current) => current.clone(),
            },
            None => member_id.to_string(),
        };
        if self.pending.remove(&member_id).is_some() {
            self.maybe_complete_join(now, now_ms);
            self.check_invariants();
            return None;
        }
        if !self.members.contains_key(&member_id) {
            return Some(KafkaCode::UnknownMemberId);
        }
        self.remove_member(&member_id, KafkaCode::UnknownMemberId);
        self.after_departure(now, now_ms, limits);
        self.check_invariants();
        None
    }

    /// Removes a member, answering whatever it waits on with `error`.
    fn remove_member(&mut self, member_id: &str, error: KafkaCode) {
        let Some(mut member) = self.members.shift_remove(member_id) else {
            return;
        };
        member.answer_join(JoinOutcome::failed(error, member_id));
        member.answer_sync(SyncOutcome::failed(error));
        if let Some(instance) = &member.instance_id {
            let mapped = self.static_members.remove(instance);
            assert_eq!(
                mapped.as_deref(),
                Some(member_id),
                "group {}: static instance {instance} mapped to another member",
                self.id
            );
        }
        if self.is_leader(member_id) {
            // As Kafka: the next member leads until a rebalance elects one that has rejoined.
            self.leader = self.members.keys().next().cloned();
        }
    }

    /// After members left or died: the rest rebalance, or the group is empty.
    fn after_departure(&mut self, now: Instant, now_ms: i64, limits: &GroupLimits) {
        match self.state {
            GroupState::Stable | GroupState::CompletingRebalance if self.members.is_empty() => {
                self.become_empty(now_ms)
            }
            GroupState::Stable | GroupState::CompletingRebalance => self.prepare_rebalance(now, now_ms, limits),
            GroupState::PreparingRebalance => self.maybe_complete_join(now, now_ms),
            GroupState::Empty | GroupState::Dead => {}
        }
    }

    fn become_empty(&mut self, now_ms: i64) {
        self.state = GroupState::Empty;
        self.protocol = None;
        self.leader = None;
        self.rebalance_deadline = None;
        self.sync_deadline = None;
        self.forming = false;
        self.assignment_in_flight = false;
        self.empty_since_ms = now_ms;
    }

    fn bump_generation(&mut self) {
        let next = self
            .generation
            .checked_add(1)
            .unwrap_or_else(|| panic!("group {}: generation {} overflows", self.id, self.generation));
        assert!(next > self.generation, "group {}: generation went backwards", self.id);
        self.generation = next;
    }

    /// Expires sessions, pending member ids and members that never sent SyncGroup, and
    /// completes a rebalance whose deadline passed. Returns whether the state, generation or
    /// membership changed. Afterwards no deadline is due at `now`.
    pub fn tick(&mut self, now: Instant, now_ms: i64, limits: &GroupLimits) -> bool {
        if self.state == GroupState::Dead {
            return false;
        }
        let before = (self.state, self.generation, self.members.len(), self.pending.len());
        let pending = self.pending.len();
        self.pending.retain(|_, deadline| *deadline > now);
        if self.pending.len() != pending {
            self.maybe_complete_join(now, now_ms);
        }
        let expired: Vec<String> = self
            .members
            .values()
            .filter(|m| m.expiry().is_some_and(|deadline| deadline <= now))
            .map(|m| m.id.clone())
            .collect();
        for id in &expired {
            tracing::info!(
                target: "sluice::group",
                "group {}: member {} session expired",
                crate::text::escape(&self.id),
                crate::text::escape(id)
            );
            self.remove_member(id, KafkaCode::UnknownMemberId);
        }
        if !expired.is_empty() {
            self.after_departure(now, now_ms, limits);
        }
        if self.state == GroupState::PreparingRebalance && self.rebalance_deadline.is_some_and(|d| d <= now) {
            self.complete_join(now, now_ms);
        }
        if self.sync_deadline.is_some_and(|d| d <= now) {
            self.expire_pending_sync(now, now_ms, limits);
        }
        self.check_invariants();
        if let Some(next) = self.next_deadline() {
            assert!(
                next > now,
                "group {}: a deadline is still due after the tick ({:?} past it)",
                self.id,
                now - next
            );
        }
        before != (self.state, self.generation, self.members.len(), self.pending.len())
    }

    /// Panics, naming the group and the values, if a state invariant is broken. Runs after
    /// every transition; it is O(members), as the transitions themselves are.
    pub fn check_invariants(&self) {
        if self.state == GroupState::Dead {
            return;
        }
        let id = &self.id;
        let state = self.state.name();
        match self.state {
            GroupState::Empty => {
                assert!(
                    self.members.is_empty(),
                    "group {id}: Empty with {} members",
                    self.members.len()
                );
                assert!(
                    self.leader.is_none() && self.protocol.is_none(),
                    "group {id}: Empty with leader {:?}, protocol {:?}",
                    self.leader,
                    self.protocol
                );
                assert!(
                    self.rebalance_deadline.is_none() && self.sync_deadline.is_none(),
                    "group {id}: Empty with a rebalance or sync deadline"
                );
            }
            GroupState::PreparingRebalance => {
                assert!(
                    self.rebalance_deadline.is_some(),
                    "group {id}: {state} without a deadline"
                );
                assert!(self.sync_deadline.is_none(), "group {id}: {state} with a sync deadline");
            }
            GroupState::CompletingRebalance | GroupState::Stable => {
                assert!(
                    self.rebalance_deadline.is_none(),
                    "group {id}: {state} with a rebalance deadline"
                );
                assert!(self.protocol.is_some(), "group {id}: {state} without a protocol");
                assert!(self.leader.is_some(), "group {id}: {state} without a leader");
            }
            GroupState::Dead => unreachable!(),
        }
        if let Some(leader) = &self.leader {
            assert!(
                self.members.contains_key(leader),
                "group {id}: leader {leader} is not one of its {} members",
                self.members.len()
            );
        }
        let mut static_count = 0;
        for (key, member) in &self.members {
            let m = &member.id;
            assert_eq!(key, m, "group {id}: member {m} filed under {key}");
            assert!(!self.pending.contains_key(m), "group {id}: member {m} is also pending");
            if member.join_waiter.is_some() || member.is_new {
                assert_eq!(
                    self.state,
                    GroupState::PreparingRebalance,
                    "group {id}: member {m} waits on a join while {state}"
                );
            }
            if member.sync_waiter.is_some() {
                assert_eq!(
                    self.state,
                    GroupState::CompletingRebalance,
                    "group {id}: member {m} waits on a sync while {state}"
                );
            }
            if member.awaiting_sync_request {
                assert!(
                    self.sync_deadline.is_some(),
                    "group {id}: member {m} owes a SyncGroup while {state} without a deadline"
                );
            }
            if let Some(instance) = &member.instance_id {
                static_count += 1;
                assert_eq!(
                    self.static_members.get(instance),
                    Some(m),
                    "group {id}: static member {m} ({instance}) is not its instance's member"
                );
            }
        }
        assert_eq!(
            static_count,
            self.static_members.len(),
            "group {id}: {} instance ids for {static_count} static members",
            self.static_members.len()
        );
    }
}
