//! One segment of a partition's log: a `.log` file of record batches exactly as on the wire,
//! with its sparse `.index` and `.timeindex`.
//!
//! Segments are glommio DMA files (`O_DIRECT`); an append's write is a synchronous direct
//! write on the shard's blocking thread ([`crate::storage::direct_write`]), reads and flushes
//! go through the ring. Every write starts at the aligned page
//! holding the current end of the log and rewrites that partial page with the new bytes
//! appended, so the file never holds a gap; bytes past the logical end of the last page are
//! zero padding that recovery recognises and a clean close truncates away.
//!
//! Contract: at most one append is in flight per segment (the partition's append lock
//! holds it), and bytes below `size` never change once written, so reads of committed bytes
//! may run concurrently with an append.

use std::os::fd::{AsRawFd, BorrowedFd};
use std::path::{Path, PathBuf};
use std::rc::Rc;

use glommio::io::{DmaFile, OpenOptions};

use crate::constants::{
    INDEX_INTERVAL_BYTES, IO_ALIGNMENT_BYTES, PREALLOCATE_STEP_BYTES_MAX, PREALLOCATE_STEP_BYTES_MIN,
};
use crate::error::{IoContext, StorageError};
use crate::ids::Offset;
use crate::record::BatchHeader;
use crate::storage::batch::StoredBatch;
use crate::storage::direct_write::AlignedBuffer;
use crate::storage::index::{OffsetIndex, TimeIndex};

mod scan;

use scan::last_batch_from;
pub use scan::{scan, BatchReader, Scan};

pub fn log_file_name(base_offset: Offset) -> String {
    format!("{:020}.log", base_offset.0)
}

/// The base offset a segment file's name encodes, if it is a `.log` file.
pub fn parse_log_file_name(name: &str) -> Option<Offset> {
    let digits = name.strip_suffix(".log")?;
    (digits.len() == 20 && digits.bytes().all(|b| b.is_ascii_digit()))
        .then(|| digits.parse().ok().map(Offset))
        .flatten()
}

fn align_down(value: u64) -> u64 {
    value - value % IO_ALIGNMENT_BYTES
}

fn align_up(value: u64) -> u64 {
    value.div_ceil(IO_ALIGNMENT_BYTES) * IO_ALIGNMENT_BYTES
}

pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

pub struct Segment {
    pub base_offset: Offset,
    pub log_path: PathBuf,
    pub file: Rc<DmaFile>,
    /// Bytes of whole batches in the log; everything past it is padding or torn.
    pub size: u64,
    /// Offset after the segment's last record.
    pub next_offset: Offset,
    pub index: OffsetIndex,
    pub time_index: TimeIndex,
    bytes_since_index: u64,
    /// Largest timestamp in the segment and the last offset of the batch holding it.
    pub max_timestamp: Option<(i64, Offset)>,
    /// When the segment started taking appends, for `segment.ms`.
    pub created_at_ms: i64,
    /// Bytes from the aligned page start holding `size` up to `size`: rewritten by the next append.
    tail: Vec<u8>,
    /// Bytes reserved on disk with fallocate.
    allocated: u64,
}

/// A write the caller must issue (outside any borrow) before [`Segment::commit_append`].
pub struct PendingWrite {
    pub file: Rc<DmaFile>,
    pub buffer: AlignedBuffer,
    pub position: u64,
    pub preallocate_to: Option<u64>,
}

impl PendingWrite {
    /// Issues the write ([`AlignedBuffer::write_at`]); the bytes written.
    pub async fn write(self) -> std::io::Result<usize> {
        let PendingWrite {
            file, buffer, position, ..
        } = self;
        // SAFETY: `file` is held here, so its descriptor stays open while borrowed.
        let fd = unsafe { BorrowedFd::borrow_raw(file.as_raw_fd()) };
        buffer.write_at(fd, position).await
    }
}

impl Segment {
    fn path_with(&self, extension: &str) -> PathBuf {
        self.log_path.with_extension(extension)
    }

    /// Creates an empty segment, replacing any leftover file of the same name, and makes the
    /// new directory entry durable.
    pub async fn create(dir: &Path, base_offset: Offset) -> Result<Segment, StorageError> {
        let log_path = dir.join(log_file_name(base_offset));
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .dma_open(&log_path)
            .await
            .ctx("create segment", &log_path)?;
        sync_dir(dir).await?;
        Ok(Segment {
            base_offset,
            log_path,
            file: Rc::new(file),
            size: 0,
            next_offset: base_offset,
            index: OffsetIndex::default(),
            time_index: TimeIndex::default(),
            bytes_since_index: 0,
            max_timestamp: None,
            created_at_ms: now_ms(),
            tail: Vec::new(),
            allocated: 0,
        })
    }

