//! SyncGroup and the sync phase: followers wait for the leader's assignment, which takes
//! effect only once its generation is durable; members that never send SyncGroup are removed
//! after the rebalance timeout (Kafka's `classicGroupSyncToClassicGroup`, `expirePendingSync`).

use std::collections::HashMap;
use std::time::Instant;

use bytes::Bytes;
use futures::channel::oneshot;

use super::{Group, GroupLimits, GroupState, Reply, SyncOutcome};
use crate::error::KafkaCode;

/// The assignment a leader handed in for `generation`: the caller persists the generation,
/// then gives it back through [`Group::assignment_persisted`].
#[derive(Debug)]
pub struct Assignment {
    pub generation: i32,
    by_member: HashMap<String, Bytes>,
}

impl Group {
    /// A member asks for its assignment. The leader's SyncGroup carries everyone's and
    /// returns it as an [`Assignment`] to persist; every member's answer waits for that.
    pub fn sync(
        &mut self,
        member_id: &str,
        instance_id: Option<&str>,
        generation: i32,
        assignments: Vec<(String, Bytes)>,
    ) -> (Reply<SyncOutcome>, Option<Assignment>) {
        let outcome = self.take_sync(member_id, instance_id, generation, assignments);
        self.check_invariants();
        outcome
    }

    fn take_sync(
        &mut self,
        member_id: &str,
        instance_id: Option<&str>,
        generation: i32,
        assignments: Vec<(String, Bytes)>,
    ) -> (Reply<SyncOutcome>, Option<Assignment>) {
        let refuse = |code| (Reply::Now(SyncOutcome::failed(code)), None);
        if self.state == GroupState::Dead {
            return refuse(KafkaCode::CoordinatorNotAvailable);
        }
        if let Err(code) = self.validate_member(member_id, instance_id) {
            return refuse(code);
        }
        if generation != self.generation {
            return refuse(KafkaCode::IllegalGeneration);
        }
        match self.state {
            GroupState::PreparingRebalance => refuse(KafkaCode::RebalanceInProgress),
            GroupState::Empty | GroupState::Dead => refuse(KafkaCode::UnknownMemberId),
            GroupState::Stable => {
                let member = self.members.get_mut(member_id).expect("a validated member");
                member.awaiting_sync_request = false;
                let answer = self.answer(self.members[member_id].assignment.clone());
                self.maybe_clear_sync_deadline();
                (Reply::Now(answer), None)
            }
            GroupState::CompletingRebalance => {
                let (sender, receiver) = oneshot::channel();
                let member = self.members.get_mut(member_id).expect("a validated member");
                // A repeated SyncGroup replaces the earlier one, whose answer fails.
                member.sync_waiter = Some(sender);
                member.awaiting_sync_request = false;
                self.maybe_clear_sync_deadline();
                if !self.is_leader(member_id) || self.assignment_in_flight {
                    return (Reply::Later(receiver), None);
                }
                self.assignment_in_flight = true;
                let assignment = Assignment {
                    generation,
                    by_member: assignments.into_iter().collect(),
                };
                (Reply::Later(receiver), Some(assignment))
            }
        }
    }

    fn answer(&self, assignment: Bytes) -> SyncOutcome {
        SyncOutcome {
            error: None,
            protocol_type: self.protocol_type.clone(),
            protocol: self.protocol.clone(),
            assignment,
        }
    }

    fn maybe_clear_sync_deadline(&mut self) {
        if !self.members.values().any(|m| m.awaiting_sync_request) {
            self.sync_deadline = None;
        }
    }

    /// The leader's assignment was persisted (or could not be). If the group is still
    /// waiting for it, every member gets its share and the group is Stable; on a failure they
    /// get the error and the group rebalances. An assignment for a generation the group has
    /// left behind (a member joined meanwhile) is dropped: its waiters already heard.
    /// Returns whether the assignment took effect.
    pub fn assignment_persisted(
        &mut self,
        assignment: Assignment,
        persisted: Result<(), KafkaCode>,
        now: Instant,
        now_ms: i64,
        limits: &GroupLimits,
    ) -> bool {
        assert!(
            assignment.generation <= self.generation,
            "group {}: an assignment for generation {} from the future (now {})",
            self.id,
            assignment.generation,
            self.generation
        );
        if self.state != GroupState::CompletingRebalance || assignment.generation != self.generation {
            return false;
        }
        self.assignment_in_flight = false;
        let took_effect = persisted.is_ok();
        match persisted {
            Ok(()) => {
                let mut by_member = assignment.by_member;
                let (protocol_type, protocol) = (self.protocol_type.clone(), self.protocol.clone());
                for member in self.members.values_mut() {
                    member.assignment = by_member.remove(&member.id).unwrap_or_default();
                    let answer = SyncOutcome {
                        error: None,
                        protocol_type: protocol_type.clone(),
                        protocol: protocol.clone(),
                        assignment: member.assignment.clone(),
                    };
                    member.answer_sync_and_restart(answer, now);
                }
                self.state = GroupState::Stable;
            }
            Err(code) => {
                for member in self.members.values_mut() {
                    member.answer_sync_and_restart(SyncOutcome::failed(code), now);
                }
                self.prepare_rebalance(now, now_ms, limits);
            }
        }
        self.check_invariants();
        took_effect
    }

    /// The rebalance timeout passed since the join completed: members that never sent
    /// SyncGroup are removed, and the rest rebalance without them.
    pub(super) fn expire_pending_sync(&mut self, now: Instant, now_ms: i64, limits: &GroupLimits) {
        self.sync_deadline = None;
        let late: Vec<String> = self
            .members
            .values()
            .filter(|m| m.awaiting_sync_request)
            .map(|m| m.id.clone())
            .collect();
        if late.is_empty() {
            return;
        }
        tracing::info!(
            target: "sluice::group",
            "group {}: {} members sent no SyncGroup within the rebalance timeout",
            crate::text::escape(&self.id),
            late.len()
        );
        for id in &late {
            self.remove_member(id, KafkaCode::UnknownMemberId);
        }
        if self.members.is_empty() {
            self.become_empty(now_ms);
        } else {
            self.prepare_rebalance(now, now_ms, limits);
        }
    }
}
