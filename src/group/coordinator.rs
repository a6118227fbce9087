//! The group coordinator of one shard: the groups whose `__consumer_offsets` partition this
//! shard owns, their timers, and their records in that partition.
//!
//! Every change a client must be able to rely on (a committed offset, a completed
//! generation) is appended to the group's offsets partition and flushed before it is
//! answered; at start-up the coordinator replays its partitions to rebuild the offsets and
//! generations. Members are not persisted: after a restart they rejoin.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::coordinator::persist::StateRecord;
use crate::error::KafkaCode;
use crate::group::classic::{Group, GroupLimits, GroupState};
use crate::group::consumer::ConsumerGroup;
use crate::group::records::{self, GroupValue, Key, OffsetValue};
use crate::group::GroupHost;
use crate::signal::Signal;
use crate::storage::segment::now_ms;

/// The internal topic holding offsets and group metadata.
pub const OFFSETS_TOPIC: &str = "__consumer_offsets";

/// How long a group's timer waits before retrying to write the tombstones of expired offsets.
const RETENTION_RETRY_DELAY: Duration = Duration::from_secs(1);

struct Entry {
    group: Rc<RefCell<Group>>,
    /// Re-arms the group's timer when its deadlines move earlier.
    timer: Rc<Signal>,
}

/// Where a coordinator stands with one offsets partition it owns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Load {
    /// Its records are being replayed: requests for its groups wait (COORDINATOR_LOAD_IN_PROGRESS).
    Loading,
    Loaded,
}

pub struct GroupCoordinator {
    /// The offsets partitions whose groups this coordinator serves, with the leader epoch it
    /// took them at (0 on a single node). A partition not here: NOT_COORDINATOR.
    partitions: RefCell<HashMap<i32, (i32, Load)>>,
    groups: RefCell<HashMap<String, Entry>>,
    /// Groups on the consumer protocol (KIP-848). Their offsets live in the classic entry of
    /// the same id, which stays without members.
    consumer_groups: RefCell<HashMap<String, ConsumerEntry>>,
    pub limits: GroupLimits,
    offsets_retention: Duration,
    /// Offsets committed inside transactions not yet ended (TxnOffsetCommit), by offsets
    /// partition and producer id: they take effect when the commit marker reaches that
    /// partition, and vanish at an abort marker.
    pending_txn: RefCell<HashMap<(i32, i64), Vec<PendingOffset>>>,
}

/// One offset a transaction committed.
#[derive(Debug, Clone)]
pub struct PendingOffset {
    pub group: String,
    pub topic: String,
    pub partition: i32,
    pub value: OffsetValue,
}

struct ConsumerEntry {
    group: Rc<RefCell<ConsumerGroup>>,
    timer: Rc<Signal>,
    /// The group's timer task; dropped (and so stopped) with the entry.
    _ticking: crate::runtime::Task<()>,
}

impl GroupCoordinator {
    pub fn new(limits: GroupLimits, offsets_retention: Duration) -> GroupCoordinator {
        GroupCoordinator {
            partitions: RefCell::new(HashMap::new()),
            groups: RefCell::new(HashMap::new()),
            consumer_groups: RefCell::new(HashMap::new()),
            limits,
            offsets_retention,
            pending_txn: RefCell::new(HashMap::new()),
        }
    }

    /// Keeps offsets a transaction of `producer_id` committed (already in offsets partition
    /// `partition`'s log) until its marker.
    pub fn stage_txn_offsets(&self, partition: i32, producer_id: i64, offsets: Vec<PendingOffset>) {
        self.pending_txn
            .borrow_mut()
            .entry((partition, producer_id))
            .or_default()
            .extend(offsets);
    }

