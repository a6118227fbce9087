//! The consumer group protocol of KIP-848 (ConsumerGroupHeartbeat): the broker assigns.
//!
//! Every membership or subscription change bumps the group epoch; the target assignment is
//! recomputed by the server-side assignor at that epoch. Each member then moves toward its
//! target: partitions it must give up are taken out of its assignment first and stay
//! *unreleased* until its heartbeat reports it no longer owns them; only then does its
//! member epoch advance, and a partition is handed to its new owner only once nobody else
//! holds it. So no partition is ever owned by two members at once.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use indexmap::IndexMap;

use crate::error::KafkaCode;
use crate::group::assignor::{self, Assignment, MemberSubscription};

pub struct ConsumerMember {
    pub id: String,
    pub instance_id: Option<String>,
    pub rack_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub epoch: i32,
    previous_epoch: i32,
    pub subscribed: BTreeSet<String>,
    pub rebalance_timeout: Duration,
    pub assignor: Option<String>,
    /// What the member has been told it owns.
    pub assigned: Assignment,
    /// Partitions taken away that the member has not yet confirmed releasing.
    unreleased: Assignment,
    session_deadline: Instant,
    /// When the member must have released `unreleased` by, or be removed.
    release_deadline: Option<Instant>,
    /// The assignment last sent, to send it again only when it changes.
    last_sent: Option<Assignment>,
}

impl ConsumerMember {
    fn owns(&self, topic: &uuid::Uuid, partition: i32) -> bool {
        [&self.assigned, &self.unreleased]
            .iter()
            .any(|a| a.get(topic).is_some_and(|p| p.contains(&partition)))
    }
}

pub struct ConsumerGroup {
    pub id: String,
    pub group_epoch: i32,
    pub assignment_epoch: i32,
    pub members: IndexMap<String, ConsumerMember>,
    pub target: BTreeMap<String, Assignment>,
    /// Partition counts of the subscribed topics when the target was computed.
    topology: BTreeMap<uuid::Uuid, i32>,
}

/// A ConsumerGroupHeartbeat, as the state machine needs it.
pub struct Heartbeat {
    pub member_id: String,
    pub epoch: i32,
    pub instance_id: Option<String>,
    pub rack_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub rebalance_timeout: Option<Duration>,
    pub subscribed: Option<BTreeSet<String>>,
    pub assignor: Option<String>,
    /// Partitions the member reports owning, when it reports them.
    pub owned: Option<Assignment>,
}

#[derive(Debug, Default, PartialEq, Eq)]
pub struct HeartbeatAnswer {
    pub error: Option<KafkaCode>,
    pub message: Option<String>,
    pub member_id: String,
    pub epoch: i32,
    /// The member's whole assignment, when it changed since the last answer.
    pub assignment: Option<Assignment>,
}

impl HeartbeatAnswer {
    fn failed(error: KafkaCode, message: &str, member_id: &str) -> HeartbeatAnswer {
        HeartbeatAnswer {
            error: Some(error),
            message: Some(message.to_string()),
            member_id: member_id.to_string(),
            epoch: -1,
            assignment: None,
        }
    }
}

/// Epochs a heartbeat may carry besides a member's own.
const JOIN_EPOCH: i32 = 0;
const LEAVE_EPOCH: i32 = -1;
const STATIC_LEAVE_EPOCH: i32 = -2;

impl ConsumerGroup {
    pub fn new(id: &str) -> ConsumerGroup {
        ConsumerGroup {
            id: id.to_string(),
            group_epoch: 0,
            assignment_epoch: 0,
            members: IndexMap::new(),
            target: BTreeMap::new(),
            topology: BTreeMap::new(),
        }
    }

