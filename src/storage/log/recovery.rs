//! Opening a partition's log: its segments found and the tail scanned, a torn tail cut, a stray
//! segment set aside, the log start and recovery point read back, the idempotent-producer state
//! rebuilt; and the checkpoints (recovery point, producer snapshot) that make the next open quick.

use super::compact::remove_unfinished_compaction;
use super::*;

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
        claim_for_topic(&dir, topic_id).await?;
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
        let (epochs, epochs_changed) = super::epochs::load_epochs(&dir, log_start, end)?;
        let leader_epoch = epochs.latest().map_or(LeaderEpoch(0), |(epoch, _)| epoch);
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
            appended: Signal::default(),
            cache_budget,
            myself: RefCell::new(std::rc::Weak::<PartitionLog>::new()),
            durable: Cell::new(log_start),
            high_watermark: Cell::new(log_start),
            watermark: RefCell::new(Watermark::Durable),
            leader_epoch: Cell::new(leader_epoch),
            epochs: RefCell::new(epochs),
            flushing: Cell::new(false),
            truncations: Cell::new(0),
            unflushed_records: Cell::new(0),
            urgent: Signal::default(),
            flush_failure: RefCell::new(None),
            producers: RefCell::new(ProducerState::default()),
            aborted: RefCell::new(AbortedIndex::default()),
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
        log.advance_durable(log.end_offset());
        log.write_recovery_point().await?;
        if epochs_changed {
            log.write_epoch_checkpoint().await?;
        }
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

    pub(super) async fn write_recovery_point(&self) -> Result<(), StorageError> {
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
    pub(super) async fn recover_producers(&self) -> Result<(), StorageError> {
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
        let mut aborted = self.load_txn_indexes(from)?;
        let now = now_ms();
        for (file, path, position, end) in spans {
            let mut reader = BatchReader::new(file, path, position, end);
            while let Some((_, batches)) = reader.next_batches().await? {
                for batch in &batches {
                    let header = BatchHeader::new(batch).expect("whole batch");
                    if header.last_offset() >= from {
                        if let Some(done) = state.record(&header, record::marker_of(batch), now) {
                            super::transactions::index_if_aborted(&mut aborted, &state, done);
                        }
                    }
                }
            }
        }
        *self.aborted.borrow_mut() = aborted;
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
    pub(super) async fn snapshot_producers(&self) -> Result<(), StorageError> {
        self.write_txn_indexes().await?;
        let bytes = self.producers.borrow().encode(self.end_offset());
        let path = self.dir.join(PRODUCER_SNAPSHOT_FILE);
        let temp = path.with_extension("tmp");
        segment::write_file_durably(&temp, bytes).await?;
        std::fs::rename(&temp, &path).ctx("rename producer snapshot", &path)?;
        segment::sync_dir(&self.dir).await
    }
}

/// Whether `last`, the newest segment file, is one this log never wrote: empty, named past
/// where the segment before it ends, and past the recovery point. A segment the log rolled
/// to starts where the one before it ended (or, once compaction emptied that one's tail, at
/// an offset the recovery point has since passed); a file dropped into the directory by hand
/// would otherwise move the log's end to whatever its name says.
pub(super) fn is_stray(before: &Segment, last: &Segment, recovery_point: Offset) -> bool {
    last.is_empty() && last.base_offset > before.next_offset && last.base_offset > recovery_point
}

/// Renames a stray segment file (and any index files beside it) out of the log's way, with
/// one warning, so it is neither read as the log nor overwritten when the log reaches its
/// offset.
pub(super) fn set_stray_aside(dir: &Path, stray: Segment) -> Result<(), StorageError> {
    let log_path = stray.log_path.clone();
    drop(stray);
    tracing::warn!(
        "{}: ignoring {}, a segment this log did not write (empty, past the log's end); renamed to *.stray",
        dir.display(),
        log_path.display()
    );
    for extension in ["log", "index", "timeindex", "txnindex"] {
        let path = log_path.with_extension(extension);
        if path.exists() {
            let aside = path.with_extension(format!("{extension}.stray"));
            std::fs::rename(&path, &aside).ctx("set a stray segment aside", &path)?;
        }
    }
    Ok(())
}

/// Makes `dir` the data of topic `topic_id`: a directory recorded for another topic (one
/// deleted, and re-created under the same name, while this broker was away) is emptied
/// first; one that records no topic (new, or written before the id was kept) is claimed.
async fn claim_for_topic(dir: &Path, topic_id: uuid::Uuid) -> Result<(), StorageError> {
    let path = dir.join(TOPIC_ID_FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) => match uuid::Uuid::parse_str(text.trim()) {
            Ok(id) if id == topic_id => return Ok(()),
            Ok(id) => {
                tracing::warn!(
                    "{}: holds data of topic id {id}, not {topic_id} (a topic deleted meanwhile): removing it",
                    dir.display()
                );
                std::fs::remove_dir_all(dir).ctx("remove a deleted topic's partition", dir)?;
                std::fs::create_dir_all(dir).ctx("create partition directory", dir)?;
            }
            Err(e) => {
                return Err(StorageError::Corrupt {
                    path,
                    position: 0,
                    reason: format!("not a topic id: {e}"),
                })
            }
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(StorageError::io("read topic id", &path, e)),
    }
    segment::write_file_durably(&path, format!("{topic_id}\n").into_bytes()).await?;
    segment::sync_dir(dir).await
}
