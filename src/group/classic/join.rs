//! JoinGroup and the join phase: new members, static members taking over their instance,
//! known members rejoining, and the rebalance they start or complete (Kafka's
//! `classicGroupJoinToClassicGroup`, `prepareRebalance`, `completeClassicGroupJoin`).

use std::time::Instant;

use bytes::Bytes;
use futures::channel::oneshot;
use indexmap::IndexMap;

use super::{after, Group, GroupLimits, GroupState, JoinOutcome, JoinRequest, Member, Reply, NEW_MEMBER_JOIN_TIMEOUT};
use crate::constants::GROUP_MEMBERS_MAX;
use crate::error::KafkaCode;

impl Group {
    pub fn join(
        &mut self,
        request: JoinRequest,
        now: Instant,
        now_ms: i64,
        limits: &GroupLimits,
    ) -> Reply<JoinOutcome> {
        let reply = self.admit(request, now, now_ms, limits);
        self.check_invariants();
        reply
    }

    fn admit(&mut self, request: JoinRequest, now: Instant, now_ms: i64, limits: &GroupLimits) -> Reply<JoinOutcome> {
        let member_id = request.member_id.clone();
        let refuse = |code| Reply::Now(JoinOutcome::failed(code, &member_id));
        if member_id.is_empty() && self.members.len() >= GROUP_MEMBERS_MAX {
            return refuse(KafkaCode::GroupMaxSizeReached);
        }
        if self.state == GroupState::Dead {
            return refuse(KafkaCode::CoordinatorNotAvailable);
        }
        if request.session_timeout < limits.min_session_timeout || request.session_timeout > limits.max_session_timeout
        {
            return refuse(KafkaCode::InvalidSessionTimeout);
        }
        if !self.supports(&request) {
            return refuse(KafkaCode::InconsistentGroupProtocol);
        }
        if member_id.is_empty() {
            // Kafka's member ids: the instance id or the client id, then a UUID.
            let prefix = match (&request.instance_id, request.client_id.as_str()) {
                (Some(instance), _) => instance.as_str(),
                (None, "") => "member",
                (None, client) => client,
            };
            let new_id = format!("{prefix}-{}", uuid::Uuid::new_v4());
            return match request.instance_id.clone() {
                Some(instance) => match self.static_members.get(&instance).cloned() {
                    Some(old_id) => self.replace_static_member(old_id, new_id, request, now, now_ms, limits),
                    None => self.add_member(new_id, request, now, now_ms, limits),
                },
                None if request.require_known_member_id => {
                    self.pending.insert(new_id.clone(), after(now, request.session_timeout));
                    Reply::Now(JoinOutcome::failed(KafkaCode::MemberIdRequired, &new_id))
                }
                None => self.add_member(new_id, request, now, now_ms, limits),
            };
        }
        if request.instance_id.is_none() && self.pending.remove(&member_id).is_some() {
            return self.add_member(member_id, request, now, now_ms, limits);
        }
        if let Err(code) = self.validate_member(&member_id, request.instance_id.as_deref()) {
            return refuse(code);
        }
        self.rejoin(member_id, request, now, now_ms, limits)
    }

    /// Whether a member with these protocols may join: the group's protocol type and at
    /// least one protocol every member supports.
    fn supports(&self, request: &JoinRequest) -> bool {
        if request.protocol_type.is_empty() || request.protocols.is_empty() {
            return false;
        }
        if self.members.is_empty() {
            return true;
        }
        self.protocol_type.as_deref() == Some(request.protocol_type.as_str())
            && !self.shared_protocols(Some(&request.protocols)).is_empty()
    }

