//! Topic metadata: names, ids, partition counts, placement and config overrides.
//!
//! One writer, the [`MetadataStore`] on shard 0, applies changes, persists them atomically and
//! hands every shard an immutable [`MetadataSnapshot`] (an `Arc`), so lookups on the request
//! path are shard-local reads. Topic names are validated here as Kafka validates them.

pub mod configs;
pub mod topic_name;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::config::{GroupDefaults, ServerConfig, TopicConfig};
use crate::error::{KafkaCode, StorageError};
use crate::ids::{LeaderEpoch, NodeId, PartitionId, ShardId};
use crate::metadata::configs::{ConfigTarget, DynamicConfigs, Overrides};

/// A topic as persisted.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TopicMeta {
    pub name: String,
    pub id: uuid::Uuid,
    /// Owner shard of each partition, indexed by partition id.
    pub placement: Vec<ShardId>,
    /// Configs set on the topic itself; everything else comes from the server defaults.
    pub overrides: BTreeMap<String, String>,
    #[serde(default)]
    pub internal: bool,
}

/// A topic with its effective config resolved.
#[derive(Debug)]
pub struct Topic {
    pub meta: TopicMeta,
    pub config: TopicConfig,
    /// Replicas and leadership of each partition, indexed by partition id.
    pub partitions: Vec<PartitionState>,
}

/// Who holds a partition and who leads it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartitionState {
    pub replicas: Vec<NodeId>,
    pub isr: Vec<NodeId>,
    /// `None` while every in-sync replica is down.
    pub leader: Option<NodeId>,
    pub leader_epoch: LeaderEpoch,
    /// Bumped on every change of this state (the controller checks ISR changes against it).
    pub partition_epoch: i32,
}

impl PartitionState {
    /// A single node's partition: it is the only replica and leads at epoch 0, for good.
    pub fn alone(node: NodeId) -> PartitionState {
        PartitionState {
            replicas: vec![node],
            isr: vec![node],
            leader: Some(node),
            leader_epoch: LeaderEpoch(0),
            partition_epoch: 0,
        }
    }
}

impl Topic {
    pub fn partition_count(&self) -> i32 {
        self.meta.placement.len() as i32
    }

    pub fn partition(&self, partition: PartitionId) -> Option<&PartitionState> {
        usize::try_from(partition.0).ok().and_then(|p| self.partitions.get(p))
    }

    /// The partition's leader epoch as the metadata records it: what clients are told and
    /// what the partition's log stamps appends with while this broker leads it.
    pub fn leader_epoch(&self, partition: PartitionId) -> LeaderEpoch {
        self.partition(partition).map_or(LeaderEpoch(0), |p| p.leader_epoch)
    }

    /// Whether `node` holds a replica of `partition`.
    pub fn is_replica(&self, partition: PartitionId, node: NodeId) -> bool {
        self.partition(partition).is_some_and(|p| p.replicas.contains(&node))
    }

    pub fn owner(&self, partition: PartitionId) -> Option<ShardId> {
        usize::try_from(partition.0)
            .ok()
            .and_then(|p| self.meta.placement.get(p))
            .copied()
    }
}

/// An immutable view of all topics, shared by every shard.
#[derive(Debug, Default)]
pub struct MetadataSnapshot {
    pub cluster_id: String,
    /// The controller log index this view was made at (0 on a single node).
    pub version: u64,
    pub topics: BTreeMap<String, Arc<Topic>>,
    ids: HashMap<uuid::Uuid, String>,
    /// What a topic's config is before its own overrides: static, then dynamic broker configs.
    pub topic_defaults: TopicConfig,
    pub dynamic: DynamicConfigs,
}

impl MetadataSnapshot {
    /// A view of `topics`, with `topic_defaults` and `dynamic` the configs they started from.
    pub fn new(
        cluster_id: String,
        version: u64,
        topics: BTreeMap<String, Arc<Topic>>,
        topic_defaults: TopicConfig,
        dynamic: DynamicConfigs,
    ) -> MetadataSnapshot {
        let ids = topics.values().map(|t| (t.meta.id, t.meta.name.clone())).collect();
        MetadataSnapshot {
            cluster_id,
            version,
            topics,
            ids,
            topic_defaults,
            dynamic,
        }
    }