    /// Opens an existing segment. A sealed segment (`scan_all == false`) trusts its index
    /// files when they fit the log and rebuilds them otherwise; the last segment is always
    /// scanned batch by batch and a torn tail is truncated. Damage to batches below
    /// `flushed_to` (the recovery point: data known to have been made durable) is never a torn
    /// tail: it is refused as corruption.
    pub async fn open(
        dir: &Path,
        base_offset: Offset,
        scan_all: bool,
        flushed_to: Offset,
    ) -> Result<Segment, StorageError> {
        let log_path = dir.join(log_file_name(base_offset));
        Segment::open_file(&log_path, log_path.clone(), base_offset, scan_all, flushed_to).await
    }

    /// Opens the file at `file_path`, to be renamed to the segment at `base_offset` in `dir`
    /// (a compacted copy): scanned batch by batch, its indexes only in memory until sealed.
    pub async fn open_replacement(dir: &Path, base_offset: Offset, file_path: &Path) -> Result<Segment, StorageError> {
        // The copy was written whole and synced: any damage in it is corruption.
        let flushed_to = Offset(i64::MAX);
        Segment::open_file(
            file_path,
            dir.join(log_file_name(base_offset)),
            base_offset,
            true,
            flushed_to,
        )
        .await
    }

    async fn open_file(
        file_path: &Path,
        log_path: PathBuf,
        base_offset: Offset,
        scan_all: bool,
        flushed_to: Offset,
    ) -> Result<Segment, StorageError> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .dma_open(file_path)
            .await
            .ctx("open segment", file_path)?;
        let file_bytes = file.file_size().await.ctx("stat segment", &log_path)?;
        let mut segment = Segment {
            base_offset,
            log_path,
            file: Rc::new(file),
            size: file_bytes,
            next_offset: base_offset,
            index: OffsetIndex::default(),
            time_index: TimeIndex::default(),
            bytes_since_index: 0,
            max_timestamp: None,
            created_at_ms: now_ms(),
            tail: Vec::new(),
            allocated: file_bytes,
        };
        if !scan_all && segment.load_indexes(file_bytes).await? {
            return Ok(segment);
        }
        let scan = scan(&segment.file, &segment.log_path, base_offset, file_bytes, flushed_to).await?;
        if scan.valid_bytes < file_bytes {
            let level_is_warning = !scan.rest_is_padding;
            let message = format!(
                "{}: truncating {} bytes after the last whole batch at byte {} ({})",
                segment.log_path.display(),
                file_bytes - scan.valid_bytes,
                scan.valid_bytes,
                scan.stop_reason
            );
            if level_is_warning {
                tracing::warn!("{message}");
            } else {
                tracing::debug!("{message}");
            }
            segment
                .file
                .truncate(scan.valid_bytes)
                .await
                .ctx("truncate torn tail", &segment.log_path)?;
        }
        segment.size = scan.valid_bytes;
        segment.allocated = scan.valid_bytes;
        segment.next_offset = scan.next_offset;
        segment.index = scan.index;
        segment.time_index = scan.time_index;
        segment.bytes_since_index = scan.bytes_since_index;
        segment.max_timestamp = scan.max_timestamp;
        segment.tail = segment.read_tail().await?;
        Ok(segment)
    }

    /// Loads `.index` and `.timeindex` if both exist and fit; false means "rebuild".
    async fn load_indexes(&mut self, log_bytes: u64) -> Result<bool, StorageError> {
        let (index_path, time_path) = (self.path_with("index"), self.path_with("timeindex"));
        let (Ok(index_bytes), Ok(time_bytes)) = (std::fs::read(&index_path), std::fs::read(&time_path)) else {
            tracing::info!("{}: index files missing, rebuilding", self.log_path.display());
            return Ok(false);
        };
        let (Some(index), Some(time_index)) = (
            OffsetIndex::decode(&index_bytes, log_bytes),
            TimeIndex::decode(&time_bytes),
        ) else {
            tracing::warn!(
                "{}: index files do not fit the log, rebuilding",
                self.log_path.display()
            );
            return Ok(false);
        };
        // A sealed segment's time index ends with its exact largest timestamp, and the
        // next offset is known from the last batch, found from the last index entry.
        let Some((timestamp, relative)) = time_index.last() else {
            return Ok(false);
        };
        let start = u64::from(index.lookup(u32::MAX));
        let last = match last_batch_from(&self.file, &self.log_path, start, log_bytes).await? {
            Some(last) => last,
            None => return Ok(false),
        };
        self.max_timestamp = Some((timestamp, Offset(self.base_offset.0 + i64::from(relative))));
        self.next_offset = last.next();
        self.index = index;
        self.time_index = time_index;
        Ok(true)
    }

    async fn read_tail(&self) -> Result<Vec<u8>, StorageError> {
        let start = align_down(self.size);
        if start == self.size {
            return Ok(Vec::new());
        }
        let read = self
            .file
            .read_at(start, (self.size - start) as usize)
            .await
            .ctx("read tail page", &self.log_path)?;
        Ok(read.to_vec())
    }

    pub fn is_empty(&self) -> bool {
        self.size == 0
    }

    /// Copies `batches` (their offsets assigned) behind the current tail page into one
    /// aligned buffer: the only copy an append makes. Nothing changes until
    /// [`Segment::commit_append`].
    pub fn prepare_append(&self, batches: &[StoredBatch]) -> PendingWrite {
        let new_bytes: usize = batches.iter().map(StoredBatch::len).sum();
        let position = align_down(self.size);
        let length = align_up(self.tail.len() as u64 + new_bytes as u64) as usize;
        let pieces = std::iter::once(&self.tail[..])
            .chain(batches.iter().flat_map(|batch| batch.pieces().map(|piece| &piece[..])));
        let buffer = AlignedBuffer::from_pieces(length, pieces);
        let end = position + length as u64;
        let preallocate_to = (end > self.allocated).then(|| align_up(end + preallocate_step(end)));
        PendingWrite {
            file: self.file.clone(),
            buffer,
            position,
            preallocate_to,
        }
    }

    /// Records `batches` as written: sizes, indexes, tail page.
    pub fn commit_append(&mut self, batches: &[StoredBatch], preallocated_to: Option<u64>) {
        for batch in batches {
            let header = batch.header();
            assert_eq!(
                header.base_offset(),
                self.next_offset,
                "{}: batch offset does not continue the log",
                self.log_path.display()
            );
            self.index_batch(&header, self.size);
            self.size += batch.len() as u64;
        }
        if let Some(allocated) = preallocated_to {
            self.allocated = allocated;
        }
        // The new tail is the last `keep` bytes of (old tail ++ batches): gather them from the
        // end, so only the partial page is copied, never the whole write.
        let keep = (self.size - align_down(self.size)) as usize;
        let mut parts: Vec<&[u8]> = Vec::new();
        let mut needed = keep;
        for part in batches
            .iter()
            .flat_map(|b| b.pieces().map(|piece| &piece[..]))
            .rev()
            .chain(std::iter::once(&self.tail[..]))
        {
            if needed == 0 {
                break;
            }
            let take = needed.min(part.len());
            parts.push(&part[part.len() - take..]);
            needed -= take;
        }
        assert_eq!(
            needed,
            0,
            "{}: tail page shorter than the bytes after the page start",
            self.log_path.display()
        );
        let tail: Vec<u8> = parts.into_iter().rev().flatten().copied().collect();
        self.tail = tail;
    }

    /// Updates next offset, largest timestamp and the sparse indexes for a batch at `position`.
    fn index_batch(&mut self, header: &BatchHeader<'_>, position: u64) {
        let relative = relative_offset(self.base_offset, header.base_offset());
        if self.bytes_since_index >= INDEX_INTERVAL_BYTES {
            self.index.push(relative, position as u32);
            if let Some((timestamp, _)) = self.max_timestamp {
                self.time_index.push(timestamp, relative);
            }
            self.bytes_since_index = 0;
        }
        self.bytes_since_index += header.total_bytes().expect("validated batch") as u64;
        let timestamp = header.max_timestamp();
        if self.max_timestamp.is_none_or(|(max, _)| timestamp > max) {
            self.max_timestamp = Some((timestamp, header.last_offset()));
        }
        self.next_offset = header.last_offset().next();
    }

    /// Makes everything written so far durable.
    pub async fn flush(file: &DmaFile, path: &Path) -> Result<(), StorageError> {
        file.fdatasync().await.ctx("fdatasync segment", path)
    }

    /// Prepares sealing: the exact largest timestamp ends the time index, and the returned
    /// work writes both indexes and cuts the log to its logical size. Called on roll and on
    /// clean shutdown, under the partition's append lock.
    pub fn seal_work(&mut self) -> SealWork {
        if let Some((timestamp, offset)) = self.max_timestamp {
            self.time_index
                .push(timestamp, relative_offset(self.base_offset, offset));
        }
        self.allocated = self.size;
        SealWork {
            file: self.file.clone(),
            log_path: self.log_path.clone(),
            size: self.size,
            index: self.index.encode(),
            time_index: self.time_index.encode(),
        }
    }
}

