//! The partition registry of one shard: the logs it owns and serves, the partitions it refused
//! (their log is corrupt), and which partitions any shard refused, all keyed by [`TopicId`] and
//! [`PartitionId`]. Changed only by applying a metadata snapshot; looked up on every produce
//! and fetch, by name through the shard's snapshot or by id.

use std::rc::Rc;
use std::sync::Arc;

use super::partition_map::PartitionMap;
use crate::error::{KafkaCode, StorageError};
use crate::ids::{PartitionId, TopicId};
use crate::metadata::MetadataSnapshot;
use crate::storage::log::{partition_dir, PartitionLog};

use super::Shard;

impl Shard {
    /// The id the shard's metadata gives topic `name`.
    fn topic_id(&self, name: &str) -> Option<TopicId> {
        self.metadata.borrow().topic(name).map(|t| TopicId(t.meta.id))
    }

    /// The open log of a partition this shard owns.
    pub fn partition(&self, topic: &str, partition: PartitionId) -> Option<Rc<PartitionLog>> {
        self.partition_by_id(self.topic_id(topic)?, partition)
    }

    /// The open log of a partition this shard owns, by topic id.
    pub fn partition_by_id(&self, topic: TopicId, partition: PartitionId) -> Option<Rc<PartitionLog>> {
        self.partitions.borrow().get(topic, partition).cloned()
    }

    /// The log a client's request for `topic`-`partition` should use on this shard, or the
    /// code to answer with: KAFKA_STORAGE_ERROR for a partition taken offline,
    /// NOT_LEADER_OR_FOLLOWER for one this shard does not own or this broker does not lead
    /// (a follower's log is written by replication only, and read by no client).
    pub fn log_for(&self, topic: &str, partition: PartitionId) -> Result<Rc<PartitionLog>, KafkaCode> {
        let (id, leader) = {
            let snapshot = self.metadata.borrow();
            let Some(found) = snapshot.topic(topic) else {
                return Err(KafkaCode::NotLeaderOrFollower);
            };
            let leader = found.partition(partition).and_then(|p| p.leader);
            (TopicId(found.meta.id), leader)
        };
        if let Some(log) = self.partition_by_id(id, partition) {
            if leader != Some(self.identity.node_id) {
                return Err(KafkaCode::NotLeaderOrFollower);
            }
            return Ok(log);
        }
        if self.offline.borrow().contains(id, partition) {
            return Err(KafkaCode::KafkaStorageError);
        }
        Err(KafkaCode::NotLeaderOrFollower)
    }

    /// Whether the partition's owner (any shard) refused its log.
    pub fn is_offline_anywhere(&self, topic: &str, partition: PartitionId) -> bool {
        self.topic_id(topic)
            .is_some_and(|id| self.offline_anywhere.borrow().contains(id, partition))
    }

    /// Tells every shard (this one included) that a partition went offline.
    fn announce_offline(self: &Rc<Self>, key: (TopicId, PartitionId)) {
        let shard = self.clone();
        crate::runtime::spawn_detached(async move {
            shard
                .invoke_on_all(move |target| async move {
                    target.offline_anywhere.borrow_mut().insert(key.0, key.1, ());
                })
                .await;
        });
    }

    /// Every log this shard has open.
    pub fn open_logs(&self) -> Vec<Rc<PartitionLog>> {
        self.partitions.borrow().values().cloned().collect()
    }

    pub fn partition_count(&self) -> usize {
        self.partitions.borrow().len()
    }

