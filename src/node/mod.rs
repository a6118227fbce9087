//! The node: one broker process and the per-shard context its handlers receive.
//!
//! [`startup`] starts one pinned executor per configured CPU (see `runtime/`); each runs one
//! [`Shard`], which owns the partitions [`placement`] assigns to it (its [`registry`]), the
//! groups whose offsets partition it owns, and the connections it accepted. Shards share
//! nothing mutable. Work for a partition owned elsewhere crosses the mesh as one boxed job
//! per (request, target shard) via [`Shard::invoke_on`]; the job runs on the owner and
//! answers through a oneshot. [`maintenance`] runs each shard's background timers.
//!
//! Shard 0 is the metadata authority: it alone changes topics, then hands every shard the new
//! immutable snapshot with [`Shard::publish`].

pub mod authority;
pub mod cluster_authority;
pub mod cluster_view;
pub mod coordination;
pub mod maintenance;
pub mod partition_map;
pub mod placement;
pub mod registry;
pub mod startup;
pub mod transactions;

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::future::Future;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::cluster::ClusterHandle;
use crate::config::ServerConfig;
use crate::coordinator::CoordinatorHost;
use crate::group::classic::GroupLimits;
use crate::group::{GroupCoordinator, GroupHost};
use crate::ids::{NodeId, Offset, PartitionId, ShardId, TopicId};
use crate::metadata::{MetadataSnapshot, MetadataStore};
use crate::metrics::{ShardMetrics, Snapshot};
use crate::runtime::mesh::{Mesh, OnShard};
use crate::runtime::Semaphore;
use crate::storage::cache::CacheBudget;
use crate::storage::log::PartitionLog;
use partition_map::PartitionMap;

pub use crate::runtime::mesh::ShardUnavailable;

/// A unit of work sent to another shard.
pub type Job = crate::runtime::mesh::Job<Shard>;

/// What clients are told about this broker.
#[derive(Debug, Clone)]
pub struct BrokerIdentity {
    pub node_id: NodeId,
    /// The address clients are told to connect to on the first listener (the one other
    /// brokers use).
    pub host: String,
    pub port: u16,
    /// The address the first listener is bound to.
    pub listen: std::net::SocketAddr,
    /// Every listener, the first one first.
    pub listeners: Vec<BoundListener>,
}

/// One listener this broker serves.
#[derive(Clone, Debug)]
pub struct BoundListener {
    pub name: String,
    pub protocol: crate::config::SecurityProtocol,
    /// Where it is bound.
    pub addr: std::net::SocketAddr,
    /// What clients that come in on it are told to connect to.
    pub advertised_host: String,
    pub advertised_port: u16,
    /// The TLS side of an SSL or SASL_SSL listener.
    pub tls: Option<std::sync::Arc<rustls::ServerConfig>>,
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
    mesh: Mesh<Shard>,
    pub authority: Option<Authority>,
    closing: Cell<bool>,
    /// The byte budget all this shard's partition caches share.
    cache_budget: Rc<CacheBudget>,
    /// The groups coordinated here (those whose offsets partition this shard owns).
    pub groups: GroupCoordinator,
    /// The transactional ids coordinated here (those whose state partition this shard owns
    /// and this broker leads).
    pub transactions: crate::txn::TxnCoordinator,
    /// Producer ids this shard may still hand out (a block from the metadata authority).
    pub producer_ids: RefCell<std::ops::Range<i64>>,
    /// This shard's counters; read by scrapes through [`Shard::metrics_snapshot`].
    pub metrics: Rc<ShardMetrics>,
    /// Bytes read from disk for fetches being answered (`fetch.read.memory.bytes`).
    pub fetch_read_budget: Rc<Semaphore>,
    /// The link to the controller quorum, in cluster mode.
    pub cluster: Option<ClusterHandle>,
    /// Each follower's progress on the partitions this shard leads (the ISR is decided from
    /// it; see `replication/`).
    pub followers: RefCell<PartitionMap<BTreeMap<i32, FollowerProgress>>>,
    /// The size of a smaller ISR this shard, as leader, has found and asked the controller
    /// for, while the metadata does not show it yet (see [`Shard::in_sync_replicas`]).
    pub isr_shrinking: RefCell<PartitionMap<usize>>,
    /// Fires after every metadata snapshot this shard applies.
    pub metadata_changed: crate::signal::Signal,
}

/// What a leader knows of one follower of a partition.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FollowerProgress {
    /// It holds everything before this offset.
    pub fetch_offset: Offset,
    pub last_fetch: Instant,
    /// The last time it had everything the leader had (Kafka's lastCaughtUpTime).
    pub caught_up_at: Instant,
    /// The leader's log end when it last answered this follower.
    pub leader_end_at_last_fetch: Offset,
}