    pub fn topic(&self, name: &str) -> Option<&Arc<Topic>> {
        self.topics.get(name)
    }

    pub fn topic_by_id(&self, id: uuid::Uuid) -> Option<&Arc<Topic>> {
        self.ids.get(&id).and_then(|name| self.topics.get(name))
    }
}

/// The persisted form: `<data>/meta/cluster.json`.
#[derive(Serialize, Deserialize)]
struct PersistedMetadata {
    cluster_id: String,
    shard_count: usize,
    topics: Vec<TopicMeta>,
    /// Producer ids below this have been handed out (absent in metadata written before
    /// idempotent producers were served).
    #[serde(default)]
    producer_ids_allocated: i64,
    /// Broker and group configs changed while a broker ran.
    #[serde(default)]
    configs: DynamicConfigs,
}

/// A change refused, with the Kafka code and a message for the client.
#[derive(Debug, Clone)]
pub struct Refusal {
    pub code: KafkaCode,
    pub message: String,
}

impl Refusal {
    pub fn new(code: KafkaCode, message: impl Into<String>) -> Self {
        Refusal {
            code,
            message: message.into(),
        }
    }
}

/// The one writer of topic metadata. Lives on shard 0.
pub struct MetadataStore {
    path: PathBuf,
    /// The topic defaults of the config file.
    statics: TopicConfig,
    /// `statics` with the dynamic broker configs applied: what every topic starts from.
    defaults: TopicConfig,
    node_id: i32,
    dynamic: DynamicConfigs,
    group_defaults: GroupDefaults,
    shard_count: usize,
    cluster_id: String,
    topics: BTreeMap<String, TopicMeta>,
    producer_ids_allocated: i64,
    /// Partitions this broker may hold in all (`max.partitions`).
    partitions_max: u64,
    place: PlaceTopic,
}

/// Which shard owns each partition of a topic: `(topic id, partition count, shard count)` to
/// one owner per partition. A pure function whose results are persisted, so it must never
/// change (`node::placement::place_topic`).
pub type PlaceTopic = fn(uuid::Uuid, i32, usize) -> Vec<ShardId>;

