//! Shards: one glommio executor pinned per configured CPU, sharing nothing mutable.
//!
//! A [`Shard`] owns the partitions placement assigns to it and the connections it accepted.
//! Work for a partition owned elsewhere crosses the channel mesh as one boxed job per
//! (request, target shard) via [`Shard::invoke_on`]; the job runs on the owner and answers
//! through a oneshot. Record bytes travel as `bytes::Bytes`, reference-counted, never copied.
//!
//! Shard 0 is the metadata authority: it alone changes topics, then hands every shard the new
//! immutable snapshot with [`Shard::publish`].

pub mod partitions;
pub mod placement;
pub mod runtime;

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::rc::Rc;
use std::sync::Arc;

use futures::channel::oneshot;
use futures::future::LocalBoxFuture;
use glommio::channels::channel_mesh::Senders;
use glommio::sync::Semaphore;

use crate::config::ServerConfig;
use crate::error::StorageError;
use crate::group::classic::GroupLimits;
use crate::group::{GroupCoordinator, GroupHost};
use crate::ids::{NodeId, PartitionId, ShardId};
use crate::metadata::{MetadataSnapshot, MetadataStore};
use crate::metrics::{ShardMetrics, Snapshot};
use crate::storage::cache::CacheBudget;
use crate::storage::log::{partition_dir, PartitionLog};
use partitions::PartitionMap;

/// Scheduler shares of the background queue; request handling runs with glommio's default
/// 1000, so maintenance gets about a tenth of a busy shard.
const BACKGROUND_SHARES: usize = 100;

/// A unit of work sent to another shard.
pub type Job = Box<dyn FnOnce(Rc<Shard>) -> LocalBoxFuture<'static, ()> + Send>;

/// The target shard has stopped (shutdown) and cannot run the job.
#[derive(Debug, thiserror::Error)]
#[error("shard {0} is not running")]
pub struct ShardUnavailable(pub ShardId);

/// What clients are told about this broker.
#[derive(Debug, Clone)]
pub struct BrokerIdentity {
    pub node_id: NodeId,
    /// The address clients are told to connect to.
    pub host: String,
    pub port: u16,
    /// The address the Kafka listener is bound to.
    pub listen: std::net::SocketAddr,
}

/// Shard 0's metadata writer and the lock that serialises changes.
pub struct Authority {
    pub store: RefCell<MetadataStore>,
    pub lock: Semaphore,
}

pub struct Shard {
    pub id: ShardId,
    pub count: usize,
    pub config: Arc<ServerConfig>,
    pub identity: Arc<BrokerIdentity>,
    metadata: RefCell<Arc<MetadataSnapshot>>,
    partitions: RefCell<PartitionMap<Rc<PartitionLog>>>,
    /// Partitions this shard owns but refuses to serve (their log is corrupt), with why.
    offline: RefCell<PartitionMap<String>>,
    /// Every shard's offline partitions, as they told this one: Metadata reports them leaderless.
    offline_anywhere: RefCell<PartitionMap<()>>,
    senders: Senders<Job>,
    pub authority: Option<Authority>,
    closing: Cell<bool>,
    /// The byte budget all this shard's partition caches share.
    cache_budget: Rc<CacheBudget>,
    /// The groups coordinated here (those whose offsets partition this shard owns).
    pub groups: GroupCoordinator,
    /// Producer ids this shard may still hand out (a block from the metadata authority).
    pub producer_ids: RefCell<std::ops::Range<i64>>,
    /// This shard's counters; read by scrapes through [`Shard::metrics_snapshot`].
    pub metrics: Rc<ShardMetrics>,
    /// Request bytes in flight across all this shard's connections (`queued.max.request.bytes`).
    pub request_memory: Rc<crate::net::request_memory::RequestMemory>,
    /// Bytes read from disk for fetches being answered (`fetch.read.memory.bytes`).
    pub fetch_read_budget: Rc<Semaphore>,
    /// The rate limit on logging connection errors.
    pub error_log: crate::net::error_log::ErrorLog,
}

