//! Truncation: cutting the log's tail, as a follower does when its last epoch diverged from
//! its leader's. Whole batches go: the log then ends at the base of the batch that held the
//! truncation offset (replication truncates at batch boundaries, so that is the offset
//! itself), and the indexes, the cache, producer state, the epoch cache, the recovery point
//! and the high watermark follow.

use super::*;

impl PartitionLog {
    /// Removes every batch holding an offset at or past `offset`; returns the new log end. At
    /// or past the log end it changes nothing. At or below the first segment's base (or below
    /// the log start) the whole log goes and it restarts empty at `offset`, as Kafka's
    /// `truncateFullyAndStartAt`. What is left is durable when this returns, and the high
    /// watermark is at most the new end.
    pub async fn truncate_to(&self, offset: Offset) -> Result<Offset, AppendError> {
        assert!(
            offset.0 >= 0,
            "{}-{}: truncating to {offset}",
            self.topic,
            self.partition
        );
        // Background work first, then appends: the order `delete` takes them in.
        let Some(_maintaining) = self.maintenance_permit().await else {
            return Err(AppendError::Closed);
        };
        let _permit = self.append_permit().await?;
        let end = self.end_offset();
        if offset >= end {
            return Ok(end);
        }
        // Counted before and after: a flush round overlapping any part of it sees a change.
        self.truncations.set(self.truncations.get() + 1);
        let (first_base, log_start) = {
            let state = self.state.borrow();
            (state.segments[0].base_offset, state.log_start)
        };
        if offset <= first_base || offset < log_start {
            self.truncate_fully(offset).await?;
        } else {
            self.truncate_tail(offset).await?;
        }
        let new_end = self.end_offset();
        let done = self.after_truncation(new_end).await;
        self.truncations.set(self.truncations.get() + 1);
        done?;
        tracing::info!(
            "{}-{}: truncated from {end} to {new_end} (asked for {offset})",
            self.topic,
            self.partition
        );
        Ok(new_end)
    }

    /// Drops every segment and starts an empty one at `offset`, which becomes the log start.
    /// The old segments stay in place (their files unlinked but open) until the new one
    /// exists: a log always has a segment, even across the awaits.
    async fn truncate_fully(&self, offset: Offset) -> Result<(), StorageError> {
        let paths: Vec<PathBuf> = self.state.borrow().segments.iter().flat_map(segment_paths).collect();
        for path in &paths {
            remove_if_present(path)?;
        }
        let segment = Segment::create(&self.dir, offset).await?;
        let removed = {
            let mut state = self.state.borrow_mut();
            state.log_start = offset;
            std::mem::replace(&mut state.segments, vec![segment])
        };
        drop(removed);
        segment::write_file_durably(&self.dir.join(LOG_START_FILE), offset.0.to_string().into_bytes()).await
    }

    /// Cuts the segment holding `offset` before the batch holding it, drops every later
    /// segment, and reopens the cut one as the active segment (its indexes rebuilt).
    async fn truncate_tail(&self, offset: Offset) -> Result<(), StorageError> {
        let (later, kept_file, kept_path, base, start, size) = {
            let mut state = self.state.borrow_mut();
            let at = state.segments.partition_point(|s| s.base_offset <= offset);
            assert!(at >= 1, "the first segment starts at or below {offset}");
            let later: Vec<Segment> = state.segments.drain(at..).collect();
            let kept = state.segments.last().expect("one segment kept");
            let start = if offset < kept.next_offset {
                u64::from(kept.index.lookup((offset.0 - kept.base_offset.0) as u32))
            } else {
                kept.size
            };
            (
                later,
                kept.file.clone(),
                kept.log_path.clone(),
                kept.base_offset,
                start,
                kept.size,
            )
        };
        remove_segment_files(later).await?;
        let cut = cut_position(kept_file.clone(), &kept_path, start, size, offset).await?;
        if cut < size {
            kept_file.truncate(cut).await.ctx("truncate segment", &kept_path)?;
        }
        Segment::flush(&kept_file, &kept_path).await?;
        // Its index files described the cut bytes; reopening scans the segment afresh.
        for extension in ["index", "timeindex"] {
            remove_if_present(&kept_path.with_extension(extension))?;
        }
        drop(kept_file);
        let reopened = Segment::open(&self.dir, base, true, Offset(0)).await?;
        *self.state.borrow_mut().segments.last_mut().expect("one segment kept") = reopened;
        Ok(())
    }

    /// Brings everything derived from the tail in line with the new end `new_end`: the cache,
    /// the durable offset and high watermark, the recovery point, the epoch cache and the
    /// idempotent producers.
    async fn after_truncation(&self, new_end: Offset) -> Result<(), StorageError> {
        self.state.borrow_mut().cache.clear();
        // Every segment left is sealed or was flushed by the cut: all of it is durable.
        self.durable.set(new_end);
        let high_watermark = if *self.watermark.borrow() == Watermark::Durable {
            new_end
        } else {
            self.high_watermark.get().min(new_end)
        };
        self.high_watermark.set(high_watermark);
        let path = self.dir.join(RECOVERY_POINT_FILE);
        segment::write_file_durably(&path, new_end.0.to_string().into_bytes()).await?;
        self.recovery_point.set(new_end);
        self.cleaned_to.set(self.cleaned_to.get().min(new_end));
        let epochs_changed = {
            let mut epochs = self.epochs.borrow_mut();
            let before = epochs.clone();
            epochs.truncate_from_end(new_end);
            *epochs != before
        };
        if epochs_changed {
            self.write_epoch_checkpoint().await?;
        }
        // A snapshot taken past the new end describes batches that are gone.
        let snapshot = self.dir.join(PRODUCER_SNAPSHOT_FILE);
        if let Ok(bytes) = std::fs::read(&snapshot) {
            if ProducerState::decode(&bytes).is_none_or(|(at, _)| at > new_end) {
                remove_if_present(&snapshot)?;
            }
        }
        self.recover_producers().await?;
        // The kept segment's aborts past the cut are gone from memory; its file follows.
        self.write_txn_indexes().await?;
        segment::sync_dir(&self.dir).await?;
        self.signal.notify_all();
        Ok(())
    }
}

/// The file position of the first batch at or after `start` whose last offset is at or past
/// `offset` (`end` if there is none): where a truncation to `offset` cuts.
async fn cut_position(
    file: Rc<DmaFile>,
    path: &Path,
    start: u64,
    end: u64,
    offset: Offset,
) -> Result<u64, StorageError> {
    let mut reader = BatchReader::new(file, path.to_path_buf(), start, end);
    while let Some((position, batches)) = reader.next_batches().await? {
        let mut at = position;
        for batch in &batches {
            let header = BatchHeader::new(batch).expect("whole batch");
            if header.last_offset() >= offset {
                return Ok(at);
            }
            at += batch.len() as u64;
        }
    }
    Ok(end)
}

/// A segment's files: the log and its two indexes.
fn segment_paths(segment: &Segment) -> [PathBuf; 4] {
    ["log", "index", "timeindex", "txnindex"].map(|ext| segment.log_path.with_extension(ext))
}

/// Removes the files of `segments`, closing them first.
async fn remove_segment_files(segments: Vec<Segment>) -> Result<(), StorageError> {
    let paths: Vec<PathBuf> = segments.iter().flat_map(segment_paths).collect();
    drop(segments);
    for path in paths {
        remove_if_present(&path)?;
    }
    Ok(())
}

fn remove_if_present(path: &Path) -> Result<(), StorageError> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(StorageError::io("remove file", path, e)),
    }
}