impl MetadataStore {
    /// Loads the metadata under `data_dir`, or starts empty with a new cluster id. When the
    /// shard count changed since the last run, every partition is re-placed and the result
    /// persisted before any shard starts.
    /// `place` spreads a topic's partitions over the `shard_count` shards (node/ supplies it).
    pub fn load(
        data_dir: &Path,
        config: &ServerConfig,
        shard_count: usize,
        place: PlaceTopic,
    ) -> Result<MetadataStore, StorageError> {
        let statics = config.topic_defaults.clone();
        let dir = data_dir.join("meta");
        std::fs::create_dir_all(&dir).map_err(|e| StorageError::io("create metadata directory", &dir, e))?;
        let path = dir.join("cluster.json");
        let mut store = match std::fs::read(&path) {
            Ok(bytes) => {
                let persisted: PersistedMetadata =
                    serde_json::from_slice(&bytes).map_err(|e| StorageError::Metadata {
                        path: path.clone(),
                        reason: e.to_string(),
                    })?;
                let mut store = MetadataStore {
                    path,
                    defaults: statics.clone(),
                    statics,
                    node_id: config.node_id,
                    dynamic: persisted.configs,
                    group_defaults: config.group_defaults(),
                    shard_count: persisted.shard_count,
                    cluster_id: persisted.cluster_id,
                    topics: persisted.topics.into_iter().map(|t| (t.name.clone(), t)).collect(),
                    producer_ids_allocated: persisted.producer_ids_allocated,
                    partitions_max: crate::constants::BROKER_PARTITIONS_MAX,
                    place,
                };
                if store.shard_count != shard_count {
                    tracing::info!(
                        "shard count changed from {} to {shard_count}: re-placing partitions",
                        store.shard_count
                    );
                    store.shard_count = shard_count;
                    for topic in store.topics.values_mut() {
                        topic.placement = place(topic.id, topic.placement.len() as i32, shard_count);
                    }
                    store.persist_blocking()?;
                }
                store
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let store = MetadataStore {
                    path,
                    defaults: statics.clone(),
                    statics,
                    node_id: config.node_id,
                    dynamic: DynamicConfigs::default(),
                    group_defaults: config.group_defaults(),
                    shard_count,
                    cluster_id: new_cluster_id(),
                    topics: BTreeMap::new(),
                    producer_ids_allocated: 0,
                    partitions_max: crate::constants::BROKER_PARTITIONS_MAX,
                    place,
                };
                store.persist_blocking()?;
                store
            }
            Err(e) => return Err(StorageError::io("read metadata", &path, e)),
        };
        // Dynamic configs and overrides are validated again in case the server defaults or
        // bounds changed meanwhile.
        store.defaults = store
            .dynamic
            .topic_defaults(&store.statics, store.node_id)
            .map_err(|e| StorageError::Metadata {
                path: store.path.clone(),
                reason: format!("dynamic broker config: {e}"),
            })?;
        for (group, overrides) in &store.dynamic.groups {
            configs::check_group(&store.group_defaults, overrides).map_err(|refusal| StorageError::Metadata {
                path: store.path.clone(),
                reason: format!("group {group}: {}", refusal.message),
            })?;
        }
        for topic in store.topics.values_mut() {
            if let Err(e) = store.defaults.with_overrides(&topic.overrides) {
                return Err(StorageError::Metadata {
                    path: store.path.clone(),
                    reason: format!("topic {}: {e}", topic.name),
                });
            }
        }
        Ok(store)
    }

    /// In a cluster the controller's image is the metadata: the store takes its topics and
    /// dynamic configs (not persisted here) so that changes are planned and checked against
    /// them before they go to the controller.
    pub fn follow_cluster(&mut self, topics: impl IntoIterator<Item = TopicMeta>, dynamic: DynamicConfigs) {
        self.topics = topics.into_iter().map(|t| (t.name.clone(), t)).collect();
        match dynamic.topic_defaults(&self.statics, self.node_id) {
            Ok(defaults) => self.defaults = defaults,
            Err(e) => tracing::warn!("the cluster's dynamic broker configs: {e}; keeping the previous defaults"),
        }
        self.dynamic = dynamic;
    }

    /// Sets `max.partitions`: creating topics or partitions past it is refused. Partitions
    /// already held are kept, however many.
    pub fn set_partitions_max(&mut self, partitions_max: u64) {
        self.partitions_max = partitions_max;
    }

    /// Refuses adding `added` partitions when the broker would then hold more than
    /// `max.partitions`.
    fn check_partitions_max(&self, added: i32) -> Result<(), Refusal> {
        let held: u64 = self.topics.values().map(|t| t.placement.len() as u64).sum();
        let after = held + added.max(0) as u64;
        if after > self.partitions_max {
            return Err(Refusal::new(
                KafkaCode::PolicyViolation,
                format!(
                    "This broker holds {held} partitions; {added} more would exceed max.partitions ({}).",
                    self.partitions_max
                ),
            ));
        }
        Ok(())
    }

    pub fn snapshot(&self) -> Arc<MetadataSnapshot> {
        let topics: BTreeMap<String, Arc<Topic>> = self
            .topics
            .values()
            .map(|meta| {
                let config = self
                    .defaults
                    .with_overrides(&meta.overrides)
                    .expect("overrides are validated before they are stored");
                let node = crate::ids::NodeId(self.node_id);
                (
                    meta.name.clone(),
                    Arc::new(Topic {
                        meta: meta.clone(),
                        config,
                        partitions: vec![PartitionState::alone(node); meta.placement.len()],
                    }),
                )
            })
            .collect();
        Arc::new(MetadataSnapshot::new(
            self.cluster_id.clone(),
            0,
            topics,
            self.defaults.clone(),
            self.dynamic.clone(),
        ))
    }

