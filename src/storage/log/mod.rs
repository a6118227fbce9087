//! A partition's log: its segments, the append path, reads from the cache or disk, and
//! timestamp lookups. Owned by exactly one shard; shard-local state in `RefCell`s.
//!
//! The log's offsets, as [`LogOffsets`] reports them: `log_start <= last_stable <=
//! high_watermark <= durable <= log_end` on a single node, where the high watermark follows the
//! durable (flushed) offset. Under replication the high watermark is set from outside
//! ([`PartitionLog::set_high_watermark`]) and may trail or, on a follower, lead the local
//! flush; the last stable offset equals the high watermark until transactions hold it back.
//! The leader epoch is the one appends are stamped with; the [`EpochCache`] records where each
//! epoch began and is persisted as `leader-epoch-checkpoint`.
//!
//! Invariants: offsets strictly increase across appended batches; the high watermark never
//! passes the log end and only moves back by truncation; leader epochs never decrease; one
//! append at a time (the append lock), and no `RefCell` borrow is held across an await, so
//! reads run while an append's write is in flight and see only committed bytes.
//!
//! The log by noun: this file holds the state and what is read of it; `recovery.rs` opens a log
//! and checkpoints it, `append.rs` queues and writes appends, `durability.rs` flushes and moves the
//! high watermark, `read.rs` serves fetches and timestamp lookups, `retention.rs` drops segments
//! from the front (time, size, DeleteRecords), `truncate.rs` cuts the tail (a follower that
//! diverged from its leader), `epochs.rs` keeps the leader epoch and its cache, `compact.rs`
//! drives the cleaning of compacted topics, and `transactions.rs` writes markers and keeps the
//! last stable offset and the aborted-transaction index.

mod append;
mod compact;
mod durability;
mod epochs;
mod read;
mod recovery;
mod retention;
#[cfg(test)]
mod tests;
mod transactions;
mod truncate;

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use bytes::Bytes;
use futures::channel::oneshot;
use glommio::io::DmaFile;
use glommio::sync::Semaphore;

use crate::config::{TimestampType, TopicConfig};
use crate::constants::{COALESCED_WRITE_BYTES_MAX, COMPACTION_WRITE_BYTES, FETCH_READ_BYTES_MIN, FLUSH_DELAY_MS_MAX};
use crate::error::{IoContext, StorageError};
use crate::ids::{LeaderEpoch, Offset, PartitionId};
use crate::metrics::ShardMetrics;
use crate::record::{self, BatchHeader, HEADER_BYTES};
use crate::signal::Signal;
use crate::storage::batch::{Stored, StoredBatch};
use crate::storage::cache::{BatchCache, CacheBudget, Evict};
use crate::storage::compaction::{clean_batch, Cleaned, KeyMap};
use crate::storage::epoch_cache::{EpochCache, EPOCH_CHECKPOINT_FILE};
use crate::storage::producers::{ProducerState, SequenceError, Sequenced};
use crate::storage::segment::{self, now_ms, parse_log_file_name, BatchReader, Segment};
use crate::storage::txn_index::{AbortedIndex, AbortedTxn};

#[derive(Debug, thiserror::Error)]
pub enum AppendError {
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("partition is closed")]
    Closed,
    #[error(transparent)]
    Sequence(#[from] SequenceError),
    /// A verbatim append whose offsets do not continue the log (or each other).
    #[error("batch at offset {got} does not continue the log at {expected}")]
    NotContiguous { expected: Offset, got: Offset },
    /// A verbatim append whose leader epoch is below one the log already holds.
    #[error("batch of leader epoch {got} after epoch {latest}")]
    EpochBackwards { latest: LeaderEpoch, got: LeaderEpoch },
    /// A verbatim append that is not a whole, valid v2 batch.
    #[error("invalid batch: {0}")]
    InvalidBatch(String),
}

