//! Retention by time and size, and DeleteRecords: whole segments go from the front, and the
//! log start moves.

use super::*;

impl PartitionLog {
    /// Deletes the oldest closed segments while `retention.ms` or `retention.bytes` says so
    /// (only under `cleanup.policy` delete). Returns how many were deleted.
    pub async fn apply_retention(&self, now_ms: i64) -> Result<usize, StorageError> {
        let Some(_maintaining) = self.maintenance_permit().await else {
            return Ok(0);
        };
        let count = {
            let state = self.state.borrow();
            let config = self.config.borrow();
            if !config.cleanup_policy.deletes() {
                return Ok(0);
            }
            let mut total: u64 = state.segments.iter().map(|s| s.size).sum();
            let closed = &state.segments[..state.segments.len() - 1];
            let mut count = 0;
            for segment in closed {
                let expired = config.retention_ms >= 0
                    && segment
                        .max_timestamp
                        .is_some_and(|(timestamp, _)| timestamp < now_ms - config.retention_ms);
                let oversized = config.retention_bytes >= 0 && total - segment.size >= config.retention_bytes as u64;
                if !(expired || oversized) {
                    break;
                }
                total -= segment.size;
                count += 1;
            }
            count
        };
        if count > 0 {
            self.delete_segments(count, None).await?;
            tracing::info!(
                "{}-{}: retention deleted {count} segments, log now starts at {}",
                self.topic,
                self.partition,
                self.log_start_offset()
            );
        }
        Ok(count)
    }

    /// DeleteRecords: moves the log start to `offset` (-1: the high watermark), durably, and
    /// deletes the segments wholly below it. Returns the new log start.
    pub async fn delete_records(&self, offset: i64) -> Result<Offset, ReadError> {
        let high_watermark = self.high_watermark();
        let target = if offset == -1 { high_watermark } else { Offset(offset) };
        let log_start = self.log_start_offset();
        if target.0 < 0 || target > high_watermark {
            return Err(ReadError::OutOfRange {
                offset: target,
                log_start,
                log_end: high_watermark,
            });
        }
        if target <= log_start {
            return Ok(log_start);
        }
        let below = {
            let state = self.state.borrow();
            // A closed segment is wholly below the target when the next one starts at or before it.
            state
                .segments
                .windows(2)
                .take_while(|pair| pair[1].base_offset <= target)
                .count()
        };
        self.delete_segments(below, Some(target)).await?;
        Ok(self.log_start_offset())
    }

    /// Removes the `count` oldest segments (never the active one) and advances the log start
    /// to the new first segment, or to `log_start` if that is later. The new start is made
    /// durable before any file is removed.
    pub(super) async fn delete_segments(&self, count: usize, log_start: Option<Offset>) -> Result<(), StorageError> {
        let removed: Vec<Segment> = {
            let mut state = self.state.borrow_mut();
            assert!(
                count < state.segments.len(),
                "deleting the active segment of {}",
                self.dir.display()
            );
            let removed: Vec<Segment> = state.segments.drain(..count).collect();
            let first = state.segments[0].base_offset;
            state.log_start = state.log_start.max(first).max(log_start.unwrap_or(first));
            removed
        };
        let start = self.log_start_offset();
        segment::write_file_durably(&self.dir.join(LOG_START_FILE), start.0.to_string().into_bytes()).await?;
        let epochs_changed = {
            let mut epochs = self.epochs.borrow_mut();
            let before = epochs.clone();
            epochs.truncate_from_start(start);
            *epochs != before
        };
        if epochs_changed {
            self.write_epoch_checkpoint().await?;
        }
        self.aborted.borrow_mut().drop_below(start);
        let paths: Vec<PathBuf> = removed
            .iter()
            .flat_map(|s| ["log", "index", "timeindex", "txnindex"].map(|ext| s.log_path.with_extension(ext)))
            .collect();
        drop(removed);
        glommio::executor()
            .spawn_blocking(move || {
                for path in paths {
                    match std::fs::remove_file(&path) {
                        Ok(()) => {}
                        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                        Err(e) => return Err(StorageError::io("remove segment", &path, e)),
                    }
                }
                Ok(())
            })
            .await
    }
}