    /// A marker of `producer_id` reached offsets partition `partition`: its staged offsets
    /// become the groups' committed offsets (commit) or are dropped (abort).
    pub fn complete_txn(&self, shard: &Rc<impl GroupHost>, partition: i32, producer_id: i64, commit: bool) {
        let Some(staged) = self.pending_txn.borrow_mut().remove(&(partition, producer_id)) else {
            return;
        };
        if !commit {
            return;
        }
        for offset in staged {
            let group = self.get_or_create(shard, &offset.group);
            group
                .borrow_mut()
                .offsets
                .insert((offset.topic, offset.partition), offset.value);
        }
    }

    /// Whether a transaction not yet ended has committed an offset of `topic`-`partition`
    /// for `group` (OffsetFetch's UNSTABLE_OFFSET_COMMIT for a consumer that asks for stable
    /// offsets).
    pub fn has_pending_offset(&self, group: &str, topic: &str, partition: i32) -> bool {
        self.pending_txn
            .borrow()
            .values()
            .flatten()
            .any(|o| o.group == group && o.topic == topic && o.partition == partition)
    }

    /// Applies what a replay of offsets partition `partition` found.
    fn replayed(&self, shard: &Rc<impl GroupHost>, partition: i32, found: crate::coordinator::replay::Replayed) {
        use crate::coordinator::replay::Replayed;
        match found {
            Replayed::Record {
                key,
                value,
                transaction: None,
            } => self.apply(shard, key, value),
            Replayed::Record {
                key,
                value,
                transaction: Some(producer_id),
            } => {
                if let Some(Key::Offset {
                    group,
                    topic,
                    partition: offset_partition,
                }) = key.and_then(records::decode_key)
                {
                    if let Some(value) = value.and_then(records::decode_offset_value) {
                        let staged = PendingOffset {
                            group,
                            topic,
                            partition: offset_partition,
                            value,
                        };
                        self.stage_txn_offsets(partition, producer_id, vec![staged]);
                    }
                }
            }
            Replayed::Marker { producer_id, commit } => self.complete_txn(shard, partition, producer_id, commit),
        }
    }

    pub fn consumer_group(&self, id: &str) -> Option<Rc<RefCell<ConsumerGroup>>> {
        self.consumer_groups.borrow().get(id).map(|e| e.group.clone())
    }

    /// The consumer-protocol group, created with its timer if it does not exist yet.
    pub fn consumer_group_or_create(&self, id: &str) -> Rc<RefCell<ConsumerGroup>> {
        if let Some(group) = self.consumer_group(id) {
            return group;
        }
        let group = Rc::new(RefCell::new(ConsumerGroup::new(id)));
        let timer = Rc::new(Signal::default());
        let ticking = crate::runtime::spawn(run_consumer_timer(id.to_string(), group.clone(), timer.clone()));
        self.consumer_groups.borrow_mut().insert(
            id.to_string(),
            ConsumerEntry {
                group: group.clone(),
                timer,
                _ticking: ticking,
            },
        );
        group
    }

    pub fn rearm_consumer(&self, id: &str) {
        if let Some(entry) = self.consumer_groups.borrow().get(id) {
            entry.timer.notify_all();
        }
    }

    /// Ids, states and member counts of this shard's consumer-protocol groups.
    pub fn list_consumer(&self) -> Vec<(String, &'static str)> {
        self.consumer_groups
            .borrow()
            .values()
            .map(|e| {
                let g = e.group.borrow();
                (g.id.clone(), g.state())
            })
            .collect()
    }

    pub fn get(&self, id: &str) -> Option<Rc<RefCell<Group>>> {
        self.groups.borrow().get(id).map(|e| e.group.clone())
    }

    /// Why an offset commit from `member` (with its static `instance` id, if any) at
    /// `generation` (a classic generation or a consumer-protocol member epoch) is refused, if
    /// it is. A member of neither kind of group may commit only as a simple consumer
    /// (generation -1, no member id) of a group with no members.
    pub fn commit_error(
        &self,
        group_id: &str,
        member: &str,
        instance: Option<&str>,
        generation: i32,
    ) -> Option<KafkaCode> {
        if let Some(group) = self.consumer_group(group_id) {
            // Consumer-protocol members commit with their member epoch.
            if generation >= 0 || !member.is_empty() {
                return group.borrow().commit_allowed(member, generation).err();
            }
            return (!group.borrow().members.is_empty()).then_some(KafkaCode::UnknownMemberId);
        }
        match self.get(group_id) {
            Some(group) => group.borrow().commit_error(member, instance, generation),
            // No such group: only a simple (generation -1) commit creates one.
            None => (generation >= 0).then_some(KafkaCode::IllegalGeneration),
        }
    }

