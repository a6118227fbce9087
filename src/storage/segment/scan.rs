//! Reading a segment batch by batch: the scan recovery runs over a segment's tail (every
//! batch's length, magic and CRC checked, the indexes rebuilt), the walk to a sealed segment's
//! last batch, and [`BatchReader`], which reads whole batches a large read at a time.

use std::path::{Path, PathBuf};
use std::rc::Rc;

use bytes::Bytes;
use glommio::io::DmaFile;

use super::Segment;
use crate::constants::SCAN_READ_BYTES;
use crate::error::{IoContext, StorageError};
use crate::ids::Offset;
use crate::record::{BatchHeader, HEADER_BYTES, LOG_OVERHEAD_BYTES};
use crate::storage::index::{OffsetIndex, TimeIndex};

/// Last offset of the last batch in `[start, end)` of a sealed log, walking headers.
pub(super) async fn last_batch_from(
    file: &DmaFile,
    path: &Path,
    start: u64,
    end: u64,
) -> Result<Option<Offset>, StorageError> {
    let mut position = start;
    let mut last = None;
    while position < end {
        let read = file
            .read_at(position, HEADER_BYTES.min((end - position) as usize))
            .await
            .ctx("read batch header", path)?;
        let Ok(header) = BatchHeader::new(&read) else {
            return Ok(None);
        };
        let Some(total) = header.total_bytes() else {
            return Ok(None);
        };
        last = Some(header.last_offset());
        position += total as u64;
    }
    Ok(if position == end { last } else { None })
}

/// Reads the whole batches of a sealed range of a segment, one large read at a time, so
/// callers may await (or yield) between reads.
pub struct BatchReader {
    file: Rc<DmaFile>,
    path: PathBuf,
    position: u64,
    end: u64,
}

