//! Driving compaction of a compacted topic's log: each sealed segment is cleaned into a
//! `.cleaned` file and swapped in (the record-level rules are in [`crate::storage::compaction`]).

use super::*;

impl PartitionLog {
    /// Compacts the closed segments (under `cleanup.policy` compact) when a segment closed
    /// since the last pass or a kept tombstone came due: keys map to their newest offsets over
    /// the closed segments, then each segment that loses records is rewritten beside itself and
    /// swapped in. Returns how many segments were rewritten.
    pub async fn compact(&self, now_ms: i64) -> Result<usize, StorageError> {
        let Some(_maintaining) = self.maintenance_permit().await else {
            return Ok(0);
        };
        let (compacting, delete_retention_ms) = {
            let config = self.config.borrow();
            let compacting = config.cleanup_policy.compacts();
            (compacting, config.delete_retention_ms.max(0))
        };
        if !compacting {
            return Ok(0);
        }
        let closed: Vec<(Offset, u64, BatchReader)> = {
            let state = self.state.borrow();
            let count = state.segments.len() - 1;
            state.segments[..count]
                .iter()
                .map(|s| {
                    let reader = BatchReader::new(s.file.clone(), s.log_path.clone(), 0, s.size);
                    (s.base_offset, s.size, reader)
                })
                .collect()
        };
        let dirty_end = self.state.borrow().active().base_offset;
        let tombstones_due = self.next_tombstone_ms.get().is_some_and(|due| now_ms >= due);
        if closed.is_empty() || (dirty_end <= self.cleaned_to.get() && !tombstones_due) {
            return Ok(0);
        }

        let mut keys = KeyMap::default();
        let mut cleanable = Vec::new();
        for (base, size, mut reader) in closed {
            while let Some((_, batches)) = reader.next_batches().await? {
                for batch in &batches {
                    keys.add_batch(batch);
                }
                glommio::yield_if_needed().await;
            }
            if keys.is_full() {
                tracing::warn!(
                    "{}-{}: compaction key map is full at segment {base}; later segments wait for the next pass",
                    self.topic,
                    self.partition
                );
                break;
            }
            cleanable.push((base, size));
        }

        let cutoff = now_ms.saturating_sub(delete_retention_ms);
        let mut next_tombstone = None;
        let mut rewritten = 0;
        let mut cleaned_to = self.cleaned_to.get();
        for (base, size) in cleanable {
            let Some(reader) = self.segment_reader(base, size) else {
                continue; // Deleted meanwhile (retention, DeleteRecords).
            };
            // A read-only pass first: most segments of a compacted log change rarely, and
            // rewriting one costs a write and two syncs.
            if !loses_records(reader, &keys, cutoff, delete_retention_ms, &mut next_tombstone).await? {
                cleaned_to = cleaned_to.max(self.segment_end(base).unwrap_or(cleaned_to));
                continue;
            }
            let Some(reader) = self.segment_reader(base, size) else {
                continue;
            };
            let cleaned = self.dir.join(format!("{:020}.{CLEANED_EXTENSION}", base.0));
            let changed = write_cleaned(
                reader,
                &cleaned,
                &keys,
                cutoff,
                delete_retention_ms,
                &mut next_tombstone,
            )
            .await?;
            if changed {
                if self.replace_segment(base, size, &cleaned).await? {
                    rewritten += 1;
                }
            } else {
                std::fs::remove_file(&cleaned).ctx("remove unneeded compacted segment", &cleaned)?;
            }
            cleaned_to = cleaned_to.max(self.segment_end(base).unwrap_or(cleaned_to));
        }
        self.cleaned_to.set(cleaned_to);
        self.next_tombstone_ms.set(next_tombstone);
        if rewritten > 0 {
            tracing::info!(
                "{}-{}: compaction rewrote {rewritten} segments ({} keys)",
                self.topic,
                self.partition,
                keys.len()
            );
        }
        Ok(rewritten)
    }

    /// A reader over the closed segment at `base` if it is still there with `size` bytes.
    pub(super) fn segment_reader(&self, base: Offset, size: u64) -> Option<BatchReader> {
        let state = self.state.borrow();
        let closed = &state.segments[..state.segments.len() - 1];
        closed
            .iter()
            .find(|s| s.base_offset == base && s.size == size)
            .map(|s| BatchReader::new(s.file.clone(), s.log_path.clone(), 0, s.size))
    }

    /// Where the segment at `base` ends: the next segment's base offset.
    pub(super) fn segment_end(&self, base: Offset) -> Option<Offset> {
        let state = self.state.borrow();
        let at = state.segments.iter().position(|s| s.base_offset == base)?;
        state.segments.get(at + 1).map(|s| s.base_offset)
    }