    /// Ids and a summary of every classic group on this shard (not the offset holders of
    /// consumer-protocol groups).
    pub fn list(&self) -> Vec<(String, String, GroupState)> {
        let consumer = self.consumer_groups.borrow();
        self.groups
            .borrow()
            .values()
            .filter(|e| !consumer.contains_key(&e.group.borrow().id))
            .map(|e| {
                let g = e.group.borrow();
                (g.id.clone(), g.protocol_type.clone().unwrap_or_default(), g.state)
            })
            .collect()
    }

    /// Wakes the group's timer after a change that may have moved a deadline earlier.
    pub fn rearm(&self, id: &str) {
        if let Some(entry) = self.groups.borrow().get(id) {
            entry.timer.notify_all();
        }
    }

    /// The group, created (Empty) with its timer if it does not exist yet.
    pub fn get_or_create(&self, shard: &Rc<impl GroupHost>, id: &str) -> Rc<RefCell<Group>> {
        if let Some(group) = self.get(id) {
            return group;
        }
        let group = Rc::new(RefCell::new(Group::new(id, now_ms())));
        let timer = Rc::new(Signal::default());
        self.groups.borrow_mut().insert(
            id.to_string(),
            Entry {
                group: group.clone(),
                timer: timer.clone(),
            },
        );
        crate::runtime::spawn_detached(run_timer(shard.clone(), id.to_string(), group.clone(), timer));
        group
    }

    /// Drops every committed offset of `topic` (just deleted) from this shard's groups,
    /// writing a tombstone for each so they stay gone after a restart.
    pub async fn forget_topic(&self, shard: &Rc<impl GroupHost>, topic: &str) {
        let groups: Vec<Rc<RefCell<Group>>> = self.groups.borrow().values().map(|e| e.group.clone()).collect();
        for group in groups {
            let (id, keys) = {
                let group = group.borrow();
                let keys: Vec<(String, i32)> = group.offsets.keys().filter(|(t, _)| t == topic).cloned().collect();
                (group.id.clone(), keys)
            };
            if keys.is_empty() {
                continue;
            }
            let tombstones = keys
                .iter()
                .map(|(t, p)| (records::offset_key(&id, t, *p), None))
                .collect();
            match super::OFFSETS.persist(shard, &id, tombstones).await {
                Ok(()) => {
                    let mut group = group.borrow_mut();
                    for key in &keys {
                        group.offsets.remove(key);
                    }
                }
                Err(code) => tracing::error!(
                    "group {}: removing the offsets of deleted topic {topic}: {code:?}",
                    crate::text::escape(&id)
                ),
            }
        }
    }

    /// DeleteGroups' rule: only a group without members goes, its offsets with it
    /// (tombstones, durable before it is forgotten).
    pub async fn delete_group(&self, shard: &Rc<impl GroupHost>, id: &str) -> Result<(), KafkaCode> {
        let group = self.get(id).ok_or(KafkaCode::GroupIdNotFound)?;
        if !group.borrow().is_empty() {
            return Err(KafkaCode::NonEmptyGroup);
        }
        let tombstones = deletion_records(&group.borrow());
        super::OFFSETS.persist(shard, id, tombstones).await?;
        self.remove(id);
        Ok(())
    }