    /// Checks a new topic; the meta it would have, not yet stored.
    pub fn plan_create(
        &self,
        name: &str,
        partitions: i32,
        overrides: BTreeMap<String, String>,
    ) -> Result<TopicMeta, Refusal> {
        topic_name::validate(name).map_err(|m| Refusal::new(KafkaCode::InvalidTopicException, m))?;
        if self.topics.contains_key(name) {
            return Err(Refusal::new(
                KafkaCode::TopicAlreadyExists,
                format!("Topic '{name}' already exists."),
            ));
        }
        if let Some(other) = self.topics.keys().find(|t| topic_name::collides(t, name)) {
            return Err(Refusal::new(
                KafkaCode::InvalidTopicException,
                format!("Topic '{name}' collides with existing topic '{other}': '.' and '_' are interchangeable in metric names."),
            ));
        }
        check_partition_count(partitions)?;
        self.check_partitions_max(partitions)?;
        self.defaults
            .with_overrides(&overrides)
            .map_err(|e| Refusal::new(KafkaCode::InvalidConfig, e.to_string()))?;
        let id = uuid::Uuid::new_v4();
        Ok(TopicMeta {
            name: name.to_string(),
            id,
            placement: (self.place)(id, partitions, self.shard_count),
            overrides,
            internal: false,
        })
    }

    /// Creates an internal topic (hidden from ordinary listings, refused to producers and to
    /// DeleteTopics) unless it exists; persists before any shard starts.
    pub fn ensure_internal_topic<'a>(
        &mut self,
        name: &str,
        partitions: i32,
        overrides: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<(), StorageError> {
        if self.topics.contains_key(name) {
            return Ok(());
        }
        let overrides = overrides
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let mut meta = self
            .plan_create(name, partitions, overrides)
            .map_err(|refusal| StorageError::Metadata {
                path: self.path.clone(),
                reason: format!("creating internal topic {name}: {}", refusal.message),
            })?;
        meta.internal = true;
        tracing::info!("created internal topic {name} with {partitions} partitions");
        self.topics.insert(name.to_string(), meta);
        self.persist_blocking()
    }

    /// Stores a topic planned by [`MetadataStore::plan_create`]; persist with [`MetadataStore::persist_job`].
    pub fn insert(&mut self, meta: TopicMeta) {
        self.topics.insert(meta.name.clone(), meta);
    }

    pub fn get(&self, name: &str) -> Option<&TopicMeta> {
        self.topics.get(name)
    }

    pub fn remove(&mut self, name: &str) -> Option<TopicMeta> {
        self.topics.remove(name)
    }

    /// Checks growing a topic to `count` partitions; the new placement.
    pub fn plan_partitions(&self, name: &str, count: i32) -> Result<Vec<ShardId>, Refusal> {
        let topic = self.topics.get(name).ok_or_else(|| {
            Refusal::new(
                KafkaCode::UnknownTopicOrPartition,
                format!("Topic '{name}' does not exist."),
            )
        })?;
        if topic.internal {
            return Err(Refusal::new(
                KafkaCode::InvalidRequest,
                format!("Topic {name} is internal: its partition count cannot change."),
            ));
        }
        let current = topic.placement.len() as i32;
        if count <= current {
            return Err(Refusal::new(
                KafkaCode::InvalidPartitions,
                format!(
                    "Topic currently has {current} partitions, which is higher than or equal to the requested {count}."
                ),
            ));
        }
        check_partition_count(count)?;
        self.check_partitions_max(count - current)?;
        Ok((self.place)(topic.id, count, self.shard_count))
    }

    pub fn set_placement(&mut self, name: &str, placement: Vec<ShardId>) {
        if let Some(topic) = self.topics.get_mut(name) {
            assert!(
                placement.len() >= topic.placement.len() && placement[..topic.placement.len()] == topic.placement[..],
                "placement of existing partitions of {name} must not move"
            );
            topic.placement = placement;
        }
    }

