//! Replaying a coordinator's partition: every record from the log start to the log end, in
//! offset order, handed to the coordinator to rebuild its state.

use std::rc::Rc;

use bytes::Bytes;
use kafka_protocol::records::RecordBatchDecoder;

use super::{CoordinatorHost, InternalTopic};
use crate::constants::COORDINATOR_REPLAY_READ_BYTES;
use crate::ids::PartitionId;
use crate::record;
use crate::storage::log::ReadLimit;

/// One thing a replay finds, in log order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Replayed {
    /// A record: its key and value, and the producer id of the transaction it belongs to
    /// (None outside transactions), whose marker decides whether it counts.
    Record {
        key: Option<Bytes>,
        value: Option<Bytes>,
        transaction: Option<i64>,
    },
    /// A transaction marker: producer `producer_id`'s records before it count (commit) or not.
    Marker { producer_id: i64, commit: bool },
}

impl InternalTopic {
    /// Replays every partition of this topic the host's shard owns (start-up); the number of
    /// records applied.
    pub async fn replay(
        &self,
        host: &Rc<impl CoordinatorHost>,
        mut apply: impl FnMut(Replayed),
    ) -> Result<usize, String> {
        let mut total = 0;
        for partition in self.owned_partitions(host.as_ref()) {
            total += self.replay_partition(host, partition, &mut apply).await?;
        }
        Ok(total)
    }

    /// Replays one partition (start-up, or a shard that just gained it): each record and
    /// marker, from the log start to the end, once each.
    pub async fn replay_partition(
        &self,
        host: &Rc<impl CoordinatorHost>,
        partition: PartitionId,
        apply: &mut impl FnMut(Replayed),
    ) -> Result<usize, String> {
        let name = self.name;
        let log = host
            .partition(name, partition)
            .ok_or_else(|| format!("{name}-{partition} is not open on its owner"))?;
        let mut offset = log.log_start_offset();
        let end = log.end_offset();
        let mut records = 0usize;
        while offset < end {
            // To the log end, not the high watermark: a broker that just took the lead may
            // not yet know the high watermark its old leader had, and everything it holds
            // is committed once its followers catch up (Kafka loads to the log end too).
            let batches = log
                .read_upto(offset, COORDINATOR_REPLAY_READ_BYTES, ReadLimit::LogEnd)
                .await
                .map_err(|e| format!("replaying {name}-{partition}: {e}"))?;
            if batches.is_empty() {
                break;
            }
            for chunk in batches {
                let chunk = chunk.contiguous();
                let ranges = record::split_batches(&chunk).map_err(|e| format!("replaying {name}-{partition}: {e}"))?;
                for range in ranges {
                    let header = record::BatchHeader::new(&chunk[range.clone()])
                        .map_err(|e| format!("replaying {name}-{partition}: {e}"))?;
                    let next = header.last_offset().next();
                    let transaction = header.is_transactional().then(|| header.producer_id());
                    if header.is_control() {
                        if header.base_offset() >= offset {
                            if let Some(end) = record::marker_of(&chunk[range.clone()]) {
                                apply(Replayed::Marker {
                                    producer_id: header.producer_id(),
                                    commit: end.marker == record::Marker::Commit,
                                });
                            }
                        }
                        offset = offset.max(next);
                        continue;
                    }
                    let mut bytes = chunk.slice(range);
                    let set = RecordBatchDecoder::decode(&mut bytes)
                        .map_err(|e| format!("decoding {name}-{partition}: {e}"))?;
                    for record in set.records.into_iter().filter(|r| r.offset >= offset.0) {
                        records += 1;
                        apply(Replayed::Record {
                            key: record.key,
                            value: record.value,
                            transaction,
                        });
                    }
                    // Progress comes from the batch header, so a batch whose last records
                    // were compacted away still moves the replay forward.
                    offset = offset.max(next);
                }
            }
        }
        if records > 0 {
            tracing::info!("{name}-{partition}: replayed {records} records");
        }
        Ok(records)
    }
}