    /// OffsetDelete's rule: a partition's committed offset goes unless a live member is still
    /// subscribed to its topic (GROUP_SUBSCRIBED_TO_TOPIC). One code per wanted partition, in
    /// order; the tombstones are durable before the offsets are forgotten.
    pub async fn delete_offsets(
        &self,
        shard: &Rc<impl GroupHost>,
        id: &str,
        wanted: &[(String, Vec<i32>)],
    ) -> Result<Vec<Vec<Option<KafkaCode>>>, KafkaCode> {
        let group = self.get(id).ok_or(KafkaCode::GroupIdNotFound)?;
        let subscribed = group.borrow().subscribed_topics();
        let mut tombstones = Vec::new();
        let codes: Vec<Vec<Option<KafkaCode>>> = wanted
            .iter()
            .map(|(topic, partitions)| {
                partitions
                    .iter()
                    .map(|&p| {
                        if subscribed.contains(topic) {
                            return Some(KafkaCode::GroupSubscribedToTopic);
                        }
                        if group.borrow().offsets.contains_key(&(topic.clone(), p)) {
                            tombstones.push((records::offset_key(id, topic, p), None));
                        }
                        None
                    })
                    .collect()
            })
            .collect();
        if !tombstones.is_empty() {
            super::OFFSETS.persist(shard, id, tombstones).await?;
            let mut group = group.borrow_mut();
            for ((topic, partitions), codes) in wanted.iter().zip(&codes) {
                for (p, code) in partitions.iter().zip(codes) {
                    if code.is_none() {
                        group.offsets.remove(&(topic.clone(), *p));
                    }
                }
            }
        }
        Ok(codes)
    }

    pub fn remove(&self, id: &str) {
        if let Some(entry) = self.groups.borrow_mut().remove(id) {
            entry.group.borrow_mut().state = GroupState::Dead;
            entry.timer.notify_all();
        }
    }

    /// Rebuilds offsets and generations from the offsets partitions this shard owns and
    /// leads (start-up).
    pub async fn load(&self, shard: &Rc<impl GroupHost>) -> Result<(), String> {
        let snapshot = shard.metadata();
        let Some(topic) = snapshot.topic(super::OFFSETS.name) else {
            return Ok(());
        };
        for partition in super::OFFSETS.owned_partitions(shard.as_ref()) {
            if shard.partition(super::OFFSETS.name, partition).is_none() {
                continue;
            }
            let epoch = topic.leader_epoch(partition).0;
            self.partitions.borrow_mut().insert(partition.0, (epoch, Load::Loading));
            super::OFFSETS
                .replay_partition(shard, partition, &mut |found| self.replayed(shard, partition.0, found))
                .await?;
            self.partitions.borrow_mut().insert(partition.0, (epoch, Load::Loaded));
        }
        Ok(())
    }

    /// Whether this coordinator serves the groups of offsets partition `partition`:
    /// NOT_COORDINATOR if not, COORDINATOR_LOAD_IN_PROGRESS while it replays them.
    pub fn readiness(&self, partition: i32) -> Result<(), KafkaCode> {
        match self.partitions.borrow().get(&partition) {
            Some((_, Load::Loaded)) => Ok(()),
            Some((_, Load::Loading)) => Err(KafkaCode::CoordinatorLoadInProgress),
            None => Err(KafkaCode::NotCoordinator),
        }
    }

    /// Follows leadership of the offsets partitions (a cluster): `led` are the ones this
    /// shard owns and its broker leads, with their leader epochs, out of `count`. Groups of a
    /// partition no longer led (or led again at a new epoch: others wrote it meanwhile) are
    /// dropped; a newly led partition is replayed, its groups refused as loading until done.
    pub async fn follow_leadership(&self, shard: &Rc<impl GroupHost>, led: &[(i32, i32)], count: i32) {
        let gone: Vec<i32> = self
            .partitions
            .borrow()
            .iter()
            .filter(|(p, (epoch, _))| !led.contains(&(**p, *epoch)))
            .map(|(p, _)| *p)
            .collect();
        for partition in gone {
            self.unload(partition, count);
        }
        for &(partition, epoch) in led {
            if self.partitions.borrow().contains_key(&partition) {
                continue;
            }
            self.partitions.borrow_mut().insert(partition, (epoch, Load::Loading));
            let replayed = super::OFFSETS
                .replay_partition(shard, crate::ids::PartitionId(partition), &mut |found| {
                    self.replayed(shard, partition, found)
                })
                .await;
            match replayed {
                Ok(_) => {
                    tracing::info!(
                        target: "sluice::group",
                        "{}-{partition}: coordinating its groups (leader epoch {epoch})",
                        super::OFFSETS.name
                    );
                    self.partitions.borrow_mut().insert(partition, (epoch, Load::Loaded));
                }
                Err(e) => {
                    // Left unloaded (NOT_COORDINATOR); the next metadata change tries again.
                    tracing::error!("loading the groups of {}-{partition}: {e}", super::OFFSETS.name);
                    self.unload(partition, count);
                }
            }
        }
    }