/// The I/O of sealing a segment, run without borrowing it.
pub struct SealWork {
    file: Rc<DmaFile>,
    log_path: PathBuf,
    size: u64,
    index: Vec<u8>,
    time_index: Vec<u8>,
}

impl SealWork {
    pub async fn run(self) -> Result<(), StorageError> {
        write_file_durably(&self.log_path.with_extension("index"), self.index).await?;
        write_file_durably(&self.log_path.with_extension("timeindex"), self.time_index).await?;
        self.file
            .truncate(self.size)
            .await
            .ctx("truncate sealed segment", &self.log_path)?;
        Segment::flush(&self.file, &self.log_path).await
    }
}

/// Space to reserve past `end` when a write reaches the end of what is allocated: as much as
/// the segment already holds, within the step bounds, so reservations double as a segment
/// fills and a partition holding one small record reserves one small step.
fn preallocate_step(end: u64) -> u64 {
    end.clamp(PREALLOCATE_STEP_BYTES_MIN, PREALLOCATE_STEP_BYTES_MAX)
}

fn relative_offset(base: Offset, offset: Offset) -> u32 {
    let relative = offset.0 - base.0;
    assert!(
        (0..=i64::from(u32::MAX)).contains(&relative),
        "offset {offset} out of the range of segment {base}"
    );
    relative as u32
}