impl Shard {
    pub fn new(
        senders: Senders<Job>,
        config: Arc<ServerConfig>,
        identity: Arc<BrokerIdentity>,
        snapshot: Arc<MetadataSnapshot>,
        store: Option<MetadataStore>,
    ) -> Shard {
        let config_cache_bytes = config.batch_cache_bytes;
        let request_memory = Rc::new(crate::net::request_memory::RequestMemory::new(
            config.queued_max_request_bytes,
        ));
        let fetch_read_budget = Rc::new(Semaphore::new(config.fetch_read_memory_bytes));
        let limits = GroupLimits {
            initial_rebalance_delay: std::time::Duration::from_millis(config.group_initial_rebalance_delay_ms),
            min_session_timeout: std::time::Duration::from_millis(config.group_min_session_timeout_ms),
            max_session_timeout: std::time::Duration::from_millis(config.group_max_session_timeout_ms),
        };
        let offsets_retention = std::time::Duration::from_secs(config.offsets_retention_minutes as u64 * 60);
        Shard {
            groups: GroupCoordinator::new(limits, offsets_retention),
            id: ShardId(senders.peer_id()),
            count: senders.nr_consumers(),
            config,
            identity,
            metadata: RefCell::new(snapshot),
            partitions: RefCell::default(),
            offline: RefCell::default(),
            offline_anywhere: RefCell::default(),
            senders,
            authority: store.map(|store| Authority {
                store: RefCell::new(store),
                lock: Semaphore::new(1),
            }),
            closing: Cell::new(false),
            cache_budget: CacheBudget::new(usize::try_from(config_cache_bytes).unwrap_or(usize::MAX)),
            producer_ids: RefCell::new(0..0),
            metrics: Rc::new(ShardMetrics::default()),
            request_memory,
            fetch_read_budget,
            error_log: Default::default(),
        }
    }

    /// Runs `job` on shard `target` and returns its result: directly when the target is this
    /// shard, otherwise as one message over the mesh.
    pub async fn invoke_on<R, F, Fut>(self: &Rc<Self>, target: ShardId, job: F) -> Result<R, ShardUnavailable>
    where
        R: Send + 'static,
        F: FnOnce(Rc<Shard>) -> Fut + Send + 'static,
        Fut: Future<Output = R> + 'static,
    {
        assert!(target.0 < self.count, "shard {target} out of {} shards", self.count);
        if target == self.id {
            return Ok(job(self.clone()).await);
        }
        ShardMetrics::add(&self.metrics.hops, 1);
        let (reply, answer) = oneshot::channel();
        let boxed: Job = Box::new(move |shard| {
            Box::pin(async move {
                let _ = reply.send(job(shard).await);
            })
        });
        self.senders
            .send_to(target.0, boxed)
            .await
            .map_err(|_| ShardUnavailable(target))?;
        answer.await.map_err(|_| ShardUnavailable(target))
    }

    /// Runs `job` on every shard concurrently; results in shard order.
    pub async fn invoke_on_all<R, F, Fut>(self: &Rc<Self>, job: F) -> Vec<Result<R, ShardUnavailable>>
    where
        R: Send + 'static,
        F: FnOnce(Rc<Shard>) -> Fut + Send + Clone + 'static,
        Fut: Future<Output = R> + 'static,
    {
        let calls = (0..self.count).map(|s| self.invoke_on(ShardId(s), job.clone()));
        futures::future::join_all(calls).await
    }

    pub fn metadata(&self) -> Arc<MetadataSnapshot> {
        self.metadata.borrow().clone()
    }

    pub fn is_closing(&self) -> bool {
        self.closing.get()
    }

    /// The open log of a partition this shard owns.
    pub fn partition(&self, topic: &str, partition: PartitionId) -> Option<Rc<PartitionLog>> {
        self.partitions.borrow().get(topic, partition).cloned()
    }

    /// The log a request for `topic`-`partition` should use on this shard, or the code to
    /// answer with: KAFKA_STORAGE_ERROR for a partition taken offline, NOT_LEADER_OR_FOLLOWER
    /// for one this shard does not own.
    pub fn log_for(&self, topic: &str, partition: PartitionId) -> Result<Rc<PartitionLog>, crate::error::KafkaCode> {
        if let Some(log) = self.partition(topic, partition) {
            return Ok(log);
        }
        if self.offline.borrow().contains(topic, partition) {
            return Err(crate::error::KafkaCode::KafkaStorageError);
        }
        Err(crate::error::KafkaCode::NotLeaderOrFollower)
    }