impl BatchReader {
    /// Reads `[position, end)`, where `position` is a batch boundary.
    pub fn new(file: Rc<DmaFile>, path: PathBuf, position: u64, end: u64) -> BatchReader {
        BatchReader {
            file,
            path,
            position,
            end,
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The next run of whole batches with the file position of the first; None at the end.
    /// A batch larger than one read comes alone.
    pub async fn next_batches(&mut self) -> Result<Option<(u64, Vec<Bytes>)>, StorageError> {
        if self.position >= self.end {
            return Ok(None);
        }
        let start = self.position;
        let want = (SCAN_READ_BYTES as u64).min(self.end - start) as usize;
        let read = self.file.read_at(start, want).await.ctx("read batches", &self.path)?;
        let chunk = Bytes::copy_from_slice(&read);
        let mut batches = Vec::new();
        let mut at = 0usize;
        while at + HEADER_BYTES <= chunk.len() {
            let header = BatchHeader::new(&chunk[at..]).expect("length checked");
            let total = header.total_bytes().ok_or_else(|| StorageError::Corrupt {
                path: self.path.clone(),
                position: start + at as u64,
                reason: "bad batch length".into(),
            })?;
            if at + total > chunk.len() {
                if at == 0 {
                    let whole = self.file.read_at(start, total).await.ctx("read batches", &self.path)?;
                    batches.push(Bytes::copy_from_slice(&whole));
                    at = total;
                }
                break;
            }
            batches.push(chunk.slice(at..at + total));
            at += total;
        }
        if at == 0 || start + at as u64 > self.end {
            return Err(StorageError::Corrupt {
                path: self.path.clone(),
                position: start,
                reason: "no whole batch where one was expected".into(),
            });
        }
        self.position = start + at as u64;
        Ok(Some((start, batches)))
    }
}

/// What a batch-by-batch scan of a segment found.
pub struct Scan {
    pub valid_bytes: u64,
    pub next_offset: Offset,
    pub index: OffsetIndex,
    pub time_index: TimeIndex,
    pub bytes_since_index: u64,
    pub max_timestamp: Option<(i64, Offset)>,
    pub stop_reason: String,
    /// Whether everything after `valid_bytes` that was looked at is zeros.
    pub rest_is_padding: bool,
}

/// Reads a segment from the start, checking each batch's length, magic and CRC, and
/// rebuilding the indexes. Stops at the first batch that is not whole and valid.
pub async fn scan(
    file: &DmaFile,
    path: &Path,
    base_offset: Offset,
    file_bytes: u64,
    flushed_to: Offset,
) -> Result<Scan, StorageError> {
    // Reuses the segment's own indexing so a rebuilt index equals one built by appends.
    let mut shadow = Segment {
        base_offset,
        log_path: path.to_path_buf(),
        file: Rc::new(file.dup().ctx("dup segment", path)?),
        size: 0,
        next_offset: base_offset,
        index: OffsetIndex::default(),
        time_index: TimeIndex::default(),
        bytes_since_index: 0,
        max_timestamp: None,
        created_at_ms: 0,
        tail: Vec::new(),
        allocated: 0,
    };
    let mut stop_reason = "end of file".to_string();
    let mut rest_is_padding = true;
    let mut position = 0u64;
    'chunks: while position < file_bytes {
        let want = (SCAN_READ_BYTES as u64).min(file_bytes - position) as usize;
        let chunk = file.read_at(position, want).await.ctx("scan segment", path)?;
        let mut at = 0usize;
        while at < chunk.len() {
            let rest = &chunk[at..];
            let rest_of_file = file_bytes - position - at as u64;
            if rest.len() < HEADER_BYTES {
                if (rest.len() as u64) < rest_of_file && at > 0 {
                    // The header straddles this read: read again from the batch start.
                    break;
                }
                stop_reason = "partial batch header".into();
                rest_is_padding = rest.iter().all(|&b| b == 0);
                break 'chunks;
            }
            let length = i32::from_be_bytes(rest[8..12].try_into().expect("4 bytes"));
            let total = LOG_OVERHEAD_BYTES as i64 + i64::from(length);
            if total < HEADER_BYTES as i64 {
                stop_reason = format!("batch length {length} too small");
                rest_is_padding = rest.iter().all(|&b| b == 0);
                break 'chunks;
            }
            let total = total as u64;
            if total > rest_of_file {
                stop_reason = format!("batch of {total} bytes runs past the end of the file");
                rest_is_padding = false;
                break 'chunks;
            }
            if total > rest.len() as u64 {
                if at > 0 {
                    // The batch straddles this read: read again from the batch start.
                    break;
                }
                // One batch larger than a scan read: read exactly that batch.
                let whole = file.read_at(position, total as usize).await.ctx("scan segment", path)?;
                if let Err(reason) = check_stored_batch(&whole, &mut shadow) {
                    refuse_if_mid_log(file, path, position, position + total, file_bytes, &reason).await?;
                    stop_reason = reason;
                    rest_is_padding = false;
                    break 'chunks;
                }
                position += total;
                continue 'chunks;
            }
            if let Err(reason) = check_stored_batch(&rest[..total as usize], &mut shadow) {
                let bad_at = position + at as u64;
                refuse_if_mid_log(file, path, bad_at, bad_at + total, file_bytes, &reason).await?;
                stop_reason = reason;
                rest_is_padding = rest.iter().all(|&b| b == 0);
                break 'chunks;
            }
            at += total as usize;
        }
        position += at as u64;
    }
    if shadow.size < file_bytes && shadow.next_offset < flushed_to {
        // Below the recovery point every batch was made durable whole: what stopped the scan
        // is damage to flushed data, not a torn write. Truncating would drop acknowledged
        // records, so the partition is refused.
        return Err(StorageError::Corrupt {
            path: path.to_path_buf(),
            position: shadow.size,
            reason: format!(
                "{stop_reason} at offset {}, below the recovery point {flushed_to}: flushed data is damaged",
                shadow.next_offset
            ),
        });
    }
    Ok(Scan {
        valid_bytes: shadow.size,
        next_offset: shadow.next_offset,
        index: shadow.index,
        time_index: shadow.time_index,
        bytes_since_index: shadow.bytes_since_index,
        max_timestamp: shadow.max_timestamp,
        stop_reason,
        rest_is_padding,
    })
}

/// A bad batch followed by a valid one is corruption inside the log, not a torn tail: a torn
/// write only ever damages the end. Truncating there would silently drop the valid batches
/// after it, so the partition is refused instead, naming the file and position.
async fn refuse_if_mid_log(
    file: &DmaFile,
    path: &Path,
    bad_at: u64,
    next: u64,
    file_bytes: u64,
    reason: &str,
) -> Result<(), StorageError> {
    if next + HEADER_BYTES as u64 > file_bytes {
        return Ok(());
    }
    let header = file.read_at(next, HEADER_BYTES).await.ctx("scan segment", path)?;
    let Some(total) = BatchHeader::new(&header).ok().and_then(|h| h.total_bytes()) else {
        return Ok(());
    };
    if next + total as u64 > file_bytes {
        return Ok(());
    }
    let batch = file.read_at(next, total).await.ctx("scan segment", path)?;
    let valid = batch[16] == 2 && crc32c::crc32c(&batch[21..]) == BatchHeader::new(&batch).map_or(0, |h| h.crc());
    if valid {
        return Err(StorageError::Corrupt {
            path: path.to_path_buf(),
            position: bad_at,
            reason: format!("{reason}, and a valid batch follows at byte {next}: corruption inside the log"),
        });
    }
    Ok(())
}

/// Checks one stored batch (magic, CRC, offsets continuing the log) and indexes it.
fn check_stored_batch(bytes: &[u8], shadow: &mut Segment) -> Result<(), String> {
    let header = BatchHeader::new(bytes).map_err(|e| e.to_string())?;
    if header.magic() != 2 {
        return Err(format!("magic {}", header.magic()));
    }
    let computed = crc32c::crc32c(&bytes[21..]);
    if computed != header.crc() {
        return Err(format!("CRC mismatch at offset {}", header.base_offset()));
    }
    if header.base_offset() < shadow.next_offset || header.last_offset_delta() < 0 {
        return Err(format!(
            "batch offset {} does not follow {}",
            header.base_offset(),
            shadow.next_offset
        ));
    }
    // Compaction may leave gaps, so a later base offset is legal; the log continues from it.
    shadow.next_offset = header.base_offset();
    let position = shadow.size;
    shadow.index_batch(&header, position);
    shadow.size += bytes.len() as u64;
    Ok(())
}
