//! Persisting a coordinator's records: one batch appended to the key's partition, flushed,
//! and (in a cluster) held by every in-sync replica before the change is answered.

use std::rc::Rc;

use bytes::Bytes;
use kafka_protocol::records::Compression;

use super::{CoordinatorHost, InternalTopic};
use crate::constants::COORDINATOR_REPLICATION_TIMEOUT;
use crate::error::KafkaCode;
use crate::record;
use crate::storage::log::AppendError;
use crate::storage::segment::now_ms;

/// A record of coordinator state: its key and value (None: a tombstone).
pub type StateRecord = (Bytes, Option<Bytes>);

impl InternalTopic {
    /// Appends `records` as one batch to the partition holding `key`, makes them durable and
    /// waits until the high watermark covers them (at once on a single node; in a cluster
    /// once every in-sync replica holds them, as Kafka's acks=all). NOT_COORDINATOR when this
    /// broker does not lead that partition; COORDINATOR_NOT_AVAILABLE when the replicas do
    /// not catch up within [`COORDINATOR_REPLICATION_TIMEOUT`].
    pub async fn persist(
        &self,
        host: &Rc<impl CoordinatorHost>,
        key: &str,
        records: Vec<StateRecord>,
    ) -> Result<(), KafkaCode> {
        self.persist_as(host, key, records, None).await
    }

    /// [`InternalTopic::persist`] as part of producer `(id, epoch)`'s transaction: the batch
    /// is transactional, and its records count once the transaction's commit marker follows
    /// (TxnOffsetCommit). An epoch older than the producer's is refused
    /// (INVALID_PRODUCER_EPOCH).
    pub async fn persist_as(
        &self,
        host: &Rc<impl CoordinatorHost>,
        key: &str,
        records: Vec<StateRecord>,
        transaction: Option<(i64, i16)>,
    ) -> Result<(), KafkaCode> {
        let (partition, _) = self.locate(&host.metadata(), key)?;
        let log = host.partition(self.name, partition).ok_or(KafkaCode::NotCoordinator)?;
        let now = now_ms();
        let records = records.into_iter().map(|(key, value)| (Some(key), value, now));
        let batch = match transaction {
            None => record::encode_batch(records, Compression::None),
            Some((producer_id, epoch)) => record::encode_transactional_batch(records, producer_id, epoch),
        }
        .map_err(|e| {
            tracing::error!("encoding {} records: {e}", self.name);
            KafkaCode::UnknownServerError
        })?;
        let name = self.name;
        let appended = log.append(&[batch]).await.map_err(|e| match e {
            AppendError::Closed => KafkaCode::NotCoordinator,
            AppendError::Sequence(e) => e.kafka_code(),
            e => {
                tracing::error!("appending {name} records of {}: {e}", crate::text::escape(key));
                KafkaCode::CoordinatorNotAvailable
            }
        })?;
        log.flush().await.map_err(|e| {
            tracing::error!("flushing {name} records of {}: {e}", crate::text::escape(key));
            KafkaCode::CoordinatorNotAvailable
        })?;
        match crate::runtime::timeout(
            COORDINATOR_REPLICATION_TIMEOUT,
            log.wait_high_watermark(appended.next_offset),
        )
        .await
        {
            Some(Ok(())) => Ok(()),
            // Leadership moved while the replicas caught up: the client finds the new one.
            Some(Err(_)) => Err(KafkaCode::NotCoordinator),
            None => {
                tracing::info!(
                    "{name}-{partition}: the in-sync replicas did not hold the records of {} within {:?}",
                    crate::text::escape(key),
                    COORDINATOR_REPLICATION_TIMEOUT
                );
                Err(KafkaCode::CoordinatorNotAvailable)
            }
        }
    }
}