impl AppendError {
    /// The same failure for another append that shared the write.
    fn for_another_waiter(&self) -> AppendError {
        match self {
            AppendError::Storage(e) => AppendError::Storage(e.for_another_waiter()),
            AppendError::Closed => AppendError::Closed,
            AppendError::Sequence(e) => AppendError::Sequence(e.clone()),
            AppendError::NotContiguous { expected, got } => AppendError::NotContiguous {
                expected: *expected,
                got: *got,
            },
            AppendError::EpochBackwards { latest, got } => AppendError::EpochBackwards {
                latest: *latest,
                got: *got,
            },
            AppendError::InvalidBatch(reason) => AppendError::InvalidBatch(reason.clone()),
        }
    }
}

/// An append waiting for the partition's writer.
struct Queued {
    batches: Vec<Bytes>,
    idempotent: bool,
    reply: oneshot::Sender<Result<AppendOutcome, AppendError>>,
}

#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("offset {offset} is outside the log [{log_start}, {log_end}]")]
    OutOfRange {
        offset: Offset,
        log_start: Offset,
        log_end: Offset,
    },
    #[error(transparent)]
    Storage(#[from] StorageError),
}

#[derive(Debug)]
pub struct AppendOutcome {
    /// The offset of the first record appended (or, for a duplicate, already there).
    pub base_offset: Offset,
    /// The offset after the appended records: durable once the high watermark reaches it.
    pub next_offset: Offset,
    /// The broker time stamped into the batches under LogAppendTime, else None.
    pub log_append_time_ms: Option<i64>,
    /// The batch was a producer's retry of one already in the log: nothing was written.
    pub duplicate: bool,
    /// The base offset of each batch written, in order (empty for a duplicate).
    batch_bases: Vec<Offset>,
    /// When the write carrying these batches began (after any write queued before it).
    pub write_started: Option<std::time::Instant>,
}

pub struct PartitionLog {
    pub topic: String,
    pub partition: PartitionId,
    pub topic_id: uuid::Uuid,
    dir: PathBuf,
    config: RefCell<TopicConfig>,
    state: RefCell<LogState>,
    append_lock: Semaphore,
    /// Held by background work (retention, compaction, recovery-point checkpoints) and by
    /// `delete`, so nothing writes into a partition directory being deleted.
    maintenance: Semaphore,
    closed: Cell<bool>,
    /// Fires after every append; long-polling fetches wait on it.
    pub signal: Signal,
    /// Fires after every append is written (before it is durable): what a follower's
    /// long-poll waits on.
    pub appended: Signal,
    /// The owning shard's cache budget, and this log as the budget sees it.
    cache_budget: Rc<CacheBudget>,
    myself: RefCell<std::rc::Weak<dyn Evict>>,
    /// Everything below this offset is on stable storage (fdatasync'ed).
    durable: Cell<Offset>,
    /// What consumers may read up to: moved by the [`Watermark`] rule in force.
    high_watermark: Cell<Offset>,
    /// What moves the high watermark: the local flush, the in-sync followers, or the leader.
    watermark: RefCell<Watermark>,
    /// The epoch a leader's appends are stamped with; never decreases.
    leader_epoch: Cell<LeaderEpoch>,
    /// Where each leader epoch began; persisted as `leader-epoch-checkpoint`.
    epochs: RefCell<EpochCache>,
    /// A flusher task is running.
    flushing: Cell<bool>,
    /// Twice the truncations begun (counted at their start and end): a flush round that
    /// overlapped one must not claim the new tail durable.
    truncations: Cell<u64>,
    /// Records appended since the last flush started, for `flush.messages`.
    unflushed_records: Cell<i64>,
    /// Cuts a `flush.ms` delay short: a writer waits for durability.
    urgent: Signal,
    /// The last flush failure, for writers waiting on durability; cleared by a success.
    flush_failure: RefCell<Option<String>>,
    /// The owning shard's counters (flushes, cache hits).
    metrics: Rc<ShardMetrics>,
    /// Appends waiting for the writer, in arrival order: their offsets follow this order.
    queue: RefCell<VecDeque<Queued>>,
    /// The writer task is running (it stops when the queue is empty).
    writer_running: Cell<bool>,
    /// Idempotent producers' recent batches and open transactions; changed only under the
    /// append lock.
    producers: RefCell<ProducerState>,
    /// The aborted transactions, by marker offset; changed with `producers`.
    aborted: RefCell<AbortedIndex>,
    /// Compaction has cleaned everything below this offset (the end of the closed segments
    /// at its last pass); a pass runs again when more segments close.
    cleaned_to: Cell<Offset>,
    /// When the earliest tombstone compaction kept becomes removable.
    next_tombstone_ms: Cell<Option<i64>>,
    /// The high watermark last written to the recovery-point file.
    recovery_point: Cell<Offset>,
    weak_self: RefCell<std::rc::Weak<PartitionLog>>,
}

