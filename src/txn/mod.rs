//! Transactions: the transaction coordinator.
//!
//! Transactional id `t` is coordinated on the shard owning partition `partition_for(t, P)` of
//! the internal, compacted `__transaction_state` topic ([`TRANSACTIONS`]), on the broker that
//! leads it, with the shared [`crate::coordinator`] machinery groups use: requests hop there
//! once ([`on_coordinator`]), each change is persisted there as a record before it is answered,
//! and a shard that takes the partition up replays it and finishes what it finds in flight.
//! The state machine is in [`state`], its records in [`records`], the per-shard coordinator in
//! [`coordinator`]. Writing the markers into the transaction's partitions is the host's work
//! ([`TxnHost::write_markers`]): those partitions may be led anywhere in the cluster.

pub mod coordinator;
pub mod records;
pub mod state;

use std::future::Future;
use std::rc::Rc;

use futures::future::LocalBoxFuture;

use crate::coordinator::{CoordinatorHost, InternalTopic};
use crate::error::KafkaCode;

pub use coordinator::{TxnCoordinator, TxnSettings};

/// The internal topic transaction coordinators keep their state in.
pub const TRANSACTION_STATE_TOPIC: &str = "__transaction_state";
pub const TRANSACTIONS: InternalTopic = InternalTopic {
    name: TRANSACTION_STATE_TOPIC,
};

/// The markers ending one transaction, for the partitions still without theirs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MarkerWork {
    pub producer_id: i64,
    pub epoch: i16,
    pub coordinator_epoch: i32,
    pub commit: bool,
    pub partitions: Vec<(String, i32)>,
}

/// Each partition of a [`MarkerWork`] and how its marker went (None: written and replicated).
pub type MarkerResults = Vec<((String, i32), Option<KafkaCode>)>;

/// What transaction coordination needs of the shard it runs on beyond any coordinator's.
pub trait TxnHost: CoordinatorHost + 'static {
    fn transactions(&self) -> &TxnCoordinator;
    /// A producer id never handed out before.
    fn allocate_producer_id(self: &Rc<Self>) -> LocalBoxFuture<'static, Result<i64, KafkaCode>>;
    /// Writes the markers to each partition's leader, wherever it is.
    fn write_markers(self: &Rc<Self>, work: MarkerWork) -> LocalBoxFuture<'static, MarkerResults>;
    /// The shard is stopping: background work ends.
    fn is_closing(&self) -> bool;
}

/// PRODUCER_FENCED as a client at `version` understands it: versions before `first` (the
/// API's first to know the code, KIP-588) get INVALID_PRODUCER_EPOCH instead, as Kafka answers.
pub fn fenced_code(code: KafkaCode, version: i16, first: i16) -> KafkaCode {
    if code == KafkaCode::ProducerFenced && version < first {
        KafkaCode::InvalidProducerEpoch
    } else {
        code
    }
}

/// Runs `work` on the coordinator shard of transactional id `id`: COORDINATOR_NOT_AVAILABLE
/// while the state topic is missing, NOT_COORDINATOR when this broker does not lead the id's
/// partition, COORDINATOR_LOAD_IN_PROGRESS while it is being replayed.
pub async fn on_coordinator<H, R, F, Fut>(host: &Rc<H>, id: &str, work: F) -> Result<R, KafkaCode>
where
    H: TxnHost,
    R: Send + 'static,
    F: FnOnce(Rc<H>) -> Fut + Send + 'static,
    Fut: Future<Output = R> + 'static,
{
    let (partition, _) = TRANSACTIONS.locate(&host.metadata(), id)?;
    TRANSACTIONS
        .on_owner(host, id, move |host: Rc<H>| async move {
            host.transactions().readiness(partition.0)?;
            Ok(work(host).await)
        })
        .await?
}
