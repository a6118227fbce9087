//! A partition's log: its segments, the append path, reads from the cache or disk, and
//! timestamp lookups. Owned by exactly one shard; shard-local state in `RefCell`s.
//!
//! Invariants: offsets only grow; one append at a time (the append lock), and no `RefCell`
//! borrow is held across an await, so reads run while an append's write is in flight and
//! see only committed bytes.

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
use crate::ids::{Offset, PartitionId};
use crate::metrics::ShardMetrics;
use crate::record::{self, BatchHeader, HEADER_BYTES};
use crate::signal::Signal;
use crate::storage::batch::{Stored, StoredBatch};
use crate::storage::cache::{BatchCache, CacheBudget, Evict};
use crate::storage::compaction::{clean_batch, Cleaned, KeyMap};
use crate::storage::producers::{ProducerState, SequenceError, Sequenced};
use crate::storage::segment::{self, now_ms, parse_log_file_name, BatchReader, Segment};

/// The leader epoch written into stored batches. A single node never changes leadership.
pub const LEADER_EPOCH: i32 = 0;

#[derive(Debug, thiserror::Error)]
pub enum AppendError {
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("partition is closed")]
    Closed,
    #[error(transparent)]
    Sequence(#[from] SequenceError),
}

impl AppendError {
    /// The same failure for another append that shared the write.
    fn for_another_waiter(&self) -> AppendError {
        match self {
            AppendError::Storage(e) => AppendError::Storage(e.for_another_waiter()),
            AppendError::Closed => AppendError::Closed,
            AppendError::Sequence(e) => AppendError::Sequence(e.clone()),
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
    /// The owning shard's cache budget, and this log as the budget sees it.
    cache_budget: Rc<CacheBudget>,
    myself: RefCell<std::rc::Weak<dyn Evict>>,
    /// Everything below this offset is on stable storage: the high watermark.
    durable: Cell<Offset>,
    /// A flusher task is running.
    flushing: Cell<bool>,
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
    /// Idempotent producers' recent batches; changed only under the append lock.
    producers: RefCell<ProducerState>,
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

pub fn partition_dir(data_dir: &Path, topic: &str, partition: PartitionId) -> PathBuf {
    data_dir.join(format!("{topic}-{partition}"))
}

impl PartitionLog {
    /// Opens (recovering) or creates the log in `dir`.
    pub async fn open(
        dir: PathBuf,
        topic: &str,
        partition: PartitionId,
        topic_id: uuid::Uuid,
        config: TopicConfig,
        cache_budget: Rc<CacheBudget>,
        metrics: Rc<ShardMetrics>,
    ) -> Result<Rc<PartitionLog>, StorageError> {
        std::fs::create_dir_all(&dir).ctx("create partition directory", &dir)?;
        remove_unfinished_compaction(&dir)?;
        let mut bases: Vec<Offset> = std::fs::read_dir(&dir)
            .ctx("list partition directory", &dir)?
            .filter_map(|entry| entry.ok())
            .filter_map(|entry| parse_log_file_name(&entry.file_name().to_string_lossy()))
            .collect();
        bases.sort();
        let recovery_point = read_offset_file(&dir, RECOVERY_POINT_FILE).unwrap_or(Offset(0));
        let mut segments = Vec::with_capacity(bases.len().max(1));
        for (i, &base) in bases.iter().enumerate() {
            let last = i + 1 == bases.len();
            // Sealed segments were flushed whole when they were sealed.
            let flushed_to = if last { recovery_point } else { Offset(i64::MAX) };
            segments.push(Segment::open(&dir, base, last, flushed_to).await?);
        }
        if let [.., before, last] = &segments[..] {
            if is_stray(before, last, recovery_point) {
                let last = segments.pop().expect("two segments");
                set_stray_aside(&dir, last)?;
                // The segment before it is the active one after all: reopen it as the tail,
                // scanned to its end with its last page loaded for appends.
                let active = segments.pop().expect("one segment");
                let base = active.base_offset;
                drop(active);
                segments.push(Segment::open(&dir, base, true, recovery_point).await?);
            }
        }
        if segments.is_empty() {
            segments.push(Segment::create(&dir, Offset(0)).await?);
        }
        let end = segments.last().expect("at least one segment").next_offset;
        if end < recovery_point {
            tracing::error!(
                "{}: the log ends at offset {end}, below its recovery point {recovery_point}: flushed records are missing",
                dir.display()
            );
        }
        let log_start = read_offset_file(&dir, LOG_START_FILE).map_or(segments[0].base_offset, |checkpoint| {
            checkpoint.clamp(segments[0].base_offset, end)
        });
        let log = Rc::new(PartitionLog {
            topic: topic.to_string(),
            partition,
            topic_id,
            dir,
            config: RefCell::new(config),
            state: RefCell::new(LogState {
                segments,
                log_start,
                cache: BatchCache::new(),
            }),
            append_lock: Semaphore::new(1),
            maintenance: Semaphore::new(1),
            closed: Cell::new(false),
            signal: Signal::default(),
            cache_budget,
            myself: RefCell::new(std::rc::Weak::<PartitionLog>::new()),
            durable: Cell::new(log_start),
            flushing: Cell::new(false),
            unflushed_records: Cell::new(0),
            urgent: Signal::default(),
            flush_failure: RefCell::new(None),
            producers: RefCell::new(ProducerState::default()),
            queue: RefCell::new(VecDeque::new()),
            writer_running: Cell::new(false),
            metrics,
            cleaned_to: Cell::new(Offset(0)),
            next_tombstone_ms: Cell::new(None),
            recovery_point: Cell::new(Offset(-1)),
            weak_self: RefCell::new(std::rc::Weak::new()),
        });
        let as_evict: Rc<dyn Evict> = log.clone();
        *log.myself.borrow_mut() = Rc::downgrade(&as_evict);
        *log.weak_self.borrow_mut() = Rc::downgrade(&log);
        // What survived on disk is made durable before anyone may read it.
        let (file, path) = {
            let state = log.state.borrow();
            (state.active().file.clone(), state.active().log_path.clone())
        };
        Segment::flush(&file, &path).await?;
        log.durable.set(log.end_offset());
        log.write_recovery_point().await?;
        log.recover_producers().await?;
        Ok(log)
    }

    /// Records the high watermark as the recovery point, if it moved: below it, recovery
    /// treats any damage as corruption rather than a torn tail. A torn write of this small
    /// file can only leave fewer digits (a lower, still true point) or none (no point).
    pub async fn checkpoint_recovery_point(&self) -> Result<(), StorageError> {
        let Some(_maintaining) = self.maintenance_permit().await else {
            return Ok(());
        };
        self.write_recovery_point().await
    }

    /// Background work may run: a permit that `delete` waits for, or None once the log is
    /// closed or deleted (the work is then skipped).
    async fn maintenance_permit(&self) -> Option<glommio::sync::Permit<'_>> {
        let permit = self.maintenance.acquire_permit(1).await.ok()?;
        (!self.closed.get()).then_some(permit)
    }

    async fn write_recovery_point(&self) -> Result<(), StorageError> {
        let durable = self.durable.get();
        if durable <= self.recovery_point.get() {
            return Ok(());
        }
        let path = self.dir.join(RECOVERY_POINT_FILE);
        segment::write_file_durably(&path, durable.0.to_string().into_bytes()).await?;
        self.recovery_point.set(durable);
        Ok(())
    }

    /// Rebuilds the idempotent-producer state: the snapshot, if it fits the log, then every
    /// batch header after it (or from the log start without one).
    async fn recover_producers(&self) -> Result<(), StorageError> {
        let snapshot_path = self.dir.join(PRODUCER_SNAPSHOT_FILE);
        let (log_start, end) = (self.log_start_offset(), self.end_offset());
        let (from, mut state) = match std::fs::read(&snapshot_path) {
            Ok(bytes) => match ProducerState::decode(&bytes) {
                Some((offset, state)) if offset <= end => (offset.max(log_start), state),
                Some((offset, _)) => {
                    tracing::warn!(
                        "{}: producer snapshot at offset {offset} is past the log end {end}; replaying the log",
                        snapshot_path.display()
                    );
                    (log_start, ProducerState::default())
                }
                None => {
                    tracing::warn!(
                        "{}: damaged producer snapshot; replaying the log",
                        snapshot_path.display()
                    );
                    (log_start, ProducerState::default())
                }
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => (log_start, ProducerState::default()),
            Err(e) => return Err(StorageError::io("read producer snapshot", &snapshot_path, e)),
        };
        let spans: Vec<(Rc<DmaFile>, PathBuf, u64, u64)> = {
            let state = self.state.borrow();
            state
                .segments
                .iter()
                .filter(|s| s.next_offset > from && s.size > 0)
                .map(|s| {
                    let position = if s.base_offset < from {
                        u64::from(s.index.lookup((from.0 - s.base_offset.0) as u32))
                    } else {
                        0
                    };
                    (s.file.clone(), s.log_path.clone(), position, s.size)
                })
                .collect()
        };
        let now = now_ms();
        for (file, path, position, end) in spans {
            let mut reader = BatchReader::new(file, path, position, end);
            while let Some((_, batches)) = reader.next_batches().await? {
                for batch in &batches {
                    let header = BatchHeader::new(batch).expect("whole batch");
                    if header.last_offset() >= from {
                        state.record(&header, now);
                    }
                }
            }
        }
        if !state.is_empty() {
            tracing::debug!(
                "{}-{}: {} idempotent producers recovered (replayed from offset {from})",
                self.topic,
                self.partition,
                state.len()
            );
        }
        *self.producers.borrow_mut() = state;
        Ok(())
    }

    /// Writes the producer state as of the log end, atomically. Called under the append lock
    /// after the log up to that end is durable (roll, close).
    async fn snapshot_producers(&self) -> Result<(), StorageError> {
        let bytes = self.producers.borrow().encode(self.end_offset());
        let path = self.dir.join(PRODUCER_SNAPSHOT_FILE);
        let temp = path.with_extension("tmp");
        segment::write_file_durably(&temp, bytes).await?;
        std::fs::rename(&temp, &path).ctx("rename producer snapshot", &path)?;
        segment::sync_dir(&self.dir).await
    }

    /// Forgets idempotent producers idle since before `cutoff_ms`.
    pub fn expire_producers(&self, cutoff_ms: i64) -> usize {
        self.producers.borrow_mut().expire(cutoff_ms)
    }

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

    /// What consumers may read up to: everything below it is durable (fdatasync'ed).
    pub fn high_watermark(&self) -> Offset {
        self.durable.get()
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

    /// Queues validated producer batches for the partition's writer and returns at once with
    /// the receiver of their outcome. The order of `enqueue` calls is the order of offsets, so
    /// a caller that must keep order only needs to call it in order, not wait in between.
    /// Appends that queue up while a write is in flight are written together in the next one
    /// (at most [`COALESCED_WRITE_BYTES_MAX`] bytes); an idempotent producer's batch is written
    /// on its own, so its sequence check sees every batch before it.
    pub fn enqueue(&self, batches: &[Bytes]) -> oneshot::Receiver<Result<AppendOutcome, AppendError>> {
        let (reply, written) = oneshot::channel();
        if self.closed.get() {
            let _ = reply.send(Err(AppendError::Closed));
            return written;
        }
        let idempotent = batches
            .iter()
            .any(|b| BatchHeader::new(b).is_ok_and(|h| h.producer_id() >= 0));
        self.queue.borrow_mut().push_back(Queued {
            batches: batches.to_vec(),
            idempotent,
            reply,
        });
        if !self.writer_running.replace(true) {
            match self.weak_self.borrow().upgrade() {
                Some(log) => {
                    glommio::spawn_local(async move { log.write_queued().await }).detach();
                }
                None => self.writer_running.set(false),
            }
        }
        written
    }

    /// Appends validated producer batches, assigning consecutive offsets; returns once written.
    pub async fn append(&self, batches: &[Bytes]) -> Result<AppendOutcome, AppendError> {
        self.enqueue(batches).await.unwrap_or(Err(AppendError::Closed))
    }

    /// The writer: takes queued appends in order, writes each group with one direct write and
    /// answers every append of the group; stops when the queue is empty.
    async fn write_queued(self: Rc<Self>) {
        loop {
            let group = self.next_group();
            if group.is_empty() {
                self.writer_running.set(false);
                return;
            }
            let batches: Vec<Bytes> = group.iter().flat_map(|q| q.batches.iter().cloned()).collect();
            let write_started = Some(std::time::Instant::now());
            match self.write_group(&batches).await {
                Ok(outcome) if outcome.duplicate => {
                    let mut group = group.into_iter();
                    let only = group.next().expect("a duplicate is alone in its group");
                    assert!(group.next().is_none(), "a duplicate is alone in its group");
                    let _ = only.reply.send(Ok(AppendOutcome {
                        write_started,
                        ..outcome
                    }));
                }
                Ok(outcome) => {
                    let mut at = 0;
                    for queued in group {
                        let count = queued.batches.len();
                        let next_offset = outcome
                            .batch_bases
                            .get(at + count)
                            .copied()
                            .unwrap_or(outcome.next_offset);
                        let _ = queued.reply.send(Ok(AppendOutcome {
                            base_offset: outcome.batch_bases[at],
                            next_offset,
                            log_append_time_ms: outcome.log_append_time_ms,
                            duplicate: false,
                            batch_bases: Vec::new(),
                            write_started,
                        }));
                        at += count;
                    }
                }
                Err(e) => {
                    for queued in group {
                        let _ = queued.reply.send(Err(e.for_another_waiter()));
                    }
                }
            }
        }
    }

    /// The next appends to write together: one idempotent append alone, or consecutive other
    /// appends up to [`COALESCED_WRITE_BYTES_MAX`] bytes and `segment.bytes` (at least one), so
    /// a combined write never makes a segment larger than its topic allows.
    fn next_group(&self) -> Vec<Queued> {
        let limit =
            COALESCED_WRITE_BYTES_MAX.min(usize::try_from(self.config.borrow().segment_bytes).unwrap_or(usize::MAX));
        let mut queue = self.queue.borrow_mut();
        let mut group = Vec::new();
        let mut bytes = 0usize;
        while let Some(next) = queue.front() {
            let size: usize = next.batches.iter().map(Bytes::len).sum();
            let fits = group.is_empty() || (!next.idempotent && bytes + size <= limit);
            if !fits {
                break;
            }
            let next = queue.pop_front().expect("front exists");
            bytes += size;
            let alone = next.idempotent;
            group.push(next);
            if alone {
                break;
            }
        }
        group
    }

    /// Writes batches as one direct write, assigning consecutive offsets.
    async fn write_group(&self, batches: &[Bytes]) -> Result<AppendOutcome, AppendError> {
        let mut phases = SlowPhases::start();
        let _permit = self
            .append_lock
            .acquire_permit(1)
            .await
            .map_err(|_| AppendError::Closed)?;
        if self.closed.get() {
            return Err(AppendError::Closed);
        }
        if let Some(duplicate) = self.check_sequences(batches)? {
            return Ok(duplicate);
        }
        phases.mark("append lock");
        let incoming: u64 = batches.iter().map(|b| b.len() as u64).sum();
        self.roll_if_due(incoming).await?;
        phases.mark("roll");

        let log_append_time_ms =
            (self.config.borrow().message_timestamp_type == TimestampType::LogAppendTime).then(now_ms);
        let mut next = self.end_offset();
        let base_offset = next;
        let mut batch_bases = Vec::with_capacity(batches.len());
        let patched: Vec<StoredBatch> = batches
            .iter()
            .map(|batch| {
                batch_bases.push(next);
                let stored = StoredBatch::assign(batch, next, LEADER_EPOCH, log_append_time_ms);
                next = stored.header().last_offset().next();
                stored
            })
            .collect();

        let pending = self.state.borrow().active().prepare_append(&patched);
        let path = self.state.borrow().active().log_path.clone();
        if let Some(size) = pending.preallocate_to {
            // Reserving space is an optimisation; a filesystem without fallocate still works.
            if let Err(e) = pending.file.pre_allocate(size, true).await {
                tracing::debug!("{}: preallocation failed: {e}", path.display());
            }
        }
        phases.mark("preallocate");
        let length = pending.buffer.len();
        let preallocated_to = pending.preallocate_to;
        let written = pending.write().await.ctx("append to segment", &path)?;
        phases.mark("direct write");
        if written != length {
            return Err(StorageError::io(
                "append to segment",
                &path,
                std::io::Error::other(format!("short direct write: {written} of {length} bytes")),
            )
            .into());
        }
        {
            let mut state = self.state.borrow_mut();
            let mut producers = self.producers.borrow_mut();
            let now = now_ms();
            state.active_mut().commit_append(&patched, preallocated_to);
            for batch in &patched {
                let header = batch.header();
                producers.record(&header, now);
                state
                    .cache
                    .push(header.base_offset(), header.last_offset(), batch.clone());
            }
        }
        // After the borrow ends: the budget may evict from this very log.
        let mut records = 0i64;
        for batch in &patched {
            let header = batch.header();
            records += i64::from(header.record_count());
            self.cache_budget
                .admit(self.myself.borrow().clone(), header.base_offset(), batch.len());
        }
        self.unflushed_records.set(self.unflushed_records.get() + records);
        // Readers are woken when the records become durable, not now.
        self.kick_flusher();
        phases.mark("index and cache");
        phases.report(|took| {
            format!(
                "{}-{}: an append of {incoming} bytes took {took}",
                self.topic, self.partition
            )
        });
        Ok(AppendOutcome {
            base_offset,
            next_offset: next,
            log_append_time_ms,
            duplicate: false,
            batch_bases,
            write_started: None,
        })
    }

    /// Judges the batches of idempotent producers against their sequences. A retried batch
    /// (only ever alone: produce requests carry one batch per partition) comes back as the
    /// outcome to answer with; a gap or an old epoch is an error.
    fn check_sequences(&self, batches: &[Bytes]) -> Result<Option<AppendOutcome>, SequenceError> {
        let producers = self.producers.borrow();
        for batch in batches {
            let header = BatchHeader::new(batch).expect("validated");
            if header.producer_id() < 0 {
                continue;
            }
            if let Sequenced::Duplicate {
                base_offset,
                last_offset,
            } = producers.check(&header)?
            {
                assert_eq!(batches.len(), 1, "an idempotent batch shares its partition's request");
                tracing::debug!(
                    "{}-{}: producer {} sequence {} is a retry of offset {base_offset}",
                    self.topic,
                    self.partition,
                    header.producer_id(),
                    header.base_sequence()
                );
                return Ok(Some(AppendOutcome {
                    base_offset,
                    next_offset: last_offset.next(),
                    log_append_time_ms: None,
                    duplicate: true,
                    batch_bases: Vec::new(),
                    write_started: None,
                }));
            }
        }
        Ok(None)
    }

    /// Starts a new segment when the active one would pass `segment.bytes`, is older than
    /// `segment.ms`, or its relative offsets would overflow.
    async fn roll_if_due(&self, incoming: u64) -> Result<(), StorageError> {
        let next_offset = {
            let state = self.state.borrow();
            let active = state.active();
            let config = self.config.borrow();
            let span = active.next_offset.0 - active.base_offset.0;
            let due = !active.is_empty()
                && (active.size + incoming > config.segment_bytes
                    || now_ms() - active.created_at_ms >= config.segment_ms
                    || span > i64::from(u32::MAX / 2));
            if !due {
                return Ok(());
            }
            active.next_offset
        };
        self.seal_active().await?;
        self.snapshot_producers().await?;
        let segment = Segment::create(&self.dir, next_offset).await?;
        self.state.borrow_mut().segments.push(segment);
        Ok(())
    }

    /// Seals the active segment. The borrow ends before the I/O starts, and sealing changes
    /// no byte below the segment's size, so concurrent reads stay valid.
    async fn seal_active(&self) -> Result<(), StorageError> {
        let work = self.state.borrow_mut().active_mut().seal_work();
        work.run().await
    }

    /// Waits until everything appended so far is durable.
    pub async fn flush(&self) -> Result<(), StorageError> {
        self.wait_durable(self.end_offset()).await
    }

    /// Waits until the high watermark reaches `target`, cutting any `flush.ms` delay short.
    /// Concurrent writers share flushes: one fdatasync covers every append made before it.
    pub async fn wait_durable(&self, target: Offset) -> Result<(), StorageError> {
        loop {
            if self.durable.get() >= target {
                return Ok(());
            }
            if !self.flushing.get() {
                if let Some(failure) = self.flush_failure.borrow().clone() {
                    return Err(StorageError::io("flush", &self.dir, std::io::Error::other(failure)));
                }
            }
            let woken = self.signal.wait();
            self.urgent.notify_all();
            self.kick_flusher();
            let _ = woken.await;
        }
    }

    /// Starts the flusher unless it runs already: the group commit. Appends made while a flush
    /// is in flight ride the next one.
    fn kick_flusher(&self) {
        if self.flushing.replace(true) {
            if self.unflushed_records.get() >= self.config.borrow().flush_messages {
                self.urgent.notify_all();
            }
            return;
        }
        let Some(log) = self.weak_self.borrow().upgrade() else {
            self.flushing.set(false);
            return;
        };
        glommio::spawn_local(async move { log.flush_loop().await }).detach();
    }

    /// fdatasync until nothing appended is left unflushed, then stop. `flush.ms` delays each
    /// round (0, the default, flushes at once) unless a writer waits or `flush.messages`
    /// records have accumulated.
    async fn flush_loop(self: Rc<Self>) {
        loop {
            let delay_ms = self.config.borrow().flush_ms.clamp(0, FLUSH_DELAY_MS_MAX);
            let pressing = self.unflushed_records.get() >= self.config.borrow().flush_messages;
            if delay_ms > 0 && !pressing {
                let woken = self.urgent.wait();
                let delay = glommio::timer::sleep(std::time::Duration::from_millis(delay_ms as u64));
                futures::future::select(woken, Box::pin(delay)).await;
            }
            let target = self.end_offset();
            let records = self.unflushed_records.replace(0);
            let started = std::time::Instant::now();
            let (file, path) = {
                let state = self.state.borrow();
                (state.active().file.clone(), state.active().log_path.clone())
            };
            // Segments rolled before `target` was read were sealed, and sealing flushes them.
            match Segment::flush(&file, &path).await {
                Ok(()) => {
                    self.metrics
                        .flush_latency_us
                        .observe(started.elapsed().as_micros() as u64);
                    self.metrics.flush_records.observe(records.max(0) as u64);
                    self.flush_failure.borrow_mut().take();
                    if target > self.durable.get() {
                        self.durable.set(target);
                    }
                    self.signal.notify_all();
                }
                Err(e) => {
                    tracing::error!("{}-{}: flush failed: {e}", self.topic, self.partition);
                    *self.flush_failure.borrow_mut() = Some(e.to_string());
                    self.flushing.set(false);
                    self.signal.notify_all();
                    return;
                }
            }
            if self.end_offset() <= self.durable.get() || self.closed.get() {
                self.flushing.set(false);
                return;
            }
        }
    }

    /// Waits for an in-flight append, then seals the log; later appends fail with Closed.
    pub async fn close(&self) -> Result<(), StorageError> {
        let _permit = self.append_lock.acquire_permit(1).await.ok();
        if self.closed.replace(true) {
            return Ok(());
        }
        self.seal_active().await?;
        self.durable.set(self.end_offset());
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

    /// Deletes the oldest closed segments while `retention.ms` or `retention.bytes` says so
    /// (only under `cleanup.policy` delete). Returns how many were deleted.
    pub async fn apply_retention(&self, now_ms: i64) -> Result<usize, StorageError> {
        let Some(_maintaining) = self.maintenance_permit().await else {
            return Ok(0);
        };
        let count = {
            let state = self.state.borrow();
            let config = self.config.borrow();
            if !config.cleanup_policy.split(',').any(|p| p.trim() == "delete") {
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
            let compacting = config.cleanup_policy.split(',').any(|p| p.trim() == "compact");
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
    fn segment_reader(&self, base: Offset, size: u64) -> Option<BatchReader> {
        let state = self.state.borrow();
        let closed = &state.segments[..state.segments.len() - 1];
        closed
            .iter()
            .find(|s| s.base_offset == base && s.size == size)
            .map(|s| BatchReader::new(s.file.clone(), s.log_path.clone(), 0, s.size))
    }

    /// Where the segment at `base` ends: the next segment's base offset.
    fn segment_end(&self, base: Offset) -> Option<Offset> {
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
    async fn replace_segment(&self, base: Offset, size: u64, cleaned: &Path) -> Result<bool, StorageError> {
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
    async fn delete_segments(&self, count: usize, log_start: Option<Offset>) -> Result<(), StorageError> {
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
        let paths: Vec<PathBuf> = removed
            .iter()
            .flat_map(|s| ["log", "index", "timeindex"].map(|ext| s.log_path.with_extension(ext)))
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

    /// Whole batches from the one holding `offset`, at most `max_bytes` but at least one.
    /// Empty at the end of the log; OutOfRange outside it.
    pub async fn read(&self, offset: Offset, max_bytes: usize) -> Result<Vec<Stored>, ReadError> {
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
                let high_watermark = self.durable.get();
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
                .map(|bytes| Stored::Run(below(bytes, self.durable.get())))
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

/// Whether `last`, the newest segment file, is one this log never wrote: empty, named past
/// where the segment before it ends, and past the recovery point. A segment the log rolled
/// to starts where the one before it ended (or, once compaction emptied that one's tail, at
/// an offset the recovery point has since passed); a file dropped into the directory by hand
/// would otherwise move the log's end to whatever its name says.
fn is_stray(before: &Segment, last: &Segment, recovery_point: Offset) -> bool {
    last.is_empty() && last.base_offset > before.next_offset && last.base_offset > recovery_point
}

/// Renames a stray segment file (and any index files beside it) out of the log's way, with
/// one warning, so it is neither read as the log nor overwritten when the log reaches its
/// offset.
fn set_stray_aside(dir: &Path, stray: Segment) -> Result<(), StorageError> {
    let log_path = stray.log_path.clone();
    drop(stray);
    tracing::warn!(
        "{}: ignoring {}, a segment this log did not write (empty, past the log's end); renamed to *.stray",
        dir.display(),
        log_path.display()
    );
    for extension in ["log", "index", "timeindex"] {
        let path = log_path.with_extension(extension);
        if path.exists() {
            let aside = path.with_extension(format!("{extension}.stray"));
            std::fs::rename(&path, &aside).ctx("set a stray segment aside", &path)?;
        }
    }
    Ok(())
}

/// The leading batches of `bytes` (whole batches) that start below `limit`.
fn below(bytes: Bytes, limit: Offset) -> Bytes {
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
fn verify_crcs(batches: &[u8], path: &Path, position: u64) -> Result<(), StorageError> {
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
async fn read_from_disk(
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

/// Whether compaction would remove any record from the segment `reader` reads. Notes the
/// due times of the tombstones it keeps when it removes none.
async fn loses_records(
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
async fn write_cleaned(
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
const CLEANED_EXTENSION: &str = "cleaned";

/// Removes compacted segments a crash left before they were swapped in.
fn remove_unfinished_compaction(dir: &Path) -> Result<(), StorageError> {
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

/// The idempotent-producer snapshot: [`ProducerState::encode`]'s layout.
const PRODUCER_SNAPSHOT_FILE: &str = "producer-state";

/// The file holding a log start that DeleteRecords (or retention) moved past the first
/// segment's base: the offset in decimal.
const LOG_START_FILE: &str = "log-start-offset";

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

pub use segment::sync_dir;

/// Times the phases of one append and logs them when the whole took longer than
/// [`crate::constants::SLOW_APPEND_MS`], so a stalled write says where it stalled.
struct SlowPhases {
    started: std::time::Instant,
    last: std::time::Instant,
    phases: Vec<(&'static str, std::time::Duration)>,
}

/// Whether this shard may log another slow append this second.
fn slow_append_line_allowed() -> bool {
    thread_local! {
        static WINDOW: std::cell::Cell<(std::time::Instant, u32)> =
            std::cell::Cell::new((std::time::Instant::now(), 0));
    }
    WINDOW.with(|window| {
        let (since, lines) = window.get();
        let now = std::time::Instant::now();
        let (since, lines) = if now.duration_since(since).as_secs() >= 1 {
            (now, 0)
        } else {
            (since, lines)
        };
        window.set((since, lines + 1));
        lines < crate::constants::SLOW_APPEND_LINES_PER_SECOND_MAX
    })
}

impl SlowPhases {
    fn start() -> SlowPhases {
        let now = std::time::Instant::now();
        SlowPhases {
            started: now,
            last: now,
            phases: Vec::new(),
        }
    }

    fn mark(&mut self, phase: &'static str) {
        let now = std::time::Instant::now();
        self.phases.push((phase, now - self.last));
        self.last = now;
    }

    fn report(&self, what: impl FnOnce(String) -> String) {
        let took = self.started.elapsed();
        if took.as_millis() < u128::from(crate::constants::SLOW_APPEND_MS) || !slow_append_line_allowed() {
            return;
        }
        let phases: Vec<String> = self
            .phases
            .iter()
            .map(|(phase, spent)| format!("{phase} {:.1} ms", spent.as_secs_f64() * 1000.0))
            .collect();
        tracing::warn!(
            "{} ({})",
            what(format!("{:.1} ms", took.as_secs_f64() * 1000.0)),
            phases.join(", ")
        );
    }
}