struct LogState {
    /// Sorted by base offset; never empty; the last one takes appends.
    segments: Vec<Segment>,
    log_start: Offset,
    cache: BatchCache,
}

impl LogState {
    fn active(&self) -> &Segment {
        self.segments.last().expect("a log always has a segment")
    }
    fn active_mut(&mut self) -> &mut Segment {
        self.segments.last_mut().expect("a log always has a segment")
    }
    fn end_offset(&self) -> Offset {
        self.active().next_offset
    }
}

/// A partition log's offsets at one instant (see the module's invariants).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogOffsets {
    pub log_start: Offset,
    pub last_stable: Offset,
    pub high_watermark: Offset,
    pub durable: Offset,
    pub log_end: Offset,
    pub leader_epoch: LeaderEpoch,
}

pub fn partition_dir(data_dir: &Path, topic: &str, partition: PartitionId) -> PathBuf {
    data_dir.join(format!("{topic}-{partition}"))
}

impl PartitionLog {
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn set_config(&self, config: TopicConfig) {
        if *self.config.borrow() != config {
            // A changed policy or `delete.retention.ms` may let compaction remove more.
            self.cleaned_to.set(Offset(0));
        }
        *self.config.borrow_mut() = config;
    }

    pub fn max_message_bytes(&self) -> u64 {
        self.config.borrow().max_message_bytes
    }

    /// Offset the next record will get.
    pub fn end_offset(&self) -> Offset {
        self.state.borrow().end_offset()
    }

    /// What consumers may read up to (on a single node, everything durable).
    pub fn high_watermark(&self) -> Offset {
        self.high_watermark.get()
    }

    /// Everything below it is on stable storage.
    pub fn durable_offset(&self) -> Offset {
        self.durable.get()
    }

    /// What a read_committed consumer may read up to: the high watermark, or the first
    /// offset of the oldest open transaction if that is lower.
    pub fn last_stable_offset(&self) -> Offset {
        let high_watermark = self.high_watermark.get();
        self.producers
            .borrow()
            .first_unstable_offset()
            .map_or(high_watermark, |first| first.min(high_watermark))
    }

    /// The log's offsets and leader epoch at one instant.
    pub fn offsets(&self) -> LogOffsets {
        LogOffsets {
            log_start: self.log_start_offset(),
            last_stable: self.last_stable_offset(),
            high_watermark: self.high_watermark(),
            durable: self.durable_offset(),
            log_end: self.end_offset(),
            leader_epoch: self.leader_epoch(),
        }
    }

    pub fn log_start_offset(&self) -> Offset {
        self.state.borrow().log_start
    }

    /// Bytes of the log's segment files (what DescribeLogDirs reports as its size).
    pub fn size_bytes(&self) -> u64 {
        self.state.borrow().segments.iter().map(|s| s.size).sum()
    }

    /// The idempotent producers this partition remembers.
    pub fn active_producers(&self) -> Vec<crate::storage::producers::ActiveProducer> {
        self.producers.borrow().active()
    }

    /// Largest timestamp in the log and the offset of the batch that carries it.
    pub fn max_timestamp(&self) -> Option<(i64, Offset)> {
        let state = self.state.borrow();
        state
            .segments
            .iter()
            .filter_map(|s| s.max_timestamp)
            .fold(None, |best: Option<(i64, Offset)>, candidate| match best {
                Some(b) if b.0 >= candidate.0 => Some(b),
                _ => Some(candidate),
            })
    }