    /// A known member joins again (Kafka's `classicGroupJoinExistingMember`).
    fn rejoin(
        &mut self,
        member_id: String,
        request: JoinRequest,
        now: Instant,
        now_ms: i64,
        limits: &GroupLimits,
    ) -> Reply<JoinOutcome> {
        let unchanged = self.members[&member_id].protocols == request.protocols;
        match self.state {
            GroupState::PreparingRebalance => {
                let answer = self.update_member(&member_id, request, now);
                self.maybe_complete_join(now, now_ms);
                Reply::Later(answer)
            }
            // It missed the answer to its join (a retry): the current generation again.
            GroupState::CompletingRebalance if unchanged => Reply::Now(self.current_generation(&member_id, true)),
            // A follower with nothing new keeps the generation and syncs again.
            GroupState::Stable if unchanged && !self.is_leader(&member_id) => {
                Reply::Now(self.current_generation(&member_id, false))
            }
            // A changed subscription, or the leader asking to reassign (a topic changed):
            // everyone rejoins.
            GroupState::CompletingRebalance | GroupState::Stable => {
                let answer = self.update_member(&member_id, request, now);
                self.prepare_rebalance(now, now_ms, limits);
                Reply::Later(answer)
            }
            GroupState::Empty | GroupState::Dead => {
                Reply::Now(JoinOutcome::failed(KafkaCode::UnknownMemberId, &member_id))
            }
        }
    }

    /// The current generation's JoinGroup answer for `member_id`; with `roster`, the leader
    /// gets the members again.
    fn current_generation(&self, member_id: &str, roster: bool) -> JoinOutcome {
        let leader = self.leader.clone().expect("a group past its join phase has a leader");
        JoinOutcome {
            error: None,
            generation: self.generation,
            protocol_type: self.protocol_type.clone(),
            protocol: self.protocol.clone(),
            members: if roster && leader == member_id {
                self.roster()
            } else {
                Vec::new()
            },
            leader,
            member_id: member_id.to_string(),
            skip_assignment: false,
        }
    }

    /// Every member with its metadata for the chosen protocol, as the leader assigns over it.
    fn roster(&self) -> Vec<(String, Option<String>, Bytes)> {
        let protocol = self.protocol.as_deref().unwrap_or_default();
        self.members
            .values()
            .map(|m| (m.id.clone(), m.instance_id.clone(), m.metadata(protocol)))
            .collect()
    }

    /// Takes a known member's new protocols and timeouts; it now waits on its join.
    fn update_member(&mut self, member_id: &str, request: JoinRequest, now: Instant) -> oneshot::Receiver<JoinOutcome> {
        let (sender, receiver) = oneshot::channel();
        let member = self.members.get_mut(member_id).expect("a known member");
        member.protocols = request.protocols;
        member.session_timeout = request.session_timeout;
        member.rebalance_timeout = request.rebalance_timeout;
        if !member.is_new {
            // A new member's first join stays bounded by the new-member timeout.
            member.session_deadline = after(now, request.session_timeout);
        }
        if let Some(previous) = member.join_waiter.replace(sender) {
            // A duplicate join (the client retried elsewhere): the newer request wins.
            let _ = previous.send(JoinOutcome::failed(KafkaCode::UnknownMemberId, member_id));
        }
        receiver
    }

    fn add_member(
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
        let member = Member {
            id: member_id.clone(),
            instance_id: request.instance_id,
            client_id: request.client_id,
            client_host: request.client_host,
            session_timeout: request.session_timeout,
            rebalance_timeout: request.rebalance_timeout,
            protocols: request.protocols,
            assignment: Bytes::new(),
            // A new member cannot heartbeat yet: its join is bounded instead.
            session_deadline: after(now, NEW_MEMBER_JOIN_TIMEOUT),
            is_new: true,
            awaiting_sync_request: false,
            join_waiter: Some(sender),
            sync_waiter: None,
        };
        if let Some(instance) = &member.instance_id {
            let previous = self.static_members.insert(instance.clone(), member_id.clone());
            assert!(previous.is_none(), "group {}: instance {instance} added twice", self.id);
        }
        let previous = self.members.insert(member_id.clone(), member);
        assert!(previous.is_none(), "group {}: member {member_id} added twice", self.id);
        if self.leader.is_none() {
            self.leader = Some(member_id);
        }
        match self.state {
            GroupState::PreparingRebalance => self.maybe_complete_join(now, now_ms),
            _ => self.prepare_rebalance(now, now_ms, limits),
        }
        Reply::Later(receiver)
    }

