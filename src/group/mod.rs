//! Consumer groups: coordination and committed offsets.
//!
//! Group `g` is coordinated on the shard that owns partition `partition_for(g, P)` of the
//! internal, compacted `__consumer_offsets` topic ([`OFFSETS`], routed, persisted and replayed
//! by the shared [`crate::coordinator`] machinery with Kafka's own mapping). Requests for a
//! group hop once to that shard ([`on_coordinator`]); there the
//! shard's [`coordinator::GroupCoordinator`] runs the [`classic`] protocol or the broker-assigned
//! [`consumer`] protocol (KIP-848, with the [`assignor`]s) and writes
//! offsets and generations as records into that partition, from which they are rebuilt at
//! start-up. The coordinator sees its shard only through the narrow [`GroupHost`] handle.
//! Group business rules (who may commit, member limits, which groups may be deleted) live
//! here, not in the handlers.

pub mod assignor;
pub mod classic;
pub mod consumer;
pub mod coordinator;
pub mod records;

use std::future::Future;
use std::rc::Rc;

use crate::coordinator::{CoordinatorHost, InternalTopic};
use crate::error::KafkaCode;

pub use coordinator::{GroupCoordinator, OFFSETS_TOPIC};

/// The internal topic groups keep their offsets and generations in.
pub const OFFSETS: InternalTopic = InternalTopic { name: OFFSETS_TOPIC };

/// What group coordination needs of the shard it runs on beyond any coordinator's: the
/// shard's group coordinator. The shard implements it; group/ knows nothing else of it.
pub trait GroupHost: CoordinatorHost {
    /// This shard's group coordinator.
    fn groups(&self) -> &GroupCoordinator;
}

/// Runs `work` on the coordinator shard of `group`, or answers COORDINATOR_NOT_AVAILABLE
/// when the offsets topic is missing or the shard has stopped, NOT_COORDINATOR when this
/// broker does not coordinate the group (it does not lead its offsets partition), and
/// COORDINATOR_LOAD_IN_PROGRESS while the group's partition is being replayed.
pub async fn on_coordinator<H, R, F, Fut>(shard: &Rc<H>, group: &str, work: F) -> Result<R, KafkaCode>
where
    H: GroupHost,
    R: Send + 'static,
    F: FnOnce(Rc<H>) -> Fut + Send + 'static,
    Fut: Future<Output = R> + 'static,
{
    let (partition, _) = OFFSETS.locate(&shard.metadata(), group)?;
    OFFSETS
        .on_owner(shard, group, move |host: Rc<H>| async move {
            host.groups().readiness(partition.0)?;
            Ok(work(host).await)
        })
        .await?
}