    /// The overrides `target` has now.
    pub fn overrides(&self, target: &ConfigTarget) -> Result<Overrides, Refusal> {
        Ok(match target {
            ConfigTarget::Topic(name) => self
                .topics
                .get(name)
                .ok_or_else(|| {
                    Refusal::new(
                        KafkaCode::UnknownTopicOrPartition,
                        format!("Topic '{name}' does not exist."),
                    )
                })?
                .overrides
                .clone(),
            ConfigTarget::Cluster => self.dynamic.cluster.clone(),
            ConfigTarget::Broker(node) => self.dynamic.broker(*node).cloned().unwrap_or_default(),
            ConfigTarget::Group(group) => self.dynamic.group(group).cloned().unwrap_or_default(),
        })
    }

    /// The value `key` of `target` has when `target` does not override it.
    pub fn inherited(&self, target: &ConfigTarget, key: &str) -> Option<String> {
        match target {
            ConfigTarget::Topic(_) => self.defaults.get(key),
            ConfigTarget::Cluster => self.statics.get(crate::config::topic_key_of_broker(key)?.name),
            ConfigTarget::Broker(_) => {
                let mut cluster = self.statics.clone();
                configs::apply_broker_overrides(&mut cluster, &self.dynamic.cluster).ok()?;
                cluster.get(crate::config::topic_key_of_broker(key)?.name)
            }
            ConfigTarget::Group(_) => self.group_defaults.config.get(key),
        }
    }

    /// Checks `target`'s new override set; the error names the bad key.
    pub fn check_overrides(&self, target: &ConfigTarget, overrides: &Overrides) -> Result<(), Refusal> {
        let invalid = |e: crate::error::ConfigError| Refusal::new(KafkaCode::InvalidConfig, e.to_string());
        match target {
            ConfigTarget::Topic(_) => {
                configs::check_topic_keys(overrides)?;
                self.defaults.with_overrides(overrides).map_err(invalid)?;
            }
            ConfigTarget::Cluster | ConfigTarget::Broker(_) => {
                configs::check_broker_keys(overrides)?;
                let mut dynamic = self.dynamic.clone();
                dynamic.set(target, overrides.clone());
                let defaults = dynamic.topic_defaults(&self.statics, self.node_id).map_err(invalid)?;
                for topic in self.topics.values() {
                    defaults.with_overrides(&topic.overrides).map_err(|e| {
                        Refusal::new(
                            KafkaCode::InvalidConfig,
                            format!("topic {} would be invalid: {e}", topic.name),
                        )
                    })?;
                }
            }
            ConfigTarget::Group(group) => {
                configs::check_group(&self.group_defaults, overrides)?;
                let groups = self.dynamic.groups.len() + usize::from(!self.dynamic.groups.contains_key(group));
                if !overrides.is_empty() && groups > crate::constants::GROUP_CONFIGS_MAX {
                    return Err(Refusal::new(
                        KafkaCode::PolicyViolation,
                        format!(
                            "{} groups have configs already, the most this broker keeps.",
                            crate::constants::GROUP_CONFIGS_MAX
                        ),
                    ));
                }
            }
        }
        Ok(())
    }

    /// Stores `target`'s overrides, checked by [`MetadataStore::check_overrides`].
    pub fn set_overrides(&mut self, target: &ConfigTarget, overrides: Overrides) {
        match target {
            ConfigTarget::Topic(name) => {
                if let Some(topic) = self.topics.get_mut(name) {
                    topic.overrides = overrides;
                }
            }
            _ => {
                self.dynamic.set(target, overrides);
                self.defaults = self
                    .dynamic
                    .topic_defaults(&self.statics, self.node_id)
                    .expect("dynamic configs are checked before they are stored");
            }
        }
    }