/// A broker as Metadata and DescribeCluster list it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BrokerAddress {
    pub id: NodeId,
    pub host: String,
    pub port: u16,
}

impl Shard {
    pub fn new(
        mesh: Mesh<Shard>,
        config: Arc<ServerConfig>,
        identity: Arc<BrokerIdentity>,
        snapshot: Arc<MetadataSnapshot>,
        store: Option<MetadataStore>,
        cluster: Option<ClusterHandle>,
    ) -> Shard {
        let config_cache_bytes = config.batch_cache_bytes;
        let fetch_read_budget = Rc::new(Semaphore::new(config.fetch_read_memory_bytes));
        let limits = GroupLimits {
            initial_rebalance_delay: std::time::Duration::from_millis(config.group_initial_rebalance_delay_ms),
            min_session_timeout: std::time::Duration::from_millis(config.group_min_session_timeout_ms),
            max_session_timeout: std::time::Duration::from_millis(config.group_max_session_timeout_ms),
        };
        let offsets_retention = std::time::Duration::from_secs(config.offsets_retention_minutes as u64 * 60);
        Shard {
            groups: GroupCoordinator::new(limits, offsets_retention),
            transactions: crate::txn::TxnCoordinator::new(crate::txn::TxnSettings {
                max_timeout_ms: config.transaction_max_timeout_ms,
                id_expiration_ms: config.transactional_id_expiration_ms,
                cleanup_interval: std::time::Duration::from_millis(config.transaction_cleanup_interval_ms),
            }),
            id: mesh.id(),
            count: mesh.peers(),
            config,
            identity,
            metadata: RefCell::new(snapshot),
            partitions: RefCell::default(),
            offline: RefCell::default(),
            offline_anywhere: RefCell::default(),
            mesh,
            authority: store.map(|store| Authority {
                store: RefCell::new(store),
                lock: Semaphore::new(1),
            }),
            closing: Cell::new(false),
            cache_budget: CacheBudget::new(usize::try_from(config_cache_bytes).unwrap_or(usize::MAX)),
            producer_ids: RefCell::new(0..0),
            metrics: Rc::new(ShardMetrics::default()),
            fetch_read_budget,
            cluster,
            followers: RefCell::default(),
            isr_shrinking: RefCell::default(),
            metadata_changed: crate::signal::Signal::default(),
        }
    }

    /// Records that `follower` fetched `log` from `offset`: it caught up if it asked from the
    /// leader's end now, or from where the leader's end was at its previous fetch (it then
    /// had everything up to that fetch).
    pub fn follower_fetched(&self, log: &PartitionLog, follower: i32, offset: Offset) {
        let now = Instant::now();
        let end = log.end_offset();
        let mut followers = self.followers.borrow_mut();
        let key = (TopicId(log.topic_id), log.partition);
        if !followers.contains(key.0, key.1) {
            followers.insert(key.0, key.1, BTreeMap::new());
        }
        let Some(progress) = followers.get_mut(key.0, key.1) else {
            return;
        };
        let entry = progress.entry(follower).or_insert(FollowerProgress {
            fetch_offset: offset,
            last_fetch: now,
            caught_up_at: now - Duration::from_secs(3600),
            leader_end_at_last_fetch: end,
        });
        if offset >= end {
            entry.caught_up_at = now;
        } else if offset >= entry.leader_end_at_last_fetch {
            entry.caught_up_at = entry.last_fetch;
        }
        entry.fetch_offset = offset;
        entry.last_fetch = now;
        entry.leader_end_at_last_fetch = end;
    }

    /// How many replicas of a partition this shard leads count as in sync for
    /// `min.insync.replicas`: the metadata's ISR, or fewer while a shrink is pending. When the
    /// controller cannot take the shrink (its quorum lost), acks=all is refused at once
    /// instead of waiting on a replica that is gone.
    pub fn in_sync_replicas(&self, topic: &crate::metadata::Topic, partition: PartitionId) -> usize {
        let isr = topic.partition(partition).map_or(0, |p| p.isr.len());
        let shrinking = self
            .isr_shrinking
            .borrow()
            .get(TopicId(topic.meta.id), partition)
            .copied();
        shrinking.map_or(isr, |size| size.min(isr))
    }

    /// The brokers as clients that came in on listener `listener` reach them: in a cluster
    /// every unfenced registered one with that listener, else this one (on that listener).
    pub fn brokers_on(&self, listener: &str) -> Vec<BrokerAddress> {
        let own = self.identity.listeners.iter().find(|l| l.name == listener);
        let here = own.map_or((self.identity.host.clone(), self.identity.port), |l| {
            (l.advertised_host.clone(), l.advertised_port)
        });
        self.brokers_where(|b| b.endpoint(listener), here)
    }