    /// Makes `snapshot` current on this shard: opens partitions it newly owns, updates
    /// configs, and deletes the data of partitions whose topic is gone or that this broker
    /// no longer holds a replica of. Opening existing
    /// partitions runs recovery, so at start-up this is the recovery of the shard's logs.
    pub async fn apply_snapshot(self: &Rc<Self>, snapshot: Arc<MetadataSnapshot>) -> Result<(), StorageError> {
        let stale: Vec<Rc<PartitionLog>> = {
            let partitions = self.partitions.borrow();
            partitions
                .values()
                .filter(|log| {
                    snapshot.topic(&log.topic).is_none_or(|t| {
                        t.meta.id != log.topic_id
                            || t.owner(log.partition) != Some(self.id)
                            || !t.is_replica(log.partition, self.identity.node_id)
                    })
                })
                .cloned()
                .collect()
        };
        for log in stale {
            self.partitions
                .borrow_mut()
                .remove(TopicId(log.topic_id), log.partition);
            // Gone with its topic, or moved off this broker by a reassignment.
            let deleted = snapshot
                .topic(&log.topic)
                .is_none_or(|t| t.meta.id != log.topic_id || !t.is_replica(log.partition, self.identity.node_id));
            if deleted {
                log.delete().await?;
            } else {
                log.close().await?;
            }
        }
        for topic in snapshot.topics.values() {
            let id = TopicId(topic.meta.id);
            for (p, owner) in topic.meta.placement.iter().enumerate() {
                if *owner != self.id {
                    continue;
                }
                let partition = PartitionId(p as i32);
                if !topic.is_replica(partition, self.identity.node_id) {
                    continue;
                }
                if let Some(log) = self.partition_by_id(id, partition) {
                    log.set_config(topic.config.clone());
                    let epoch = topic.leader_epoch(partition);
                    if epoch > log.leader_epoch() {
                        if let Err(e) = log.set_leader_epoch(epoch) {
                            tracing::warn!("{}-{partition}: the metadata's {e}", topic.meta.name);
                        }
                    }
                    continue;
                }
                if self.offline.borrow().contains(id, partition) {
                    continue;
                }
                let dir = partition_dir(&self.config.data_dir, &topic.meta.name, partition);
                let opened = PartitionLog::open(
                    dir,
                    &topic.meta.name,
                    partition,
                    topic.meta.id,
                    topic.config.clone(),
                    self.cache_budget.clone(),
                    self.metrics.clone(),
                )
                .await;
                match opened {
                    Ok(log) => {
                        if let Err(e) = log.set_leader_epoch(topic.leader_epoch(partition)) {
                            tracing::warn!("{}-{partition}: the metadata's {e}", topic.meta.name);
                        }
                        self.partitions.borrow_mut().insert(id, partition, log);
                    }
                    Err(e @ StorageError::Corrupt { .. }) => {
                        // Refuse this partition, loudly; every other partition keeps serving.
                        tracing::error!("{}-{partition} is offline: {e}", topic.meta.name);
                        self.offline.borrow_mut().insert(id, partition, e.to_string());
                        self.announce_offline((id, partition));
                    }
                    Err(e) => return Err(e),
                }
            }
        }
        self.offline
            .borrow_mut()
            .retain_topics(|topic| snapshot.topic_by_id(topic.0).is_some());
        self.offline_anywhere
            .borrow_mut()
            .retain_topics(|topic| snapshot.topic_by_id(topic.0).is_some());
        self.apply_leadership(&snapshot);
        *self.metadata.borrow_mut() = snapshot;
        self.metadata_changed.notify_all();
        Ok(())
    }

    /// Gives each open log the high watermark rule of its role: a leader waits for the
    /// followers in its ISR (none on a single node: its flush alone), a follower takes its
    /// leader's. Progress of followers is kept only for partitions this broker leads.
    fn apply_leadership(&self, snapshot: &MetadataSnapshot) {
        let me = self.identity.node_id;
        let mut led = PartitionMap::default();
        for log in self.partitions.borrow().values() {
            let Some(state) = snapshot
                .topic_by_id(log.topic_id)
                .and_then(|t| t.partition(log.partition))
            else {
                continue;
            };
            if state.leader == Some(me) {
                let followers: Vec<i32> = state.isr.iter().filter(|n| **n != me).map(|n| n.0).collect();
                log.lead_with(&followers);
                led.insert(TopicId(log.topic_id), log.partition, ());
            } else {
                log.follow_leader();
            }
        }
        self.followers
            .borrow_mut()
            .retain(|topic, partition| led.contains(topic, partition));
    }
}
