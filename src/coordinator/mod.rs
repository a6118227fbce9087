//! Shared machinery for state kept in an internal, compacted partition: consumer groups in
//! `__consumer_offsets` now, transactions in `__transaction_state` next.
//!
//! A key (a group id, a transactional id) belongs to one partition of its [`InternalTopic`]
//! by Kafka's own hash ([`route::partition_for`]), and its coordinator runs on the shard that
//! owns that partition: requests hop there once ([`InternalTopic::on_owner`]). The
//! coordinator appends its state as records to that partition and flushes them before it
//! answers ([`InternalTopic::persist`]); on start-up, or when a shard gains the partition, it
//! rebuilds its state by replaying the partition ([`InternalTopic::replay`]).
//!
//! Coordinators see their shard only through [`CoordinatorHost`]; the state machines that
//! give records meaning live with each coordinator (`group/`, later `txn/`).

pub mod codec;
pub mod persist;
pub mod replay;
pub mod route;

use std::rc::Rc;
use std::sync::Arc;

use crate::ids::PartitionId;
use crate::metadata::MetadataSnapshot;
use crate::runtime::mesh::OnShard;
use crate::storage::log::PartitionLog;

/// What a coordinator needs of the shard it runs on, and no more: a hop to another shard
/// ([`OnShard`]), the metadata it sees, and the logs of the partitions it owns.
pub trait CoordinatorHost: OnShard {
    fn metadata(&self) -> Arc<MetadataSnapshot>;
    /// The log of `topic`-`partition` if this shard owns it.
    fn partition(&self, topic: &str, partition: PartitionId) -> Option<Rc<PartitionLog>>;
}

/// An internal topic whose partitions hold a coordinator's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InternalTopic {
    pub name: &'static str,
}