    /// A static member without a member id whose instance is known: a restart. The new
    /// incarnation takes the old one's place (the old is fenced); in a Stable group whose
    /// protocol it does not change it keeps the generation and its assignment, as in Kafka.
    fn replace_static_member(
        &mut self,
        old_id: String,
        new_id: String,
        request: JoinRequest,
        now: Instant,
        now_ms: i64,
        limits: &GroupLimits,
    ) -> Reply<JoinOutcome> {
        let previous_leader = self.leader.clone().unwrap_or_default();
        let mut member = self
            .members
            .shift_remove(&old_id)
            .unwrap_or_else(|| panic!("group {}: static instance maps to missing member {old_id}", self.id));
        member.answer_join(JoinOutcome::failed(KafkaCode::FencedInstanceId, &old_id));
        member.answer_sync(super::SyncOutcome::failed(KafkaCode::FencedInstanceId));
        member.id = new_id.clone();
        member.protocols = request.protocols;
        member.session_timeout = request.session_timeout;
        member.rebalance_timeout = request.rebalance_timeout;
        if !member.is_new {
            member.session_deadline = after(now, request.session_timeout);
        }
        let instance = member.instance_id.clone().expect("a static member has an instance id");
        self.static_members.insert(instance, new_id.clone());
        self.members.insert(new_id.clone(), member);
        if previous_leader == old_id {
            self.leader = Some(new_id.clone());
        }
        match self.state {
            GroupState::Stable if self.choose_protocol() == self.protocol => {
                let is_leader = self.is_leader(&new_id);
                let mut outcome = self.current_generation(&new_id, false);
                if request.supports_skip_assignment {
                    // v9+: the leader learns the members but keeps the assignment as it is.
                    if is_leader {
                        outcome.members = self.roster();
                        outcome.skip_assignment = true;
                    }
                } else {
                    // Older clients would reassign if told they lead: name the old incarnation
                    // as the leader, so this one simply syncs and gets its assignment back.
                    outcome.leader = previous_leader;
                }
                return Reply::Now(outcome);
            }
            GroupState::Stable | GroupState::CompletingRebalance | GroupState::PreparingRebalance => {}
            GroupState::Empty | GroupState::Dead => {
                unreachable!("group {}: a static member in a {} group", self.id, self.state.name())
            }
        }
        let (sender, receiver) = oneshot::channel();
        self.members[&new_id].join_waiter = Some(sender);
        match self.state {
            // Mid-sync the leader may be assigning to the old member id: rebalance.
            GroupState::Stable | GroupState::CompletingRebalance => self.prepare_rebalance(now, now_ms, limits),
            _ => self.maybe_complete_join(now, now_ms),
        }
        Reply::Later(receiver)
    }

    /// Starts a rebalance: members must rejoin before the deadline (the longest rebalance
    /// timeout, or the initial delay for a group forming from empty).
    pub(super) fn prepare_rebalance(&mut self, now: Instant, now_ms: i64, limits: &GroupLimits) {
        if self.state == GroupState::CompletingRebalance {
            for member in self.members.values_mut() {
                member.assignment = Bytes::new();
                member.answer_sync_and_restart(super::SyncOutcome::failed(KafkaCode::RebalanceInProgress), now);
            }
        }
        for member in self.members.values_mut() {
            member.awaiting_sync_request = false;
        }
        self.sync_deadline = None;
        self.assignment_in_flight = false;
        self.forming = self.state == GroupState::Empty;
        self.state = GroupState::PreparingRebalance;
        let timeout = if self.forming {
            limits.initial_rebalance_delay
        } else {
            self.rebalance_timeout()
        };
        self.rebalance_deadline = Some(after(now, timeout));
        tracing::debug!(
            target: "sluice::group",
            "group {}: preparing a rebalance of generation {}",
            crate::text::escape(&self.id),
            self.generation
        );
        self.maybe_complete_join(now, now_ms);
    }

