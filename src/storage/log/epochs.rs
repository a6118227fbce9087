//! The leader epoch: the one appends are stamped with, the cache of where each epoch began,
//! and its checkpoint file (`leader-epoch-checkpoint`, Kafka's text layout), written whole and
//! renamed into place whenever the cache changes.

use super::*;

/// A leader epoch the log cannot take.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("leader epoch {got} is below the log's epoch {current}")]
pub struct EpochBackwards {
    pub current: LeaderEpoch,
    pub got: LeaderEpoch,
}

impl PartitionLog {
    /// The epoch this log's leader appends are stamped with.
    pub fn leader_epoch(&self) -> LeaderEpoch {
        self.leader_epoch.get()
    }

    /// Where each leader epoch began, oldest first.
    pub fn epoch_entries(&self) -> Vec<(LeaderEpoch, Offset)> {
        self.epochs.borrow().entries().collect()
    }

    /// Where `epoch` ended, as OffsetForLeaderEpoch answers (see [`EpochCache::end_offset_for`]).
    /// The current leader epoch, before its first append, ends at the log end: Kafka records
    /// an epoch when leadership starts, Sluice at its first batch.
    pub fn end_offset_for_epoch(&self, epoch: LeaderEpoch) -> crate::storage::epoch_cache::EpochEnd {
        let current = self.leader_epoch();
        let epochs = self.epochs.borrow();
        if epoch == current && epochs.latest().is_none_or(|(latest, _)| latest < current) {
            return Some((current, self.end_offset()));
        }
        epochs.end_offset_for(epoch, self.end_offset())
    }

    /// Makes `epoch` the one later appends are stamped with (a leadership change). It never
    /// decreases; the cache records the epoch at its first append.
    pub fn set_leader_epoch(&self, epoch: LeaderEpoch) -> Result<(), EpochBackwards> {
        let current = self.leader_epoch.get();
        if epoch < current {
            return Err(EpochBackwards { current, got: epoch });
        }
        self.leader_epoch.set(epoch);
        Ok(())
    }

    /// Records that the batches about to be written at `start` are of `epoch`; persists the
    /// cache if that is new. Called under the append lock, before the write.
    pub(super) async fn note_epoch(&self, epoch: LeaderEpoch, start: Offset) -> Result<(), StorageError> {
        let changed = {
            let mut epochs = self.epochs.borrow_mut();
            let before = epochs.latest();
            epochs.assign(epoch, start);
            epochs.latest() != before
        };
        if epoch > self.leader_epoch.get() {
            self.leader_epoch.set(epoch);
        }
        if changed {
            self.write_epoch_checkpoint().await?;
        }
        Ok(())
    }

    /// Writes the cache to `leader-epoch-checkpoint`, atomically.
    pub(super) async fn write_epoch_checkpoint(&self) -> Result<(), StorageError> {
        let bytes = self.epochs.borrow().encode();
        let path = self.dir.join(EPOCH_CHECKPOINT_FILE);
        let temp = path.with_extension("tmp");
        segment::write_file_durably(&temp, bytes).await?;
        std::fs::rename(&temp, &path).ctx("rename leader epoch checkpoint", &path)?;
        segment::sync_dir(&self.dir).await
    }
}

/// The epoch cache of the log in `dir` spanning `[log_start, log_end)`: the checkpoint, cut to
/// that span; a log that holds records but no checkpoint (written before epochs were kept, all
/// at epoch 0) gets epoch 0 from its start. The second value says whether that differs from
/// the file, so it must be written again.
pub(super) fn load_epochs(dir: &Path, log_start: Offset, log_end: Offset) -> Result<(EpochCache, bool), StorageError> {
    let path = dir.join(EPOCH_CHECKPOINT_FILE);
    let read = match std::fs::read(&path) {
        Ok(bytes) => match EpochCache::decode(&bytes) {
            Ok(cache) => Some(cache),
            Err(reason) => {
                return Err(StorageError::Corrupt {
                    path,
                    position: 0,
                    reason: format!("leader epoch checkpoint: {reason}"),
                })
            }
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(StorageError::io("read leader epoch checkpoint", &path, e)),
    };
    let mut cache = read.clone().unwrap_or_default();
    cache.truncate_from_end(log_end);
    cache.truncate_from_start(log_start);
    if cache.latest().is_none() && log_end > log_start {
        cache.assign(LeaderEpoch(0), log_start);
    }
    let changed = match &read {
        Some(before) => *before != cache,
        None => cache.latest().is_some(),
    };
    Ok((cache, changed))
}