    /// Forgets the groups of offsets partition `partition` (of `count`): their members and
    /// timers stop here; their state stays in the partition for whoever leads it next.
    fn unload(&self, partition: i32, count: i32) {
        self.partitions.borrow_mut().remove(&partition);
        self.pending_txn.borrow_mut().retain(|(p, _), _| *p != partition);
        let belongs = |id: &str| crate::coordinator::route::partition_for(id, count) == partition;
        let classic: Vec<String> = self.groups.borrow().keys().filter(|id| belongs(id)).cloned().collect();
        for id in &classic {
            self.remove(id);
        }
        self.consumer_groups.borrow_mut().retain(|id, _| !belongs(id));
        if !classic.is_empty() {
            tracing::info!(
                target: "sluice::group",
                "{}-{partition}: no longer coordinating its {} groups",
                super::OFFSETS.name,
                classic.len()
            );
        }
    }

    /// Applies one replayed record.
    fn apply(&self, shard: &Rc<impl GroupHost>, key: Option<Bytes>, value: Option<Bytes>) {
        let Some(key) = key.and_then(records::decode_key) else {
            return;
        };
        match key {
            Key::Offset {
                group,
                topic,
                partition,
            } => {
                let entry = self.get_or_create(shard, &group);
                let mut entry = entry.borrow_mut();
                match value.and_then(records::decode_offset_value) {
                    Some(value) => {
                        entry.offsets.insert((topic, partition), value);
                    }
                    None => {
                        entry.offsets.remove(&(topic, partition));
                    }
                }
            }
            Key::Group { group } => match value.and_then(records::decode_group_value) {
                Some(value) => {
                    let entry = self.get_or_create(shard, &group);
                    let mut entry = entry.borrow_mut();
                    entry.generation = value.generation;
                    entry.protocol_type = Some(value.protocol_type);
                }
                None => {
                    // A tombstone deletes the group once its offsets are gone too.
                    if self.get(&group).is_some_and(|g| g.borrow().offsets.is_empty()) {
                        self.remove(&group);
                    }
                }
            },
        }
    }

    /// Offsets retention (`offsets.retention.minutes`): a group that has members keeps its
    /// offsets; an empty group loses them that long after it became empty, and a group that
    /// never had members (standalone consumers committing directly) that long after its last
    /// commit. Consumer-protocol groups keep theirs while they have members.
    fn retention_deadline(&self, group: &Group) -> Option<i64> {
        if group.state != GroupState::Empty {
            return None;
        }
        if self
            .consumer_group(&group.id)
            .is_some_and(|g| !g.borrow().members.is_empty())
        {
            return None;
        }
        let since = if group.protocol_type.is_none() {
            group
                .offsets
                .values()
                .map(|o| o.commit_timestamp_ms)
                .max()
                .unwrap_or(group.empty_since_ms)
        } else {
            group.empty_since_ms
        };
        Some(since + self.offsets_retention.as_millis() as i64)
    }
}

/// The record marking a completed generation.
pub fn group_record(group: &Group) -> StateRecord {
    let value = GroupValue {
        protocol_type: group.protocol_type.clone().unwrap_or_default(),
        generation: group.generation,
        protocol: group.protocol.clone(),
        leader: group.leader.clone(),
        state_timestamp_ms: now_ms(),
    };
    (records::group_key(&group.id), Some(records::group_value(&value)))
}