    /// Forgets idempotent producers idle since before `cutoff_ms`.
    pub fn expire_producers(&self, cutoff_ms: i64) -> usize {
        self.producers.borrow_mut().expire(cutoff_ms)
    }

    /// Background work may run: a permit that `delete` waits for, or None once the log is
    /// closed or deleted (the work is then skipped).
    async fn maintenance_permit(&self) -> Option<glommio::sync::Permit<'_>> {
        let permit = self.maintenance.acquire_permit(1).await.ok()?;
        (!self.closed.get()).then_some(permit)
    }

    /// Waits for an in-flight append, then seals the log; later appends fail with Closed.
    pub async fn close(&self) -> Result<(), StorageError> {
        let _permit = self.append_lock.acquire_permit(1).await.ok();
        if self.closed.replace(true) {
            return Ok(());
        }
        self.seal_active().await?;
        self.advance_durable(self.end_offset());
        self.signal.notify_all();
        self.write_recovery_point().await?;
        self.snapshot_producers().await
    }

    /// Closes the log and removes its directory.
    pub async fn delete(&self) -> Result<(), StorageError> {
        // Background work first (it may hold the maintenance permit across appends' turns),
        // then appends: once both are held and the log is closed, nothing touches the files.
        let _maintaining = self.maintenance.acquire_permit(1).await.ok();
        let _permit = self.append_lock.acquire_permit(1).await.ok();
        self.closed.set(true);
        let doomed = self.dir.with_file_name(format!(
            "{}.{}-delete",
            self.dir
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            uuid::Uuid::new_v4().simple()
        ));
        std::fs::rename(&self.dir, &doomed).ctx("rename deleted partition", &self.dir)?;
        glommio::executor()
            .spawn_blocking(move || std::fs::remove_dir_all(&doomed).ctx("remove deleted partition", &doomed))
            .await
    }
}

impl Evict for PartitionLog {
    fn evict_cached(&self, base_offset: Offset) {
        self.state.borrow_mut().cache.evict(base_offset);
    }
}

fn corrupt(path: &Path, position: u64, reason: String) -> StorageError {
    StorageError::Corrupt {
        path: path.to_path_buf(),
        position,
        reason,
    }
}

/// The idempotent-producer snapshot: [`ProducerState::encode`]'s layout.
const PRODUCER_SNAPSHOT_FILE: &str = "producer-state";

/// The file holding a log start that DeleteRecords (or retention) moved past the first
/// segment's base: the offset in decimal.
const LOG_START_FILE: &str = "log-start-offset";
/// The id of the topic the partition's data belongs to: a directory left by a topic deleted
/// while this broker was away is told from the new topic of the same name.
const TOPIC_ID_FILE: &str = "topic-id";

/// The durable offset as last checkpointed: everything below it had been flushed.
const RECOVERY_POINT_FILE: &str = "recovery-point";

/// An offset kept in a small decimal file; None if the file is missing or unreadable.
fn read_offset_file(dir: &Path, name: &str) -> Option<Offset> {
    let text = std::fs::read_to_string(dir.join(name)).ok()?;
    text.trim().parse().ok().map(Offset)
}

/// Removes partition directories left half-deleted by a crash during topic deletion.
pub fn remove_deleted_leftovers(data_dir: &Path) {
    let Ok(entries) = std::fs::read_dir(data_dir) else {
        return;
    };
    for entry in entries.flatten() {
        if entry.file_name().to_string_lossy().ends_with("-delete") {
            if let Err(e) = std::fs::remove_dir_all(entry.path()) {
                tracing::warn!("could not remove {}: {e}", entry.path().display());
            }
        }
    }
}

pub use durability::{HighWatermarkError, NotReplicated, Watermark};
pub use epochs::EpochBackwards;
pub use read::ReadLimit;
pub use segment::sync_dir;
