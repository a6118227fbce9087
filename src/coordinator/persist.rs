//! Persisting a coordinator's records: one batch appended to the key's partition and flushed
//! before the change is answered.

use std::rc::Rc;

use bytes::Bytes;
use kafka_protocol::records::Compression;

use super::{CoordinatorHost, InternalTopic};
use crate::error::KafkaCode;
use crate::record;
use crate::storage::segment::now_ms;

/// A record of coordinator state: its key and value (None: a tombstone).
pub type StateRecord = (Bytes, Option<Bytes>);

impl InternalTopic {
    /// Appends `records` as one batch to the partition holding `key` and makes them durable.
    /// NOT_COORDINATOR when this shard does not own that partition.
    pub async fn persist(
        &self,
        host: &Rc<impl CoordinatorHost>,
        key: &str,
        records: Vec<StateRecord>,
    ) -> Result<(), KafkaCode> {
        let (partition, _) = self.locate(&host.metadata(), key)?;
        let log = host.partition(self.name, partition).ok_or(KafkaCode::NotCoordinator)?;
        let now = now_ms();
        let batch = record::encode_batch(
            records.into_iter().map(|(key, value)| (Some(key), value, now)),
            Compression::None,
        )
        .map_err(|e| {
            tracing::error!("encoding {} records: {e}", self.name);
            KafkaCode::UnknownServerError
        })?;
        let name = self.name;
        log.append(&[batch]).await.map_err(|e| {
            tracing::error!("appending {name} records of {}: {e}", crate::text::escape(key));
            KafkaCode::CoordinatorNotAvailable
        })?;
        log.flush().await.map_err(|e| {
            tracing::error!("flushing {name} records of {}: {e}", crate::text::escape(key));
            KafkaCode::CoordinatorNotAvailable
        })
    }
}