    /// Hands out the next block of `count` producer ids; persisted before use.
    pub fn allocate_producer_ids(&mut self, count: i64) -> Result<std::ops::Range<i64>, Refusal> {
        let start = self.producer_ids_allocated;
        let end = start
            .checked_add(count)
            .ok_or_else(|| Refusal::new(KafkaCode::UnknownServerError, "producer ids exhausted"))?;
        self.producer_ids_allocated = end;
        Ok(start..end)
    }

    /// Takes back the last block after its persist failed.
    pub fn unallocate_producer_ids(&mut self, block: &std::ops::Range<i64>) {
        if self.producer_ids_allocated == block.end {
            self.producer_ids_allocated = block.start;
        }
    }

    fn encode(&self) -> Vec<u8> {
        let persisted = PersistedMetadata {
            cluster_id: self.cluster_id.clone(),
            shard_count: self.shard_count,
            topics: self.topics.values().cloned().collect(),
            producer_ids_allocated: self.producer_ids_allocated,
            configs: self.dynamic.clone(),
        };
        serde_json::to_vec_pretty(&persisted).expect("metadata serializes")
    }

    /// Applies a change of the online SCRAM credentials; what they were, for an undo.
    pub fn apply_scram(
        &mut self,
        change: &configs::ScramChange,
    ) -> BTreeMap<String, BTreeMap<String, configs::StoredScram>> {
        let before = self.dynamic.scram.clone();
        self.dynamic.apply_scram(change);
        before
    }

    pub fn restore_scram(&mut self, before: BTreeMap<String, BTreeMap<String, configs::StoredScram>>) {
        self.dynamic.scram = before;
    }

    /// The dynamic configs, ACLs among them, to change in place (the caller keeps a copy
    /// to undo with).
    pub fn dynamic_mut(&mut self) -> &mut configs::DynamicConfigs {
        &mut self.dynamic
    }

    /// The current state as a write to run without borrowing the store.
    pub fn persist_job(&self) -> PersistJob {
        PersistJob {
            path: self.path.clone(),
            bytes: self.encode(),
        }
    }

    fn persist_blocking(&self) -> Result<(), StorageError> {
        write_atomically(&self.path, &self.encode())
    }
}

/// A metadata write, run on the blocking pool so the shard's reactor never waits on fsync.
pub struct PersistJob {
    path: PathBuf,
    bytes: Vec<u8>,
}

impl PersistJob {
    pub async fn run(self) -> Result<(), StorageError> {
        crate::runtime::spawn_blocking(move || write_atomically(&self.path, &self.bytes)).await
    }
}

pub fn check_partition_count(partitions: i32) -> Result<(), Refusal> {
    if !(1..=crate::constants::TOPIC_PARTITIONS_MAX).contains(&partitions) {
        return Err(Refusal::new(
            KafkaCode::InvalidPartitions,
            format!(
                "Number of partitions must be between 1 and {}, got {partitions}.",
                crate::constants::TOPIC_PARTITIONS_MAX
            ),
        ));
    }
    Ok(())
}

/// Write to a temporary file, fsync it, rename it over `path`, fsync the directory: a crash
/// leaves either the old or the new file, never a mix.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), StorageError> {
    use std::io::Write;
    let temporary = path.with_extension("tmp");
    let mut file = std::fs::File::create(&temporary).map_err(|e| StorageError::io("create", &temporary, e))?;
    file.write_all(bytes)
        .map_err(|e| StorageError::io("write", &temporary, e))?;
    file.sync_all().map_err(|e| StorageError::io("fsync", &temporary, e))?;
    std::fs::rename(&temporary, path).map_err(|e| StorageError::io("rename", path, e))?;
    let dir = path.parent().expect("metadata file has a directory");
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| StorageError::io("fsync directory", dir, e))
}

/// Kafka's cluster ids are 16 random bytes in URL-safe base64 without padding (22 chars).
pub fn new_cluster_id() -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let bits = uuid::Uuid::new_v4().as_u128();
    (0..22)
        .map(|i| ALPHABET[((bits >> (i * 6)) & 63) as usize] as char)
        .collect()
}

#[cfg(test)]
mod tests;
