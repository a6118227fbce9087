//! Reads: from the recent-batch cache or from disk (up to the high watermark, whole batches,
//! CRCs checked), and timestamp lookups through the time index.

use super::*;

/// How far a read may go.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReadLimit {
    /// A consumer's: up to the high watermark.
    HighWatermark,
    /// A read_committed consumer's: up to the last stable offset.
    LastStable,
    /// A follower's: everything the leader holds.
    LogEnd,
}

impl PartitionLog {
    /// Where a read with `limit` stops now.
    pub fn read_end(&self, limit: ReadLimit) -> Offset {
        self.read_limit(limit)
    }

    fn read_limit(&self, limit: ReadLimit) -> Offset {
        match limit {
            ReadLimit::HighWatermark => self.high_watermark.get(),
            ReadLimit::LastStable => self.last_stable_offset(),
            ReadLimit::LogEnd => self.end_offset(),
        }
    }

    /// Whole batches from the one holding `offset`, at most `max_bytes` but at least one, up
    /// to the high watermark. Empty at the end of the log; OutOfRange outside it.
    pub async fn read(&self, offset: Offset, max_bytes: usize) -> Result<Vec<Stored>, ReadError> {
        self.read_upto(offset, max_bytes, ReadLimit::HighWatermark).await
    }

    /// [`PartitionLog::read`] up to `limit`.
    pub async fn read_upto(
        &self,
        offset: Offset,
        max_bytes: usize,
        limit: ReadLimit,
    ) -> Result<Vec<Stored>, ReadError> {
        let mut offset = offset;
        loop {
            let (file, path, position, end) = {
                let state = self.state.borrow();
                let log_end = state.end_offset();
                if offset < state.log_start || offset > log_end {
                    return Err(ReadError::OutOfRange {
                        offset,
                        log_start: state.log_start,
                        log_end,
                    });
                }
                let high_watermark = self.read_limit(limit);
                if offset >= high_watermark {
                    return Ok(Vec::new());
                }
                if let Some(batches) = state.cache.read(offset, max_bytes) {
                    ShardMetrics::add(&self.metrics.cache_hits, 1);
                    return Ok(batches
                        .into_iter()
                        .take_while(|b| b.header().base_offset() < high_watermark)
                        .map(Stored::Batch)
                        .collect());
                }
                let at = state.segments.partition_point(|s| s.base_offset <= offset);
                let segment = &state.segments[at.max(1) - 1];
                if offset >= segment.next_offset {
                    // A gap after this segment (compaction): continue in the next one.
                    match state.segments.get(at) {
                        Some(next) => {
                            offset = next.base_offset;
                            continue;
                        }
                        None => return Ok(Vec::new()),
                    }
                }
                let relative = (offset.0 - segment.base_offset.0) as u32;
                (
                    segment.file.clone(),
                    segment.log_path.clone(),
                    u64::from(segment.index.lookup(relative)),
                    segment.size,
                )
            };
            ShardMetrics::add(&self.metrics.cache_misses, 1);
            let read = read_from_disk(&file, &path, position, end, offset, max_bytes).await?;
            return Ok(read
                .map(|bytes| Stored::Run(below(bytes, self.read_limit(limit))))
                .into_iter()
                .collect());
        }
    }

    /// The first record at or after `timestamp`: its offset and timestamp.
    pub async fn offset_for_timestamp(&self, timestamp: i64) -> Result<Option<(Offset, i64)>, StorageError> {
        let (file, path, position, end) = {
            let state = self.state.borrow();
            let Some(segment) = state
                .segments
                .iter()
                .find(|s| s.max_timestamp.is_some_and(|(max, _)| max >= timestamp))
            else {
                return Ok(None);
            };
            let relative = segment.time_index.lookup(timestamp);
            (
                segment.file.clone(),
                segment.log_path.clone(),
                u64::from(segment.index.lookup(relative)),
                segment.size,
            )
        };
        let mut position = position;
        while position < end {
            let read = file
                .read_at(position, HEADER_BYTES)
                .await
                .ctx("read batch header", &path)?;
            let header = BatchHeader::new(&read).map_err(|e| corrupt(&path, position, e.to_string()))?;
            let total = header
                .total_bytes()
                .ok_or_else(|| corrupt(&path, position, "bad batch length".into()))?;
            if header.max_timestamp() >= timestamp {
                let batch = file.read_at(position, total).await.ctx("read batch", &path)?;
                let mut bytes = Bytes::copy_from_slice(&batch);
                let records = kafka_protocol::records::RecordBatchDecoder::decode(&mut bytes)
                    .map_err(|e| corrupt(&path, position, e.to_string()))?;
                if let Some(record) = records.records.iter().find(|r| r.timestamp >= timestamp) {
                    return Ok(Some((Offset(record.offset), record.timestamp)));
                }
            }
            position += total as u64;
        }
        Ok(None)
    }
}