    /// Kafka's names for the group's state.
    pub fn state(&self) -> &'static str {
        if self.members.is_empty() {
            "Empty"
        } else if self.assignment_epoch < self.group_epoch {
            "Assigning"
        } else if self
            .members
            .values()
            .any(|m| m.epoch != self.assignment_epoch || !m.unreleased.is_empty())
        {
            "Reconciling"
        } else {
            "Stable"
        }
    }

    pub fn next_deadline(&self) -> Option<Instant> {
        self.members
            .values()
            .flat_map(|m| [Some(m.session_deadline), m.release_deadline])
            .flatten()
            .min()
    }

    /// Handles one heartbeat. `topics` resolves a topic name to its id and partition count
    /// (None for a topic that does not exist).
    pub fn heartbeat(
        &mut self,
        request: Heartbeat,
        session_timeout: Duration,
        now: Instant,
        topics: &dyn Fn(&str) -> Option<(uuid::Uuid, i32)>,
    ) -> HeartbeatAnswer {
        let answer = self.answer(request, session_timeout, now, topics);
        self.check_invariants();
        answer
    }

    /// Panics, with the group and the values, if a promise of this module is broken: a
    /// partition held (assigned or not yet released) by two members at once, or an epoch
    /// ahead of the one it follows (member epoch <= assignment epoch <= group epoch).
    fn check_invariants(&self) {
        assert!(
            self.assignment_epoch <= self.group_epoch,
            "group {}: assignment epoch {} ahead of group epoch {}",
            self.id,
            self.assignment_epoch,
            self.group_epoch
        );
        let mut holders: BTreeMap<(uuid::Uuid, i32), &str> = BTreeMap::new();
        for member in self.members.values() {
            assert!(
                member.epoch <= self.assignment_epoch,
                "group {}: member {} at epoch {} ahead of assignment epoch {}",
                self.id,
                member.id,
                member.epoch,
                self.assignment_epoch
            );
            let held: BTreeSet<(uuid::Uuid, i32)> = [&member.assigned, &member.unreleased]
                .into_iter()
                .flat_map(|a| a.iter().flat_map(|(topic, ps)| ps.iter().map(move |p| (*topic, *p))))
                .collect();
            for key in held {
                if let Some(other) = holders.insert(key, &member.id) {
                    panic!(
                        "group {}: partition {}-{} held by both {other} and {}",
                        self.id, key.0, key.1, member.id
                    );
                }
            }
        }
    }

    fn answer(
        &mut self,
        request: Heartbeat,
        session_timeout: Duration,
        now: Instant,
        topics: &dyn Fn(&str) -> Option<(uuid::Uuid, i32)>,
    ) -> HeartbeatAnswer {
        if let Some(assignor) = &request.assignor {
            if !assignor::ASSIGNORS.contains(&assignor.as_str()) {
                return HeartbeatAnswer::failed(
                    KafkaCode::UnsupportedAssignor,
                    "Unknown server assignor",
                    &request.member_id,
                );
            }
        }
        let member_id = match request.epoch {
            LEAVE_EPOCH | STATIC_LEAVE_EPOCH => {
                if self.members.shift_remove(&request.member_id).is_some() {
                    self.group_epoch += 1;
                }
                return HeartbeatAnswer {
                    member_id: request.member_id,
                    epoch: request.epoch,
                    ..HeartbeatAnswer::default()
                };
            }
            JOIN_EPOCH => {
                let id = if request.member_id.is_empty() {
                    uuid::Uuid::new_v4().to_string()
                } else {
                    request.member_id.clone()
                };
                if request.subscribed.as_ref().is_none_or(BTreeSet::is_empty) && !self.members.contains_key(&id) {
                    return HeartbeatAnswer::failed(KafkaCode::InvalidRequest, "A joining member must subscribe", &id);
                }
                if let Some(old) = self.members.shift_remove(&id) {
                    // A member rejoining from scratch gives up what it held.
                    drop(old);
                }
                self.members.insert(
                    id.clone(),
                    ConsumerMember {
                        id: id.clone(),
                        instance_id: request.instance_id.clone(),
                        rack_id: request.rack_id.clone(),
                        client_id: request.client_id.clone(),
                        client_host: request.client_host.clone(),
                        epoch: 0,
                        previous_epoch: 0,
                        subscribed: BTreeSet::new(),
                        rebalance_timeout: request.rebalance_timeout.unwrap_or(Duration::from_secs(300)),
                        assignor: None,
                        assigned: Assignment::new(),
                        unreleased: Assignment::new(),
                        session_deadline: now + session_timeout,
                        release_deadline: None,
                        last_sent: None,
                    },
                );
                // No epoch bump here: the subscription set below always differs from the new
                // member's empty one, and that change bumps the group epoch.
                id
            }
            epoch => {
                let Some(member) = self.members.get(&request.member_id) else {
                    return HeartbeatAnswer::failed(KafkaCode::UnknownMemberId, "Unknown member", &request.member_id);
                };
                if epoch != member.epoch && epoch != member.previous_epoch {
                    return HeartbeatAnswer::failed(
                        KafkaCode::FencedMemberEpoch,
                        "The member epoch is stale",
                        &request.member_id,
                    );
                }
                request.member_id.clone()
            }
        };

        let member = self.members.get_mut(&member_id).expect("member exists");
        member.session_deadline = now + session_timeout;
        if let Some(timeout) = request.rebalance_timeout {
            member.rebalance_timeout = timeout;
        }
        if let Some(assignor) = request.assignor {
            member.assignor = Some(assignor);
        }
        if let Some(subscribed) = request.subscribed {
            if subscribed != member.subscribed {
                member.subscribed = subscribed;
                self.group_epoch += 1;
            }
        }
        if let Some(owned) = &request.owned {
            // Whatever the member no longer reports owning has been released.
            for (topic, partitions) in member.unreleased.iter_mut() {
                partitions.retain(|p| owned.get(topic).is_some_and(|o| o.contains(p)));
            }
            member.unreleased.retain(|_, partitions| !partitions.is_empty());
            if member.unreleased.is_empty() {
                member.release_deadline = None;
            }
        }

        self.refresh_target(topics);
        self.reconcile(&member_id, now);
        let member = self.members.get_mut(&member_id).expect("member exists");
        let changed = member.last_sent.as_ref() != Some(&member.assigned);
        if changed {
            member.last_sent = Some(member.assigned.clone());
        }
        HeartbeatAnswer {
            error: None,
            message: None,
            member_id,
            epoch: member.epoch,
            assignment: changed.then(|| member.assigned.clone()),
        }
    }

    /// Recomputes the target when the group epoch moved or a subscribed topic changed shape.
    fn refresh_target(&mut self, topics: &dyn Fn(&str) -> Option<(uuid::Uuid, i32)>) {
        let mut topology = BTreeMap::new();
        let mut subscriptions: BTreeMap<String, BTreeSet<uuid::Uuid>> = BTreeMap::new();
        for member in self.members.values() {
            let ids = subscriptions.entry(member.id.clone()).or_default();
            for name in &member.subscribed {
                if let Some((id, count)) = topics(name) {
                    topology.insert(id, count);
                    ids.insert(id);
                }
            }
        }
        if topology != self.topology {
            self.topology = topology;
            self.group_epoch = self.group_epoch.max(self.assignment_epoch + 1);
        }
        if self.assignment_epoch == self.group_epoch {
            return;
        }
        let assignor_name = self
            .members
            .values()
            .find_map(|m| m.assignor.clone())
            .unwrap_or_else(|| assignor::UNIFORM.to_string());
        let members: Vec<MemberSubscription<'_>> = self
            .members
            .values()
            .map(|m| MemberSubscription {
                id: &m.id,
                topics: &subscriptions[&m.id],
                current: &m.assigned,
            })
            .collect();
        self.target = assignor::assign(&assignor_name, &members, &self.topology);
        self.assignment_epoch = self.group_epoch;
    }

    /// Moves one member toward its target: revoke first, assign only free partitions, and
    /// advance its epoch once nothing it gave up is still unreleased.
    fn reconcile(&mut self, member_id: &str, now: Instant) {
        let target = self.target.get(member_id).cloned().unwrap_or_default();
        let member = self.members.get_mut(member_id).expect("member exists");
        let mut dropped = Assignment::new();
        for (topic, partitions) in &member.assigned {
            let keep = target.get(topic);
            for &p in partitions {
                if keep.is_none_or(|k| !k.contains(&p)) {
                    dropped.entry(*topic).or_default().insert(p);
                }
            }
        }
        if !dropped.is_empty() {
            for (topic, partitions) in &dropped {
                if let Some(assigned) = member.assigned.get_mut(topic) {
                    assigned.retain(|p| !partitions.contains(p));
                }
                member.unreleased.entry(*topic).or_default().extend(partitions);
            }
            member.assigned.retain(|_, p| !p.is_empty());
            member.release_deadline = Some(now + member.rebalance_timeout);
        }
        if !member.unreleased.is_empty() {
            return;
        }
        if member.epoch != self.assignment_epoch {
            member.previous_epoch = member.epoch;
            member.epoch = self.assignment_epoch;
        }
        let wanted: Vec<(uuid::Uuid, i32)> = target
            .iter()
            .flat_map(|(topic, partitions)| partitions.iter().map(move |p| (*topic, *p)))
            .filter(|(topic, p)| !self.members[member_id].owns(topic, *p))
            .collect();
        for (topic, partition) in wanted {
            let held_elsewhere = self
                .members
                .values()
                .any(|other| other.id != member_id && other.owns(&topic, partition));
            if !held_elsewhere {
                let member = self.members.get_mut(member_id).expect("member exists");
                member.assigned.entry(topic).or_default().insert(partition);
            }
        }
    }

    /// Removes members whose session expired or who did not release partitions in time.
    pub fn tick(&mut self, now: Instant) -> Vec<String> {
        let gone: Vec<String> = self
            .members
            .values()
            .filter(|m| m.session_deadline <= now || m.release_deadline.is_some_and(|d| d <= now))
            .map(|m| m.id.clone())
            .collect();
        for id in &gone {
            self.members.shift_remove(id);
        }
        if !gone.is_empty() {
            self.group_epoch += 1;
        }
        self.check_invariants();
        gone
    }

    /// Whether `member` at `epoch` may commit offsets (its current or previous epoch).
    pub fn commit_allowed(&self, member: &str, epoch: i32) -> Result<(), KafkaCode> {
        let member = self.members.get(member).ok_or(KafkaCode::UnknownMemberId)?;
        if epoch == member.epoch || epoch == member.previous_epoch {
            Ok(())
        } else {
            Err(KafkaCode::StaleMemberEpoch)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: uuid::Uuid = uuid::Uuid::from_u128(7);
    const SESSION: Duration = Duration::from_secs(10);

    fn topics(name: &str) -> Option<(uuid::Uuid, i32)> {
        (name == "t").then_some((T, 6))
    }

    fn beat(member_id: &str, epoch: i32, owned: Option<&[i32]>) -> Heartbeat {
        Heartbeat {
            member_id: member_id.to_string(),
            epoch,
            instance_id: None,
            rack_id: None,
            client_id: "c".into(),
            client_host: "/127.0.0.1".into(),
            rebalance_timeout: Some(Duration::from_secs(30)),
            subscribed: (epoch == 0).then(|| BTreeSet::from(["t".to_string()])),
            assignor: None,
            owned: owned.map(|o| BTreeMap::from([(T, o.iter().copied().collect())])),
        }
    }

    fn partitions(answer: &HeartbeatAnswer) -> Vec<i32> {
        answer
            .assignment
            .as_ref()
            .and_then(|a| a.get(&T))
            .map(|p| p.iter().copied().collect())
            .unwrap_or_default()
    }

    #[test]
    #[should_panic(expected = "held by both a and b")]
    fn a_partition_held_twice_is_caught() {
        let now = Instant::now();
        let mut group = ConsumerGroup::new("g");
        group.heartbeat(beat("a", 0, None), SESSION, now, &topics);
        group.heartbeat(beat("b", 0, None), SESSION, now, &topics);
        let b = group.members.get_mut("b").expect("b joined");
        b.assigned.entry(T).or_default().insert(0);
        group.check_invariants();
    }

    #[test]
    fn a_partition_moves_only_after_its_owner_releases_it() {
        let now = Instant::now();
        let mut group = ConsumerGroup::new("g");
        let a = group.heartbeat(beat("a", 0, None), SESSION, now, &topics);
        assert_eq!((a.epoch, partitions(&a)), (1, vec![0, 1, 2, 3, 4, 5]));

        let b = group.heartbeat(beat("b", 0, None), SESSION, now, &topics);
        assert_eq!(b.epoch, 2);
        assert!(
            partitions(&b).is_empty(),
            "nothing is free while a still owns everything"
        );

        // a learns it must give three up; its epoch waits for the release.
        let a = group.heartbeat(beat("a", 1, Some(&[0, 1, 2, 3, 4, 5])), SESSION, now, &topics);
        assert_eq!((a.epoch, partitions(&a).len()), (1, 3));
        assert_eq!(group.state(), "Reconciling");
        let b = group.heartbeat(beat("b", 2, Some(&[])), SESSION, now, &topics);
        assert!(b.assignment.is_none(), "still nothing free for b");

        // a confirms; it advances, and b gets the released partitions.
        let kept = partitions(&a);
        let a = group.heartbeat(beat("a", 1, Some(&kept)), SESSION, now, &topics);
        assert_eq!(a.epoch, 2);
        let b = group.heartbeat(beat("b", 2, Some(&[])), SESSION, now, &topics);
        let b_parts = partitions(&b);
        assert_eq!(b_parts.len(), 3);
        assert!(b_parts.iter().all(|p| !kept.contains(p)), "never owned twice");
        assert_eq!(group.state(), "Stable");
    }

    #[test]
    fn stale_epochs_are_fenced_and_strangers_unknown() {
        let now = Instant::now();
        let mut group = ConsumerGroup::new("g");
        group.heartbeat(beat("a", 0, None), SESSION, now, &topics);
        let fenced = group.heartbeat(beat("a", 9, None), SESSION, now, &topics);
        assert_eq!(fenced.error, Some(KafkaCode::FencedMemberEpoch));
        let unknown = group.heartbeat(beat("z", 3, None), SESSION, now, &topics);
        assert_eq!(unknown.error, Some(KafkaCode::UnknownMemberId));
    }

    #[test]
    fn an_expired_member_frees_its_partitions_for_the_others() {
        let now = Instant::now();
        let mut group = ConsumerGroup::new("g");
        let joined = group.heartbeat(beat("a", 0, None), SESSION, now, &topics);
        assert_eq!(partitions(&joined).len(), 6);
        let a = group.heartbeat(
            beat("a", joined.epoch, Some(&[0, 1, 2, 3, 4, 5])),
            SESSION,
            now,
            &topics,
        );
        assert_eq!(a.error, None);
        group.heartbeat(beat("b", 0, None), SESSION, now, &topics);
        assert_eq!(group.tick(now + SESSION), vec!["a".to_string(), "b".to_string()]);
        let later = now + SESSION;
        let c = group.heartbeat(beat("c", 0, None), SESSION, later, &topics);
        assert_eq!(partitions(&c).len(), 6, "a's partitions went to the only member left");
    }
}
