//! The classic group protocol (JoinGroup, SyncGroup, Heartbeat, LeaveGroup) as a state
//! machine, kept synchronous so every transition is unit-testable.
//!
//! States follow Kafka's: Empty → PreparingRebalance (members (re)join) →
//! CompletingRebalance (the leader computes the assignment) → Stable. Requests that must
//! wait (a join until the rebalance completes, a sync until the leader's assignment arrives)
//! get a oneshot receiver; the group answers every waiter when it moves on. Time enters only
//! through `now` arguments and [`Group::next_deadline`], which the coordinator's timer uses.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::channel::oneshot;
use indexmap::IndexMap;

use crate::error::KafkaCode;
use crate::group::records::OffsetValue;

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
    rebalance_deadline: Option<Instant>,
    /// The current rebalance forms the group from empty: it waits out the initial delay so
    /// members starting together land in one generation.
    forming: bool,
    /// Committed offsets by (topic, partition).
    pub offsets: HashMap<(String, i32), OffsetValue>,
    /// When the group last became Empty, for offset retention.
    pub empty_since_ms: i64,
}

/// Outcome of a state change the coordinator must act on.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Effects {
    /// A generation completed its assignment: persist the group's metadata.
    pub persist_group: bool,
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
            forming: false,
            offsets: HashMap::new(),
            empty_since_ms: now_ms,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// When the coordinator's timer must next call [`Group::tick`].
    pub fn next_deadline(&self) -> Option<Instant> {
        let sessions = self.members.values().map(|m| m.session_deadline);
        let pending = self.pending.values().copied();
        sessions.chain(pending).chain(self.rebalance_deadline).min()
    }

    /// Checks the fields that must hold for any member request.
    fn check_static(&self, member_id: &str, instance_id: Option<&str>) -> Option<KafkaCode> {
        let instance = instance_id?;
        match self.static_members.get(instance) {
            Some(current) if current != member_id => Some(KafkaCode::FencedInstanceId),
            _ => None,
        }
    }

    pub fn join(
        &mut self,
        request: JoinRequest,
        now: Instant,
        now_ms: i64,
        limits: &GroupLimits,
    ) -> Reply<JoinOutcome> {
        let member_id = request.member_id.clone();
        if request.session_timeout < limits.min_session_timeout || request.session_timeout > limits.max_session_timeout
        {
            return Reply::Now(JoinOutcome::failed(KafkaCode::InvalidSessionTimeout, &member_id));
        }
        if request.protocol_type.is_empty() || request.protocols.is_empty() {
            return Reply::Now(JoinOutcome::failed(KafkaCode::InconsistentGroupProtocol, &member_id));
        }
        if !self.members.is_empty() {
            let same_type = self.protocol_type.as_deref() == Some(request.protocol_type.as_str());
            let shared = self.shared_protocols(Some(&request.protocols));
            if !same_type || shared.is_empty() {
                return Reply::Now(JoinOutcome::failed(KafkaCode::InconsistentGroupProtocol, &member_id));
            }
        }
        if let Some(code) = self.check_static(&member_id, request.instance_id.as_deref()) {
            if !member_id.is_empty() {
                return Reply::Now(JoinOutcome::failed(code, &member_id));
            }
        }

        if member_id.is_empty() {
            let new_id = format!(
                "{}-{}",
                if request.client_id.is_empty() {
                    "member"
                } else {
                    &request.client_id
                },
                uuid::Uuid::new_v4()
            );
            if let Some(instance) = request.instance_id.clone() {
                return self.join_static(new_id, instance, request, now, now_ms, limits);
            }
            if request.require_known_member_id {
                self.pending.insert(new_id.clone(), now + request.session_timeout);
                return Reply::Now(JoinOutcome::failed(KafkaCode::MemberIdRequired, &new_id));
            }
            return self.add_and_wait(new_id, request, now, now_ms, limits);
        }
        if self.pending.remove(&member_id).is_some() {
            return self.add_and_wait(member_id, request, now, now_ms, limits);
        }
        if !self.members.contains_key(&member_id) {
            return Reply::Now(JoinOutcome::failed(KafkaCode::UnknownMemberId, &member_id));
        }
        // A known member rejoining: same as a new join for the rebalance.
        self.add_and_wait(member_id, request, now, now_ms, limits)
    }

    /// A static member without a member id: a new member, or a restart of a known instance
    /// that takes over its old identity without a rebalance when nothing else changed.
    fn join_static(
        &mut self,
        new_id: String,
        instance: String,
        request: JoinRequest,
        now: Instant,
        now_ms: i64,
        limits: &GroupLimits,
    ) -> Reply<JoinOutcome> {
        let Some(old_id) = self.static_members.get(&instance).cloned() else {
            self.static_members.insert(instance, new_id.clone());
            return self.add_and_wait(new_id, request, now, now_ms, limits);
        };
        let mut member = self.members.shift_remove(&old_id).expect("static members are members");
        // The old incarnation is fenced: anything it still waits on fails.
        if let Some(waiter) = member.join_waiter.take() {
            let _ = waiter.send(JoinOutcome::failed(KafkaCode::FencedInstanceId, &old_id));
        }
        if let Some(waiter) = member.sync_waiter.take() {
            let _ = waiter.send(SyncOutcome::failed(KafkaCode::FencedInstanceId));
        }
        let unchanged = member.protocols == request.protocols;
        member.id = new_id.clone();
        member.session_timeout = request.session_timeout;
        member.rebalance_timeout = request.rebalance_timeout;
        member.session_deadline = now + request.session_timeout;
        self.static_members.insert(instance, new_id.clone());
        if self.leader.as_deref() == Some(old_id.as_str()) {
            self.leader = Some(new_id.clone());
        }
        if self.state == GroupState::Stable && unchanged {
            // Same subscription: keep the generation and the assignment (SyncGroup returns it).
            self.members.insert(new_id.clone(), member);
            return Reply::Now(JoinOutcome {
                error: None,
                generation: self.generation,
                protocol_type: self.protocol_type.clone(),
                protocol: self.protocol.clone(),
                leader: self.leader.clone().unwrap_or_default(),
                member_id: new_id,
                members: Vec::new(),
            });
        }
        member.protocols = request.protocols.clone();
        self.members.insert(new_id.clone(), member);
        self.add_and_wait(new_id, request, now, now_ms, limits)
    }

    fn add_and_wait(
        &mut self,
        member_id: String,
        request: JoinRequest,
        now: Instant,
        now_ms: i64,
        limits: &GroupLimits,
    ) -> Reply<JoinOutcome> {
        if self.members.is_empty() {
            self.protocol_type = Some(request.protocol_type.clone());
        }
        let (sender, receiver) = oneshot::channel();
        let member = self.members.entry(member_id.clone()).or_insert_with(|| Member {
            id: member_id.clone(),
            instance_id: request.instance_id.clone(),
            client_id: request.client_id.clone(),
            client_host: request.client_host.clone(),
            session_timeout: request.session_timeout,
            rebalance_timeout: request.rebalance_timeout,
            protocols: Vec::new(),
            assignment: Bytes::new(),
            session_deadline: now + request.session_timeout,
            join_waiter: None,
            sync_waiter: None,
        });
        member.protocols = request.protocols;
        member.session_timeout = request.session_timeout;
        member.rebalance_timeout = request.rebalance_timeout;
        member.session_deadline = now + request.session_timeout;
        if let Some(previous) = member.join_waiter.replace(sender) {
            let _ = previous.send(JoinOutcome::failed(KafkaCode::UnknownMemberId, &member_id));
        }
        match self.state {
            GroupState::PreparingRebalance => {}
            _ => self.prepare_rebalance(now, now_ms, limits),
        }
        self.try_complete_join(now, now_ms);
        Reply::Later(receiver)
    }

    /// Starts a rebalance: members must rejoin before the deadline (the longest rebalance
    /// timeout, or the initial delay for a group forming from empty).
    fn prepare_rebalance(&mut self, now: Instant, now_ms: i64, limits: &GroupLimits) {
        for member in self.members.values_mut() {
            if let Some(waiter) = member.sync_waiter.take() {
                let _ = waiter.send(SyncOutcome::failed(KafkaCode::RebalanceInProgress));
            }
        }
        let forming = self.state == GroupState::Empty;
        self.forming = forming;
        self.state = GroupState::PreparingRebalance;
        let timeout = if forming {
            limits.initial_rebalance_delay
        } else {
            self.members
                .values()
                .map(|m| m.rebalance_timeout)
                .max()
                .unwrap_or_default()
        };
        self.rebalance_deadline = Some(now + timeout);
        let _ = now_ms;
    }

    /// Completes the join phase once every member has rejoined (and the initial delay, if
    /// any, is over), or when the deadline has passed.
    fn try_complete_join(&mut self, now: Instant, now_ms: i64) {
        if self.state != GroupState::PreparingRebalance {
            return;
        }
        let all_joined = self.members.values().all(|m| m.join_waiter.is_some());
        let deadline_passed = self.rebalance_deadline.is_none_or(|d| now >= d);
        if !(deadline_passed || (all_joined && !self.forming)) {
            return;
        }
        self.complete_join(now, now_ms);
    }

    fn complete_join(&mut self, now: Instant, now_ms: i64) {
        // Members that did not rejoin in time leave the group.
        let gone: Vec<String> = self
            .members
            .values()
            .filter(|m| m.join_waiter.is_none())
            .map(|m| m.id.clone())
            .collect();
        for id in gone {
            self.remove_member(&id);
        }
        self.rebalance_deadline = None;
        self.forming = false;
        if self.members.is_empty() {
            self.become_empty(now_ms);
            return;
        }
        self.generation += 1;
        self.protocol = self.choose_protocol();
        let protocol = self.protocol.clone().expect("members share a protocol");
        if self.leader.as_ref().is_none_or(|l| !self.members.contains_key(l)) {
            self.leader = self.members.keys().next().cloned();
        }
        let leader = self.leader.clone().expect("a group with members has a leader");
        self.state = GroupState::CompletingRebalance;
        let roster: Vec<(String, Option<String>, Bytes)> = self
            .members
            .values()
            .map(|m| (m.id.clone(), m.instance_id.clone(), m.metadata(&protocol)))
            .collect();
        for member in self.members.values_mut() {
            member.session_deadline = now + member.session_timeout;
            let outcome = JoinOutcome {
                error: None,
                generation: self.generation,
                protocol_type: self.protocol_type.clone(),
                protocol: Some(protocol.clone()),
                leader: leader.clone(),
                member_id: member.id.clone(),
                members: if member.id == leader {
                    roster.clone()
                } else {
                    Vec::new()
                },
            };
            if let Some(waiter) = member.join_waiter.take() {
                let _ = waiter.send(outcome);
            }
        }
    }

    /// Protocols every member (and, if given, the candidate) supports.
    fn shared_protocols(&self, candidate: Option<&Vec<(String, Bytes)>>) -> Vec<String> {
        let mut sets = self.members.values().map(|m| &m.protocols).chain(candidate);
        let Some(first) = sets.next() else { return Vec::new() };
        let mut shared: Vec<String> = first.iter().map(|(name, _)| name.clone()).collect();
        for set in sets {
            shared.retain(|name| set.iter().any(|(n, _)| n == name));
        }
        shared
    }

    /// Each member votes for its most preferred shared protocol; the most votes win (ties go
    /// to the protocol the first member prefers).
    fn choose_protocol(&self) -> Option<String> {
        let shared = self.shared_protocols(None);
        let mut votes: IndexMap<&str, usize> = IndexMap::new();
        for member in self.members.values() {
            if let Some((name, _)) = member.protocols.iter().find(|(name, _)| shared.contains(name)) {
                *votes.entry(name.as_str()).or_default() += 1;
            }
        }
        let best = votes.values().copied().max()?;
        votes
            .into_iter()
            .find(|(_, count)| *count == best)
            .map(|(name, _)| name.to_string())
    }

    pub fn sync(
        &mut self,
        member_id: &str,
        instance_id: Option<&str>,
        generation: i32,
        assignments: Vec<(String, Bytes)>,
    ) -> (Reply<SyncOutcome>, Effects) {
        let no_effects = Effects::default();
        if let Some(code) = self.check_static(member_id, instance_id) {
            return (Reply::Now(SyncOutcome::failed(code)), no_effects);
        }
        if !self.members.contains_key(member_id) {
            return (Reply::Now(SyncOutcome::failed(KafkaCode::UnknownMemberId)), no_effects);
        }
        if generation != self.generation {
            return (
                Reply::Now(SyncOutcome::failed(KafkaCode::IllegalGeneration)),
                no_effects,
            );
        }
        match self.state {
            GroupState::PreparingRebalance => (
                Reply::Now(SyncOutcome::failed(KafkaCode::RebalanceInProgress)),
                no_effects,
            ),
            GroupState::Stable => {
                let member = &self.members[member_id];
                (Reply::Now(self.sync_answer(member.assignment.clone())), no_effects)
            }
            GroupState::Empty | GroupState::Dead => {
                (Reply::Now(SyncOutcome::failed(KafkaCode::UnknownMemberId)), no_effects)
            }
            GroupState::CompletingRebalance => {
                let (sender, receiver) = oneshot::channel();
                self.members[member_id].sync_waiter = Some(sender);
                if self.leader.as_deref() != Some(member_id) {
                    return (Reply::Later(receiver), no_effects);
                }
                let mut assigned: HashMap<String, Bytes> = assignments.into_iter().collect();
                for member in self.members.values_mut() {
                    member.assignment = assigned.remove(&member.id).unwrap_or_default();
                }
                self.state = GroupState::Stable;
                let answers: Vec<(oneshot::Sender<SyncOutcome>, Bytes)> = self
                    .members
                    .values_mut()
                    .filter_map(|m| m.sync_waiter.take().map(|w| (w, m.assignment.clone())))
                    .collect();
                for (waiter, assignment) in answers {
                    let _ = waiter.send(self.sync_answer(assignment));
                }
                (Reply::Later(receiver), Effects { persist_group: true })
            }
        }
    }

    fn sync_answer(&self, assignment: Bytes) -> SyncOutcome {
        SyncOutcome {
            error: None,
            protocol_type: self.protocol_type.clone(),
            protocol: self.protocol.clone(),
            assignment,
        }
    }

    pub fn heartbeat(
        &mut self,
        member_id: &str,
        instance_id: Option<&str>,
        generation: i32,
        now: Instant,
    ) -> Option<KafkaCode> {
        if let Some(code) = self.check_static(member_id, instance_id) {
            return Some(code);
        }
        let Some(member) = self.members.get_mut(member_id) else {
            return Some(KafkaCode::UnknownMemberId);
        };
        if generation != self.generation {
            return Some(KafkaCode::IllegalGeneration);
        }
        member.session_deadline = now + member.session_timeout;
        match self.state {
            GroupState::PreparingRebalance => Some(KafkaCode::RebalanceInProgress),
            GroupState::Empty | GroupState::Dead => Some(KafkaCode::UnknownMemberId),
            GroupState::CompletingRebalance | GroupState::Stable => None,
        }
    }

    /// A member leaves (LeaveGroup); the others rebalance.
    pub fn leave(
        &mut self,
        member_id: &str,
        instance_id: Option<&str>,
        now: Instant,
        now_ms: i64,
        limits: &GroupLimits,
    ) -> Option<KafkaCode> {
        let member_id = match (member_id, instance_id) {
            // LeaveGroup v3+ may name a static member by instance id alone.
            ("", Some(instance)) => match self.static_members.get(instance) {
                Some(id) => id.clone(),
                None => return Some(KafkaCode::UnknownMemberId),
            },
            (id, _) => {
                if let Some(code) = self.check_static(id, instance_id) {
                    return Some(code);
                }
                id.to_string()
            }
        };
        if self.pending.remove(&member_id).is_some() {
            return None;
        }
        if !self.members.contains_key(&member_id) {
            return Some(KafkaCode::UnknownMemberId);
        }
        self.remove_member(&member_id);
        self.after_departure(now, now_ms, limits);
        None
    }

    fn remove_member(&mut self, member_id: &str) {
        if let Some(mut member) = self.members.shift_remove(member_id) {
            if let Some(waiter) = member.join_waiter.take() {
                let _ = waiter.send(JoinOutcome::failed(KafkaCode::UnknownMemberId, member_id));
            }
            if let Some(waiter) = member.sync_waiter.take() {
                let _ = waiter.send(SyncOutcome::failed(KafkaCode::UnknownMemberId));
            }
            if let Some(instance) = member.instance_id {
                if self.static_members.get(&instance).map(String::as_str) == Some(member_id) {
                    self.static_members.remove(&instance);
                }
            }
        }
        if self.leader.as_deref() == Some(member_id) {
            self.leader = None;
        }
    }

    fn after_departure(&mut self, now: Instant, now_ms: i64, limits: &GroupLimits) {
        match self.state {
            GroupState::Stable | GroupState::CompletingRebalance => {
                if self.members.is_empty() {
                    self.become_empty(now_ms);
                } else {
                    self.prepare_rebalance(now, now_ms, limits);
                }
            }
            GroupState::PreparingRebalance => self.try_complete_join(now, now_ms),
            GroupState::Empty | GroupState::Dead => {}
        }
    }

    fn become_empty(&mut self, now_ms: i64) {
        self.state = GroupState::Empty;
        self.protocol = None;
        self.leader = None;
        self.rebalance_deadline = None;
        self.empty_since_ms = now_ms;
    }

    /// Expires sessions and pending member ids, and completes a rebalance whose deadline
    /// passed. Returns whether anything changed.
    pub fn tick(&mut self, now: Instant, now_ms: i64, limits: &GroupLimits) -> bool {
        let before = (self.state, self.generation, self.members.len(), self.pending.len());
        self.pending.retain(|_, deadline| *deadline > now);
        let expired: Vec<String> = self
            .members
            .values()
            .filter(|m| m.session_deadline <= now && m.join_waiter.is_none())
            .map(|m| m.id.clone())
            .collect();
        for id in &expired {
            tracing::info!(
                "group {}: member {} session expired",
                crate::net::error_log::escape(&self.id),
                crate::net::error_log::escape(id)
            );
            self.remove_member(id);
        }
        if !expired.is_empty() {
            self.after_departure(now, now_ms, limits);
        }
        if self.state == GroupState::PreparingRebalance && self.rebalance_deadline.is_some_and(|d| now >= d) {
            self.complete_join(now, now_ms);
        }
        before != (self.state, self.generation, self.members.len(), self.pending.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: GroupLimits = GroupLimits {
        initial_rebalance_delay: Duration::from_millis(100),
        min_session_timeout: Duration::from_millis(10),
        max_session_timeout: Duration::from_secs(600),
    };

    fn request(member_id: &str, instance_id: Option<&str>) -> JoinRequest {
        JoinRequest {
            member_id: member_id.to_string(),
            instance_id: instance_id.map(str::to_string),
            client_id: "client".into(),
            client_host: "/127.0.0.1".into(),
            session_timeout: Duration::from_secs(10),
            rebalance_timeout: Duration::from_secs(30),
            protocol_type: "consumer".into(),
            protocols: vec![
                ("range".into(), Bytes::from_static(b"r")),
                ("roundrobin".into(), Bytes::new()),
            ],
            require_known_member_id: true,
        }
    }

    fn now_answer<T>(reply: Reply<T>) -> T {
        match reply {
            Reply::Now(answer) => answer,
            Reply::Later(_) => panic!("expected an immediate answer"),
        }
    }

    fn later<T>(reply: Reply<T>) -> oneshot::Receiver<T> {
        match reply {
            Reply::Later(receiver) => receiver,
            Reply::Now(_) => panic!("expected to wait"),
        }
    }

    /// Joins a member by the v4+ two-step handshake; returns its id and its pending join.
    fn join(group: &mut Group, now: Instant) -> (String, oneshot::Receiver<JoinOutcome>) {
        let first = now_answer(group.join(request("", None), now, 0, &LIMITS));
        assert_eq!(first.error, Some(KafkaCode::MemberIdRequired));
        let id = first.member_id;
        let waiting = later(group.join(request(&id, None), now, 0, &LIMITS));
        (id, waiting)
    }

    #[test]
    fn a_forming_group_waits_out_the_initial_delay_then_elects_a_leader() {
        let t0 = Instant::now();
        let mut group = Group::new("g", 0);
        let (a, mut a_join) = join(&mut group, t0);
        let (b, mut b_join) = join(&mut group, t0);
        assert_eq!(group.state, GroupState::PreparingRebalance);
        assert!(a_join.try_recv().unwrap().is_none(), "still inside the initial delay");
        assert!(group.tick(t0 + LIMITS.initial_rebalance_delay, 0, &LIMITS));
        let (a_out, b_out) = (a_join.try_recv().unwrap().unwrap(), b_join.try_recv().unwrap().unwrap());
        assert_eq!((a_out.generation, a_out.protocol.as_deref()), (1, Some("range")));
        assert_eq!(a_out.leader, a);
        assert_eq!(a_out.members.len(), 2, "the leader sees every member");
        assert!(b_out.members.is_empty(), "followers do not");
        assert_eq!(group.state, GroupState::CompletingRebalance);

        let mut b_sync = later(group.sync(&b, None, 1, Vec::new()).0);
        let assignments = vec![
            (a.clone(), Bytes::from_static(b"A")),
            (b.clone(), Bytes::from_static(b"B")),
        ];
        let (reply, effects) = group.sync(&a, None, 1, assignments);
        assert!(effects.persist_group);
        assert_eq!(
            later(reply).try_recv().unwrap().unwrap().assignment,
            Bytes::from_static(b"A")
        );
        assert_eq!(b_sync.try_recv().unwrap().unwrap().assignment, Bytes::from_static(b"B"));
        assert_eq!(group.state, GroupState::Stable);
    }

    #[test]
    fn a_new_member_makes_the_others_rejoin_and_heartbeats_say_so() {
        let t0 = Instant::now();
        let mut group = Group::new("g", 0);
        let (a, _) = join(&mut group, t0);
        group.tick(t0 + LIMITS.initial_rebalance_delay, 0, &LIMITS);
        group.sync(&a, None, 1, vec![(a.clone(), Bytes::new())]);
        assert_eq!(group.state, GroupState::Stable);

        let (_b, mut b_join) = join(&mut group, t0);
        assert_eq!(group.heartbeat(&a, None, 1, t0), Some(KafkaCode::RebalanceInProgress));
        assert_eq!(group.heartbeat(&a, None, 7, t0), Some(KafkaCode::IllegalGeneration));
        assert_eq!(group.heartbeat("nobody", None, 1, t0), Some(KafkaCode::UnknownMemberId));
        // Once the old member rejoins, everyone is in: no waiting for a deadline.
        let mut a_join = later(group.join(request(&a, None), t0, 0, &LIMITS));
        assert_eq!(a_join.try_recv().unwrap().unwrap().generation, 2);
        assert_eq!(b_join.try_recv().unwrap().unwrap().generation, 2);
    }

    #[test]
    fn an_expired_session_removes_the_member_and_rebalances() {
        let t0 = Instant::now();
        let mut group = Group::new("g", 0);
        let (a, _) = join(&mut group, t0);
        let (b, _) = join(&mut group, t0);
        let t1 = t0 + LIMITS.initial_rebalance_delay;
        group.tick(t1, 0, &LIMITS);
        group.sync(&a, None, 1, Vec::new());
        // Only a keeps heartbeating.
        let t2 = t1 + Duration::from_secs(9);
        assert_eq!(group.heartbeat(&a, None, 1, t2), None);
        assert!(group.tick(t1 + Duration::from_secs(11), 0, &LIMITS));
        assert!(!group.members.contains_key(&b), "b's session expired");
        assert_eq!(group.state, GroupState::PreparingRebalance);
    }

    #[test]
    fn a_replaced_static_member_is_fenced() {
        let t0 = Instant::now();
        let mut group = Group::new("g", 0);
        let first = later(group.join(request("", Some("alpha")), t0, 0, &LIMITS));
        drop(first);
        let old_id = group.members.keys().next().unwrap().clone();
        group.tick(t0 + LIMITS.initial_rebalance_delay, 0, &LIMITS);
        group.sync(
            &old_id,
            Some("alpha"),
            1,
            vec![(old_id.clone(), Bytes::from_static(b"mine"))],
        );
        // The same instance restarts: it takes over without a new generation.
        let rejoined = now_answer(group.join(request("", Some("alpha")), t0, 0, &LIMITS));
        assert_eq!((rejoined.error, rejoined.generation), (None, 1));
        assert_ne!(rejoined.member_id, old_id);
        let (reply, _) = group.sync(&rejoined.member_id, Some("alpha"), 1, Vec::new());
        assert_eq!(now_answer(reply).assignment, Bytes::from_static(b"mine"));
        assert_eq!(
            group.heartbeat(&old_id, Some("alpha"), 1, t0),
            Some(KafkaCode::FencedInstanceId)
        );
    }

    #[test]
    fn protocols_must_be_shared_and_sessions_in_range() {
        let t0 = Instant::now();
        let mut group = Group::new("g", 0);
        let _first = join(&mut group, t0);
        let mut other = request("", None);
        other.protocols = vec![("cooperative-sticky".into(), Bytes::new())];
        assert_eq!(
            now_answer(group.join(other, t0, 0, &LIMITS)).error,
            Some(KafkaCode::InconsistentGroupProtocol)
        );
        let mut short = request("", None);
        short.session_timeout = Duration::from_millis(1);
        assert_eq!(
            now_answer(group.join(short, t0, 0, &LIMITS)).error,
            Some(KafkaCode::InvalidSessionTimeout)
        );
    }
}