/// The leading batches of `bytes` (whole batches) that start below `limit`.
pub(super) fn below(bytes: Bytes, limit: Offset) -> Bytes {
    let Ok(ranges) = record::split_batches(&bytes) else {
        return bytes;
    };
    let keep = ranges
        .iter()
        .take_while(|r| BatchHeader::new(&bytes[(*r).clone()]).is_ok_and(|h| h.base_offset() < limit))
        .last()
        .map_or(0, |r| r.end);
    bytes.slice(..keep)
}

/// Checks the CRC of every batch in `batches` (whole batches read from `path` at `position`),
/// so corruption on disk is reported instead of served.
pub(super) fn verify_crcs(batches: &[u8], path: &Path, position: u64) -> Result<(), StorageError> {
    let ranges = record::split_batches(batches).map_err(|e| corrupt(path, position, e.to_string()))?;
    for range in ranges {
        let batch = &batches[range.clone()];
        let header =
            BatchHeader::new(batch).map_err(|e| corrupt(path, position + range.start as u64, e.to_string()))?;
        if crc32c::crc32c(&batch[21..]) != header.crc() {
            return Err(corrupt(
                path,
                position + range.start as u64,
                format!("CRC mismatch in the batch at offset {}", header.base_offset()),
            ));
        }
    }
    Ok(())
}

/// Reads whole batches from `position` (at or before the batch holding `offset`) up to `end`,
/// skipping batches before `offset`; returns one contiguous run of at most `max_bytes` (but
/// at least one batch).
pub(super) async fn read_from_disk(
    file: &DmaFile,
    path: &Path,
    mut position: u64,
    end: u64,
    offset: Offset,
    max_bytes: usize,
) -> Result<Option<Bytes>, StorageError> {
    while position < end {
        let want = (max_bytes.max(FETCH_READ_BYTES_MIN) as u64).min(end - position) as usize;
        let chunk = file.read_at(position, want).await.ctx("read segment", path)?;
        let mut at = 0usize;
        let mut start = None;
        while at + HEADER_BYTES <= chunk.len() {
            let header = BatchHeader::new(&chunk[at..]).expect("length checked");
            let total = header
                .total_bytes()
                .ok_or_else(|| corrupt(path, position + at as u64, "bad batch length".into()))?;
            if start.is_none() && header.last_offset() >= offset {
                start = Some(at);
            }
            if let Some(first) = start {
                let fits = at + total <= chunk.len();
                let within_budget = at + total - first <= max_bytes;
                if !fits || (!within_budget && at > first) {
                    if at == first {
                        // The first batch alone is bigger than this read: read exactly it.
                        let whole = file
                            .read_at(position + at as u64, total)
                            .await
                            .ctx("read segment", path)?;
                        verify_crcs(&whole, path, position + at as u64)?;
                        return Ok(Some(Bytes::copy_from_slice(&whole)));
                    }
                    break;
                }
            }
            at += total;
        }
        if let Some(first) = start {
            verify_crcs(&chunk[first..at], path, position + first as u64)?;
            return Ok(Some(Bytes::copy_from_slice(&chunk[first..at])));
        }
        if at == 0 {
            return Err(corrupt(
                path,
                position,
                "no whole batch header where one was expected".into(),
            ));
        }
        if position + at as u64 > end {
            // A batch length that jumps past the log's end: never skip silently over it.
            return Err(corrupt(
                path,
                position,
                "a batch length runs past the end of the segment".into(),
            ));
        }
        position += at as u64;
    }
    Ok(None)
}
