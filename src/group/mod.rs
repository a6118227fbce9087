//! Consumer groups: coordination and committed offsets.
//!
//! Group `g` is coordinated on the shard that owns partition `partition_for(g, P)` of the
//! internal, compacted `__consumer_offsets` topic ([`records::partition_for`], Kafka's own
//! mapping). Requests for a group hop once to that shard ([`on_coordinator`]); there the
//! shard's [`coordinator::GroupCoordinator`] runs the [`classic`] protocol or the broker-assigned
//! [`consumer`] protocol (KIP-848, with the [`assignor`]s) and writes
//! offsets and generations as records into that partition, from which they are rebuilt at
//! start-up. The coordinator sees its shard only through the narrow [`GroupHost`] handle.

pub mod assignor;
pub mod classic;
pub mod consumer;
pub mod coordinator;
pub mod records;

use std::future::Future;
use std::rc::Rc;
use std::sync::Arc;

use crate::error::KafkaCode;
use crate::ids::{PartitionId, ShardId};
use crate::metadata::MetadataSnapshot;
use crate::storage::log::PartitionLog;

pub use coordinator::{GroupCoordinator, OFFSETS_TOPIC};

/// What group coordination needs of the shard it runs on, and no more: the shard's id, the
/// metadata it sees, the logs of the offsets partitions it owns, its coordinator, and a hop
/// to another shard. The shard implements it; group/ knows nothing else of the shard.
pub trait GroupHost: 'static {
    fn shard_id(&self) -> ShardId;
    fn metadata(&self) -> Arc<MetadataSnapshot>;
    /// The log of `topic`-`partition` if this shard owns it.
    fn partition(&self, topic: &str, partition: PartitionId) -> Option<Rc<PartitionLog>>;
    /// This shard's group coordinator.
    fn groups(&self) -> &GroupCoordinator;
    /// Runs `work` on shard `target` with that shard's handle; Err when the shard has stopped.
    fn on_shard<R, F, Fut>(self: &Rc<Self>, target: ShardId, work: F) -> impl Future<Output = Result<R, ()>>
    where
        R: Send + 'static,
        F: FnOnce(Rc<Self>) -> Fut + Send + 'static,
        Fut: Future<Output = R> + 'static;
}

/// Runs `work` on the coordinator shard of `group`, or answers COORDINATOR_NOT_AVAILABLE
/// when the offsets topic is missing or the shard has stopped.
pub async fn on_coordinator<H, R, F, Fut>(shard: &Rc<H>, group: &str, work: F) -> Result<R, KafkaCode>
where
    H: GroupHost,
    R: Send + 'static,
    F: FnOnce(Rc<H>) -> Fut + Send + 'static,
    Fut: Future<Output = R> + 'static,
{
    let snapshot = shard.metadata();
    let topic = snapshot
        .topic(OFFSETS_TOPIC)
        .ok_or(KafkaCode::CoordinatorNotAvailable)?;
    let partition = PartitionId(records::partition_for(group, topic.partition_count()));
    let owner = topic.owner(partition).ok_or(KafkaCode::CoordinatorNotAvailable)?;
    shard
        .on_shard(owner, work)
        .await
        .map_err(|()| KafkaCode::CoordinatorNotAvailable)
}