    /// Swaps the compacted file `cleaned` in for the closed segment at `base` (if it is still
    /// there, unchanged). The new file is scanned before the append lock is taken; under it,
    /// the old indexes are removed, the file renamed over the log and the directory synced;
    /// the new indexes are written after. A crash at any step leaves either the old or the new
    /// log, and recovery rebuilds missing indexes. Readers in flight keep reading the old file
    /// through their handle.
    pub(super) async fn replace_segment(&self, base: Offset, size: u64, cleaned: &Path) -> Result<bool, StorageError> {
        let mut segment = Segment::open_replacement(&self.dir, base, cleaned).await?;
        let seal = {
            let _permit = self.append_lock.acquire_permit(1).await.ok();
            if self.closed.get() || self.segment_reader(base, size).is_none() {
                std::fs::remove_file(cleaned).ctx("remove stale compacted segment", cleaned)?;
                return Ok(false);
            }
            for extension in ["index", "timeindex"] {
                let path = segment.log_path.with_extension(extension);
                match std::fs::remove_file(&path) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(StorageError::io("remove index of compacted segment", &path, e)),
                }
            }
            std::fs::rename(cleaned, &segment.log_path).ctx("swap in compacted segment", &segment.log_path)?;
            segment::sync_dir(&self.dir).await?;
            let seal = segment.seal_work();
            let mut state = self.state.borrow_mut();
            // Retention and DeleteRecords remove segments without the append lock: look the
            // segment up again after the await above.
            let Some(at) = state.segments.iter().position(|s| s.base_offset == base) else {
                return Ok(false);
            };
            let end = state.segments[at + 1].base_offset;
            state.segments[at] = segment;
            state.cache.forget_below(end);
            seal
        };
        seal.run().await?;
        Ok(true)
    }
}

/// Whether compaction would remove any record from the segment `reader` reads. Notes the
/// due times of the tombstones it keeps when it removes none.
pub(super) async fn loses_records(
    mut reader: BatchReader,
    keys: &KeyMap,
    tombstone_cutoff_ms: i64,
    delete_retention_ms: i64,
    next_tombstone_ms: &mut Option<i64>,
) -> Result<bool, StorageError> {
    let mut due = *next_tombstone_ms;
    while let Some((_, batches)) = reader.next_batches().await? {
        for batch in &batches {
            if clean_batch(batch, keys, tombstone_cutoff_ms, delete_retention_ms, &mut due) != Cleaned::Unchanged {
                return Ok(true);
            }
        }
        glommio::yield_if_needed().await;
    }
    *next_tombstone_ms = due;
    Ok(false)
}

/// Writes the compacted form of one segment's batches to `path` and makes it durable.
/// Returns whether any batch changed (if not, the file is not needed).
pub(super) async fn write_cleaned(
    mut reader: BatchReader,
    path: &Path,
    keys: &KeyMap,
    tombstone_cutoff_ms: i64,
    delete_retention_ms: i64,
    next_tombstone_ms: &mut Option<i64>,
) -> Result<bool, StorageError> {
    let file = glommio::io::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .buffered_open(path)
        .await
        .ctx("create compacted segment", path)?;
    let mut changed = false;
    let mut position = 0u64;
    let mut pending: Vec<u8> = Vec::with_capacity(COMPACTION_WRITE_BYTES);
    while let Some((_, batches)) = reader.next_batches().await? {
        for batch in &batches {
            match clean_batch(batch, keys, tombstone_cutoff_ms, delete_retention_ms, next_tombstone_ms) {
                Cleaned::Unchanged => pending.extend_from_slice(batch),
                Cleaned::Rebuilt(rebuilt) => {
                    changed = true;
                    pending.extend_from_slice(&rebuilt);
                }
                Cleaned::Dropped => changed = true,
            }
        }
        if pending.len() >= COMPACTION_WRITE_BYTES {
            let chunk = std::mem::replace(&mut pending, Vec::with_capacity(COMPACTION_WRITE_BYTES));
            let at = position;
            position += chunk.len() as u64;
            file.write_at(chunk, at).await.ctx("write compacted segment", path)?;
        }
        glommio::yield_if_needed().await;
    }
    if !pending.is_empty() {
        file.write_at(pending, position)
            .await
            .ctx("write compacted segment", path)?;
    }
    file.fdatasync().await.ctx("fdatasync compacted segment", path)?;
    file.close().await.ctx("close compacted segment", path)?;
    Ok(changed)
}

/// Extension of a compacted segment before it replaces the original.
pub(super) const CLEANED_EXTENSION: &str = "cleaned";

/// Removes compacted segments a crash left before they were swapped in.
pub(super) fn remove_unfinished_compaction(dir: &Path) -> Result<(), StorageError> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Ok(());
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.extension().is_some_and(|e| e == CLEANED_EXTENSION) {
            std::fs::remove_file(&path).ctx("remove unfinished compacted segment", &path)?;
        }
    }
    Ok(())
}