    /// Whether the partition's owner (any shard) refused its log.
    pub fn is_offline_anywhere(&self, topic: &str, partition: PartitionId) -> bool {
        self.offline_anywhere.borrow().contains(topic, partition)
    }

    /// Tells every shard (this one included) that a partition went offline.
    fn announce_offline(self: &Rc<Self>, key: (String, PartitionId)) {
        let shard = self.clone();
        glommio::spawn_local(async move {
            shard
                .invoke_on_all(move |target| async move {
                    target.offline_anywhere.borrow_mut().insert(&key.0, key.1, ());
                })
                .await;
        })
        .detach();
    }

    pub fn partition_count(&self) -> usize {
        self.partitions.borrow().len()
    }

    /// This shard's metrics for a scrape.
    pub fn metrics_snapshot(&self) -> Snapshot {
        self.metrics.gather_io();
        self.metrics.snapshot(self.id.0, self.partition_count())
    }

    /// Makes `snapshot` current on this shard: opens partitions it newly owns, updates
    /// configs, and deletes the data of partitions whose topic is gone. Opening existing
    /// partitions runs recovery, so at start-up this is the recovery of the shard's logs.
    pub async fn apply_snapshot(self: &Rc<Self>, snapshot: Arc<MetadataSnapshot>) -> Result<(), StorageError> {
        let stale: Vec<Rc<PartitionLog>> = {
            let partitions = self.partitions.borrow();
            partitions
                .values()
                .filter(|log| {
                    snapshot
                        .topic(&log.topic)
                        .is_none_or(|t| t.meta.id != log.topic_id || t.owner(log.partition) != Some(self.id))
                })
                .cloned()
                .collect()
        };
        for log in stale {
            self.partitions.borrow_mut().remove(&log.topic, log.partition);
            let deleted = snapshot.topic(&log.topic).is_none_or(|t| t.meta.id != log.topic_id);
            if deleted {
                log.delete().await?;
            } else {
                log.close().await?;
            }
        }
        for topic in snapshot.topics.values() {
            for (p, owner) in topic.meta.placement.iter().enumerate() {
                if *owner != self.id {
                    continue;
                }
                let partition = PartitionId(p as i32);
                if let Some(log) = self.partition(&topic.meta.name, partition) {
                    log.set_config(topic.config.clone());
                    continue;
                }
                if self.offline.borrow().contains(&topic.meta.name, partition) {
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
                        self.partitions.borrow_mut().insert(&topic.meta.name, partition, log);
                    }
                    Err(e @ StorageError::Corrupt { .. }) => {
                        // Refuse this partition, loudly; every other partition keeps serving.
                        tracing::error!("{}-{partition} is offline: {e}", topic.meta.name);
                        self.offline
                            .borrow_mut()
                            .insert(&topic.meta.name, partition, e.to_string());
                        self.announce_offline((topic.meta.name.clone(), partition));
                    }
                    Err(e) => return Err(e),
                }
            }
        }
        self.offline
            .borrow_mut()
            .retain_topics(|topic| snapshot.topic(topic).is_some());
        self.offline_anywhere
            .borrow_mut()
            .retain_topics(|topic| snapshot.topic(topic).is_some());
        *self.metadata.borrow_mut() = snapshot;
        Ok(())
    }

    /// Hands a new snapshot to every shard and waits until all have applied it.
    /// A consumer-protocol group's timing: its own group configs over the broker's defaults.
    pub fn group_config(&self, group: &str) -> crate::config::GroupConfig {
        let defaults = self.config.group_defaults();
        let snapshot = self.metadata();
        // Stored group configs are checked when set and again at start-up.
        crate::config::GroupConfig::resolve(&defaults, snapshot.dynamic.group(group)).unwrap_or_else(|reason| {
            debug_assert!(false, "group {group}: stored configs fail their check: {reason}");
            defaults.config
        })
    }

    pub async fn publish(self: &Rc<Self>, snapshot: Arc<MetadataSnapshot>) -> Result<(), String> {
        let results = self
            .invoke_on_all(move |shard| {
                let snapshot = snapshot.clone();
                async move { shard.apply_snapshot(snapshot).await.map_err(|e| e.to_string()) }
            })
            .await;
        for result in results {
            result.map_err(|e| e.to_string())??;
        }
        Ok(())
    }

    /// Background log maintenance, in its own low-priority task queue so it never adds latency
    /// to requests: every `log.retention.check.interval.ms`, retention on every owned log and
    /// expiry of idle idempotent producers (`producer.id.expiration.ms`); every
    /// `log.flush.offset.checkpoint.interval.ms`, each log's recovery point; every
    /// `log.cleaner.backoff.ms`, compaction of the compacted ones.
    pub fn start_background(self: &Rc<Self>) {
        let queue = glommio::executor().create_task_queue(
            glommio::Shares::Static(BACKGROUND_SHARES),
            glommio::Latency::NotImportant,
            "background",
        );
        let retention = std::time::Duration::from_millis(self.config.log_retention_check_interval_ms);
        self.every(queue, retention, |shard, log, now| async move {
            if let Err(e) = log.apply_retention(now).await {
                tracing::error!("{}-{}: retention: {e}", log.topic, log.partition);
            }
            let expired = log.expire_producers(now - shard.config.producer_id_expiration_ms);
            if expired > 0 {
                tracing::debug!("{}-{}: {expired} idle producers expired", log.topic, log.partition);
            }
        });
        let checkpoint = std::time::Duration::from_millis(self.config.log_flush_offset_checkpoint_interval_ms);
        self.every(queue, checkpoint, |_, log, _| async move {
            if let Err(e) = log.checkpoint_recovery_point().await {
                tracing::error!("{}-{}: recovery point: {e}", log.topic, log.partition);
            }
        });
        let cleaner = std::time::Duration::from_millis(self.config.log_cleaner_backoff_ms);
        self.every(queue, cleaner, |_, log, now| async move {
            if let Err(e) = log.compact(now).await {
                tracing::error!("{}-{}: compaction: {e}", log.topic, log.partition);
            }
        });
    }

    /// Runs `work` on every owned log each `interval`, in `queue`, until the shard closes.
    fn every<F, Fut>(self: &Rc<Self>, queue: glommio::TaskQueueHandle, interval: std::time::Duration, work: F)
    where
        F: Fn(Rc<Shard>, Rc<PartitionLog>, i64) -> Fut + 'static,
        Fut: Future<Output = ()>,
    {
        let shard = self.clone();
        let task = glommio::spawn_local_into(
            async move {
                loop {
                    glommio::timer::sleep(interval).await;
                    if shard.is_closing() {
                        return;
                    }
                    let logs: Vec<Rc<PartitionLog>> = shard.partitions.borrow().values().cloned().collect();
                    for log in logs {
                        work(shard.clone(), log, crate::storage::segment::now_ms()).await;
                    }
                }
            },
            queue,
        );
        match task {
            Ok(task) => {
                task.detach();
            }
            Err(e) => tracing::error!("shard {}: starting background work: {e}", self.id),
        }
    }

    /// Stops taking appends and seals every owned log, making all acknowledged data durable.
    pub async fn close_partitions(&self) {
        self.closing.set(true);
        let logs: Vec<Rc<PartitionLog>> = self.partitions.borrow().values().cloned().collect();
        for log in logs {
            if let Err(e) = log.close().await {
                tracing::error!("closing {}-{}: {e}", log.topic, log.partition);
            }
        }
    }
}

impl GroupHost for Shard {
    fn shard_id(&self) -> ShardId {
        self.id
    }

    fn metadata(&self) -> Arc<MetadataSnapshot> {
        Shard::metadata(self)
    }

    fn partition(&self, topic: &str, partition: PartitionId) -> Option<Rc<PartitionLog>> {
        Shard::partition(self, topic, partition)
    }

    fn groups(&self) -> &GroupCoordinator {
        &self.groups
    }

    async fn on_shard<R, F, Fut>(self: &Rc<Self>, target: ShardId, work: F) -> Result<R, ()>
    where
        R: Send + 'static,
        F: FnOnce(Rc<Self>) -> Fut + Send + 'static,
        Fut: Future<Output = R> + 'static,
    {
        self.invoke_on(target, work).await.map_err(|unavailable| {
            tracing::debug!("{unavailable}");
        })
    }
}