pub async fn sync_dir(dir: &Path) -> Result<(), StorageError> {
    let directory = glommio::io::Directory::open(dir).await.ctx("open directory", dir)?;
    directory.sync().await.ctx("fsync directory", dir)?;
    directory.close().await.ctx("close directory", dir)
}

/// Writes a whole small file and makes it durable.
pub async fn write_file_durably(path: &Path, bytes: Vec<u8>) -> Result<(), StorageError> {
    let file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .buffered_open(path)
        .await
        .ctx("create", path)?;
    if !bytes.is_empty() {
        file.write_at(bytes, 0).await.ctx("write", path)?;
    }
    file.fdatasync().await.ctx("fdatasync", path)?;
    file.close().await.ctx("close", path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segment_names_are_twenty_digits() {
        assert_eq!(log_file_name(Offset(42)), "00000000000000000042.log");
        assert_eq!(parse_log_file_name("00000000000000000042.log"), Some(Offset(42)));
        assert_eq!(parse_log_file_name("42.log"), None);
        assert_eq!(parse_log_file_name("00000000000000000042.index"), None);
    }

    #[test]
    fn appends_rewrite_the_partial_page_and_keep_every_byte() {
        use crate::record::tests::encode_batch;
        use kafka_protocol::records::Compression;

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().to_path_buf();
        glommio::LocalExecutorBuilder::default()
            .spawn(move || async move {
                crate::storage::probe::probe_direct_io(&path, crate::ids::ShardId(0))
                    .await
                    .unwrap();
                let mut segment = Segment::create(&path, Offset(0)).await.unwrap();
                let (mut expected, mut next) = (Vec::new(), 0i64);
                // Batch sizes that end inside pages, span pages, and fill several at once.
                for (round, counts) in [vec![1], vec![3, 2], vec![40], vec![1], vec![100, 7, 1]]
                    .into_iter()
                    .enumerate()
                {
                    let batches: Vec<StoredBatch> = counts
                        .iter()
                        .map(|&count| {
                            let batch =
                                StoredBatch::assign(&encode_batch(count, Compression::None), Offset(next), 0, None);
                            next += count as i64;
                            batch
                        })
                        .collect();
                    let pending = segment.prepare_append(&batches);
                    let preallocated = pending.preallocate_to;
                    pending.write().await.unwrap();
                    segment.commit_append(&batches, preallocated);
                    batches.iter().for_each(|b| expected.extend_from_slice(&b.to_bytes()));
                    let on_disk = std::fs::read(&segment.log_path).unwrap();
                    assert_eq!(&on_disk[..expected.len()], &expected[..], "round {round}");
                    assert!(
                        on_disk[expected.len()..].iter().all(|&b| b == 0),
                        "round {round}: padding is zeros"
                    );
                }
                assert_eq!(segment.next_offset, Offset(next));
                segment.seal_work().run().await.unwrap();
                assert_eq!(
                    std::fs::read(&segment.log_path).unwrap(),
                    expected,
                    "sealing cuts the padding"
                );
                let reopened = Segment::open(&path, Offset(0), true, Offset(0)).await.unwrap();
                assert_eq!(
                    (reopened.size, reopened.next_offset),
                    (expected.len() as u64, Offset(next))
                );
            })
            .unwrap()
            .join()
            .unwrap();
    }

    #[test]
    fn preallocation_starts_small_and_doubles_up_to_its_cap() {
        assert_eq!(preallocate_step(4096), PREALLOCATE_STEP_BYTES_MIN);
        assert_eq!(preallocate_step(1 << 20), 1 << 20);
        assert_eq!(preallocate_step(1 << 30), PREALLOCATE_STEP_BYTES_MAX);
    }

    #[test]
    fn alignment_helpers() {
        assert_eq!(align_down(5000), 4096);
        assert_eq!(align_up(5000), 8192);
        assert_eq!(align_up(4096), 4096);
        assert_eq!(align_down(0), 0);
    }
}