    /// Completes the join phase early once every member (and every member id handed out) has
    /// joined, unless the group is forming and waits out its initial delay.
    pub(super) fn maybe_complete_join(&mut self, now: Instant, now_ms: i64) {
        if self.state != GroupState::PreparingRebalance || self.forming {
            return;
        }
        let all_joined = self.pending.is_empty() && self.members.values().all(|m| m.join_waiter.is_some());
        if all_joined {
            self.complete_join(now, now_ms);
        }
    }

    /// Ends the join phase: dynamic members that did not rejoin leave, static ones keep their
    /// place (with their last metadata), and the members that rejoined hear the new
    /// generation. If only absent static members remain, the phase waits again.
    pub(super) fn complete_join(&mut self, now: Instant, now_ms: i64) {
        assert_eq!(
            self.state,
            GroupState::PreparingRebalance,
            "group {}: completing a join phase while {}",
            self.id,
            self.state.name()
        );
        let absent: Vec<String> = self
            .members
            .values()
            .filter(|m| m.join_waiter.is_none() && m.instance_id.is_none())
            .map(|m| m.id.clone())
            .collect();
        for id in &absent {
            self.remove_member(id, KafkaCode::UnknownMemberId);
        }
        if !absent.is_empty() {
            tracing::info!(
                target: "sluice::group",
                "group {}: {} members did not rejoin in time",
                crate::text::escape(&self.id),
                absent.len()
            );
        }
        self.forming = false;
        if self.members.is_empty() {
            self.become_empty(now_ms);
            return;
        }
        if !self.elect_joined_leader() {
            // Only static members that have not rejoined: wait for them, or for their sessions.
            self.rebalance_deadline = Some(after(now, self.rebalance_timeout()));
            return;
        }
        self.rebalance_deadline = None;
        self.bump_generation();
        self.protocol = Some(self.choose_protocol().expect("members share a protocol"));
        self.state = GroupState::CompletingRebalance;
        let leader = self.leader.clone().expect("a leader was elected");
        let roster = self.roster();
        let (generation, protocol_type, protocol) =
            (self.generation, self.protocol_type.clone(), self.protocol.clone());
        for member in self.members.values_mut() {
            let outcome = JoinOutcome {
                error: None,
                generation,
                protocol_type: protocol_type.clone(),
                protocol: protocol.clone(),
                leader: leader.clone(),
                member_id: member.id.clone(),
                members: if member.id == leader {
                    roster.clone()
                } else {
                    Vec::new()
                },
                skip_assignment: false,
            };
            member.answer_join(outcome);
            member.session_deadline = after(now, member.session_timeout);
            member.is_new = false;
            member.awaiting_sync_request = true;
        }
        self.sync_deadline = Some(after(now, self.rebalance_timeout()));
    }

    /// Keeps the leader if it rejoined, else makes the first member that did lead. False if
    /// no member rejoined.
    fn elect_joined_leader(&mut self) -> bool {
        let rejoined = |id: &str| self.members.get(id).is_some_and(|m| m.join_waiter.is_some());
        if self.leader.as_deref().is_some_and(rejoined) {
            return true;
        }
        let elected = self
            .members
            .values()
            .find(|m| m.join_waiter.is_some())
            .map(|m| m.id.clone());
        let found = elected.is_some();
        if found {
            self.leader = elected;
        }
        found
    }

    /// Protocols every member (and, if given, the candidate) supports.
    pub(super) fn shared_protocols(&self, candidate: Option<&Vec<(String, Bytes)>>) -> Vec<String> {
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
    pub(super) fn choose_protocol(&self) -> Option<String> {
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
}
