//! Consumer groups: coordination and committed offsets.
//!
//! Group `g` is coordinated on the shard that owns partition `partition_for(g, P)` of the
//! internal, compacted `__consumer_offsets` topic ([`records::partition_for`], Kafka's own
//! mapping). Requests for a group hop once to that shard ([`on_coordinator`]); there the
//! shard's [`coordinator::GroupCoordinator`] runs the [`classic`] protocol or the broker-assigned
//! [`consumer`] protocol (KIP-848, with the [`assignor`]s) and writes
//! offsets and generations as records into that partition, from which they are rebuilt at
//! start-up.

pub mod assignor;
pub mod classic;
pub mod consumer;
pub mod coordinator;
pub mod records;

use std::future::Future;
use std::rc::Rc;

use crate::error::KafkaCode;
use crate::ids::PartitionId;
use crate::shard::Shard;

pub use coordinator::OFFSETS_TOPIC;

/// Runs `work` on the coordinator shard of `group`, or answers COORDINATOR_NOT_AVAILABLE
/// when the offsets topic is missing or the shard has stopped.
pub async fn on_coordinator<R, F, Fut>(shard: &Rc<Shard>, group: &str, work: F) -> Result<R, KafkaCode>
where
    R: Send + 'static,
    F: FnOnce(Rc<Shard>) -> Fut + Send + 'static,
    Fut: Future<Output = R> + 'static,
{
    let snapshot = shard.metadata();
    let topic = snapshot
        .topic(OFFSETS_TOPIC)
        .ok_or(KafkaCode::CoordinatorNotAvailable)?;
    let partition = PartitionId(records::partition_for(group, topic.partition_count()));
    let owner = topic.owner(partition).ok_or(KafkaCode::CoordinatorNotAvailable)?;
    shard
        .invoke_on(owner, work)
        .await
        .map_err(|_| KafkaCode::CoordinatorNotAvailable)
}
