//! Transactions in a partition's log: writing the markers that end them, the aborted-
//! transaction index (`.txnindex` files, see [`crate::storage::txn_index`]) and what a
//! read_committed read needs of it.

use super::*;
use crate::record::Marker;
use crate::storage::producers::CompletedTxn;
use crate::storage::txn_index;

impl PartitionLog {
    /// Appends the marker that ends producer `producer_id`'s transaction here, at `epoch`
    /// (the coordinator's, which may be newer than the producer's last batch: then the old
    /// epoch is fenced from this partition). An epoch older than the producer's is refused
    /// (INVALID_PRODUCER_EPOCH). Returns once written; durability is the caller's wait.
    pub async fn append_marker(
        &self,
        producer_id: i64,
        epoch: i16,
        coordinator_epoch: i32,
        marker: Marker,
    ) -> Result<AppendOutcome, AppendError> {
        let batch = record::encode_marker(producer_id, epoch, coordinator_epoch, marker, now_ms());
        self.append(&[batch]).await
    }

    /// The aborted transactions a read of `[from, upto)` must report.
    pub fn aborted_overlapping(&self, from: Offset, upto: Offset) -> Vec<AbortedTxn> {
        self.aborted.borrow().overlapping(from, upto)
    }

    /// The aborted transactions indexed (all segments).
    pub fn aborted_count(&self) -> usize {
        self.aborted.borrow().len()
    }

    /// Whether `producer_id` has a transaction open in this partition at `epoch`.
    pub fn in_transaction_at(&self, producer_id: i64, epoch: i16) -> bool {
        self.producers.borrow().in_transaction_at(producer_id, epoch)
    }

    /// The aborts recorded in the segments' `.txnindex` files whose markers lie below `from`
    /// (and at or past the log start): what the replay from `from` does not rebuild.
    pub(super) fn load_txn_indexes(&self, from: Offset) -> Result<AbortedIndex, StorageError> {
        let paths: Vec<PathBuf> = self
            .state
            .borrow()
            .segments
            .iter()
            .map(|s| s.log_path.with_extension("txnindex"))
            .collect();
        let log_start = self.log_start_offset();
        let mut index = AbortedIndex::default();
        for path in paths {
            let bytes = match std::fs::read(&path) {
                Ok(bytes) => bytes,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(StorageError::io("read transaction index", &path, e)),
            };
            let entries = txn_index::decode(&bytes, &path)?;
            index.extend(
                entries
                    .into_iter()
                    .filter(|e| e.last_offset >= log_start && e.last_offset < from)
                    .collect(),
            );
        }
        Ok(index)
    }

    /// Writes the active segment's `.txnindex` whole (or removes it when it has no aborts):
    /// before a producer snapshot, so every abort below the snapshot is in a file.
    pub(super) async fn write_txn_indexes(&self) -> Result<(), StorageError> {
        let (path, entries) = {
            let state = self.state.borrow();
            let active = state.active();
            (
                active.log_path.with_extension("txnindex"),
                self.aborted.borrow().in_segment(active.base_offset, active.next_offset),
            )
        };
        if entries.is_empty() {
            return match std::fs::remove_file(&path) {
                Ok(()) => Ok(()),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
                Err(e) => Err(StorageError::io("remove transaction index", &path, e)),
            };
        }
        // Written aside and renamed over, so a crash leaves the old file or the new one.
        let temp = path.with_extension("txnindex.tmp");
        segment::write_file_durably(&temp, txn_index::encode(&entries)).await?;
        std::fs::rename(&temp, &path).ctx("rename transaction index", &path)?;
        segment::sync_dir(&self.dir).await
    }
}

/// Indexes a transaction that ended with an abort marker; `producers` is the state after the
/// marker, whose first unstable offset is the LSO the entry records.
pub(super) fn index_if_aborted(index: &mut AbortedIndex, producers: &ProducerState, done: CompletedTxn) {
    if done.marker != Marker::Abort {
        return;
    }
    let after = done.marker_offset.next();
    let last_stable_offset = producers
        .first_unstable_offset()
        .map_or(after, |first| first.min(after));
    index.push(AbortedTxn {
        producer_id: done.producer_id,
        first_offset: done.first_offset,
        last_offset: done.marker_offset,
        last_stable_offset,
    });
}