    /// The brokers as other brokers reach them (each one's first listener): in a cluster every
    /// unfenced registered one, else this one.
    pub fn brokers(&self) -> Vec<BrokerAddress> {
        let here = (self.identity.host.clone(), self.identity.port);
        self.brokers_where(|b| Some((b.host.clone(), b.port)), here)
    }

    /// Every unfenced registered broker at the address `address` picks (those it picks none
    /// for left out); on a single node this one at `here`.
    fn brokers_where(
        &self,
        address: impl Fn(&crate::cluster::image::BrokerRecord) -> Option<(String, u16)>,
        here: (String, u16),
    ) -> Vec<BrokerAddress> {
        match &self.cluster {
            Some(cluster) => cluster
                .image
                .borrow()
                .brokers
                .values()
                .filter(|b| !b.fenced)
                .filter_map(|b| {
                    let (host, port) = address(b)?;
                    Some(BrokerAddress {
                        id: NodeId(b.id),
                        host,
                        port,
                    })
                })
                .collect(),
            None => vec![BrokerAddress {
                id: self.identity.node_id,
                host: here.0,
                port: here.1,
            }],
        }
    }

    /// The active controller's node id (-1 while none is known); a single node is its own.
    pub fn controller_id(&self) -> NodeId {
        match &self.cluster {
            Some(cluster) => NodeId(cluster.controller.borrow().unwrap_or(-1)),
            None => self.identity.node_id,
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
        if target != self.id {
            ShardMetrics::add(&self.metrics.hops, 1);
        }
        self.mesh.invoke_on(self, target, job).await
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

    /// This shard's metrics for a scrape.
    pub fn metrics_snapshot(&self) -> Snapshot {
        self.metrics.gather_io();
        self.metrics.snapshot(self.id.0, self.gauges())
    }

    /// The replication gauges of this shard's partitions, and this node's standing.
    fn gauges(&self) -> crate::metrics::ShardGauges {
        let me = self.identity.node_id;
        let snapshot = self.metadata();
        let followers = self.followers.borrow();
        let mut gauges = crate::metrics::ShardGauges {
            partitions: self.partition_count() as u64,
            offline: self.offline.borrow().len() as u64,
            ..Default::default()
        };
        for log in self.open_logs() {
            let Some(state) = snapshot
                .topic_by_id(log.topic_id)
                .and_then(|t| t.partition(log.partition))
            else {
                continue;
            };
            match state.leader {
                None => gauges.offline += 1,
                Some(leader) if leader == me => {
                    gauges.leading += 1;
                    if state.isr.len() < state.replicas.len() {
                        gauges.under_replicated += 1;
                    }
                    let end = log.end_offset().0;
                    let lag = followers
                        .get(TopicId(log.topic_id), log.partition)
                        .into_iter()
                        .flat_map(|f| f.values())
                        .map(|p| (end - p.fetch_offset.0).max(0) as u64)
                        .max()
                        .unwrap_or(0);
                    gauges.follower_lag_max = gauges.follower_lag_max.max(lag);
                }
                Some(_) => {}
            }
        }
        match &self.cluster {
            Some(cluster) => {
                gauges.controller_active = u64::from(*cluster.controller.borrow() == Some(me.0));
                gauges.fenced = u64::from(cluster.state.borrow().fenced);
            }
            None => gauges.controller_active = 1,
        }
        gauges
    }

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

    /// Hands a new snapshot to every shard and waits until all have applied it.
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
}

impl GroupHost for Shard {
    fn groups(&self) -> &GroupCoordinator {
        &self.groups
    }
}

impl CoordinatorHost for Shard {
    fn metadata(&self) -> Arc<MetadataSnapshot> {
        Shard::metadata(self)
    }

    /// Only a partition this broker leads: a follower's log is written by replication alone.
    fn partition(&self, topic: &str, partition: PartitionId) -> Option<Rc<PartitionLog>> {
        self.log_for(topic, partition).ok()
    }
}

impl OnShard for Shard {
    fn shard_id(&self) -> ShardId {
        self.id
    }

    async fn on_shard<R, F, Fut>(self: &Rc<Self>, target: ShardId, work: F) -> Result<R, ShardUnavailable>
    where
        R: Send + 'static,
        F: FnOnce(Rc<Self>) -> Fut + Send + 'static,
        Fut: Future<Output = R> + 'static,
    {
        self.invoke_on(target, work).await
    }
}