pub fn offset_record(group: &str, topic: &str, partition: i32, value: &OffsetValue) -> StateRecord {
    (
        records::offset_key(group, topic, partition),
        Some(records::offset_value(value)),
    )
}

/// Tombstones for every offset of a group and for the group itself.
pub fn deletion_records(group: &Group) -> Vec<StateRecord> {
    let mut out: Vec<StateRecord> = group
        .offsets
        .keys()
        .map(|(topic, partition)| (records::offset_key(&group.id, topic, *partition), None))
        .collect();
    out.push((records::group_key(&group.id), None));
    out
}

/// Drives one group's deadlines: session expiry, rebalance and sync timeouts, offset
/// retention. It sleeps until the next deadline or until the group re-arms it, and ends with
/// the group. [`Group::tick`] leaves no deadline due, so the sleep is never zero: a timer
/// that is already due completes without yielding, and a loop on it would stall the shard.
async fn run_timer(shard: Rc<impl GroupHost>, id: String, group: Rc<RefCell<Group>>, timer: Rc<Signal>) {
    loop {
        if group.borrow().state == GroupState::Dead {
            return;
        }
        let rearmed = timer.wait();
        let coordinator = shard.groups();
        let retention_ms = coordinator.retention_deadline(&group.borrow());
        let next = group.borrow().next_deadline();
        let mut sleep_for = next.map(|d| d.saturating_duration_since(Instant::now()));
        if let Some(expiry_ms) = retention_ms {
            let until = Duration::from_millis((expiry_ms - now_ms()).max(0) as u64);
            sleep_for = Some(sleep_for.map_or(until, |s| s.min(until)));
        }
        match sleep_for {
            Some(duration) => {
                futures::future::select(rearmed, Box::pin(crate::runtime::sleep(duration))).await;
            }
            None => {
                let _ = rearmed.await;
            }
        }
        if group.borrow().state == GroupState::Dead {
            return;
        }
        let changed = group.borrow_mut().tick(Instant::now(), now_ms(), &coordinator.limits);
        if changed {
            tracing::debug!(
                "group {id}: now {} generation {}",
                group.borrow().state.name(),
                group.borrow().generation
            );
        }
        let expired = coordinator
            .retention_deadline(&group.borrow())
            .is_some_and(|deadline| now_ms() >= deadline);
        if expired {
            let tombstones = deletion_records(&group.borrow());
            tracing::info!(
                "group {}: empty past offsets.retention.minutes, expiring its offsets",
                crate::text::escape(&id)
            );
            match super::OFFSETS.persist(&shard, &id, tombstones).await {
                Ok(()) => {
                    coordinator.remove(&id);
                    return;
                }
                Err(code) => {
                    tracing::warn!(
                        "group {}: writing the tombstones of its expired offsets: {code:?}; retrying",
                        crate::text::escape(&id)
                    );
                    crate::runtime::sleep(RETENTION_RETRY_DELAY).await;
                }
            }
        }
    }
}

/// Drives a consumer-protocol group's deadlines: members whose session expired, or who did
/// not release partitions within their rebalance timeout, are removed.
async fn run_consumer_timer(id: String, group: Rc<RefCell<ConsumerGroup>>, timer: Rc<Signal>) {
    loop {
        let rearmed = timer.wait();
        let next = group.borrow().next_deadline();
        match next {
            Some(deadline) => {
                let sleep = crate::runtime::sleep(deadline.saturating_duration_since(Instant::now()));
                futures::future::select(rearmed, Box::pin(sleep)).await;
            }
            None => {
                let _ = rearmed.await;
            }
        }
        for member in group.borrow_mut().tick(Instant::now()) {
            tracing::info!(
                target: "sluice::group",
                "group {}: member {} removed (session or release timeout)",
                crate::text::escape(&id),
                crate::text::escape(&member)
            );
        }
    }
}
