//! The append path: appends queue per partition, and one writer takes every queued append
//! into one direct write (up to [`crate::constants::COALESCED_WRITE_BYTES_MAX`]), rolling the
//! segment when it is due. A leader's offsets and epoch are assigned here, so they only grow;
//! a follower's batches keep the offsets and epochs its leader gave them
//! ([`PartitionLog::append_verbatim`]), checked to continue the log.

use super::*;

impl PartitionLog {
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
    pub(super) async fn write_queued(self: Rc<Self>) {
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
    pub(super) fn next_group(&self) -> Vec<Queued> {
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

    /// The append lock, held by whatever changes the log's tail; Closed once the log is sealed.
    pub(super) async fn append_permit(&self) -> Result<glommio::sync::Permit<'_>, AppendError> {
        let permit = self
            .append_lock
            .acquire_permit(1)
            .await
            .map_err(|_| AppendError::Closed)?;
        if self.closed.get() {
            return Err(AppendError::Closed);
        }
        Ok(permit)
    }

    /// Writes batches as one direct write, assigning consecutive offsets.
    pub(super) async fn write_group(&self, batches: &[Bytes]) -> Result<AppendOutcome, AppendError> {
        let mut phases = SlowPhases::start();
        let _permit = self.append_permit().await?;
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
        let epoch = self.leader_epoch();
        self.note_epoch(epoch, base_offset).await?;
        let mut batch_bases = Vec::with_capacity(batches.len());
        let patched: Vec<StoredBatch> = batches
            .iter()
            .map(|batch| {
                batch_bases.push(next);
                let stored = StoredBatch::assign(batch, next, epoch.0, log_append_time_ms);
                next = stored.header().last_offset().next();
                stored
            })
            .collect();
        self.write_stored(&patched, incoming, &mut phases).await?;
        Ok(AppendOutcome {
            base_offset,
            next_offset: next,
            log_append_time_ms,
            duplicate: false,
            batch_bases,
            write_started: None,
        })
    }

    /// Appends a follower's batches exactly as its leader stored them: their offsets and
    /// leader epochs are kept, not assigned. The first must start at the log end and each
    /// next one right after the one before; epochs may not fall below one the log holds.
    /// Producer state and the epoch cache follow the batches; nothing is deduplicated.
    pub async fn append_verbatim(&self, batches: &[Bytes]) -> Result<AppendOutcome, AppendError> {
        let mut phases = SlowPhases::start();
        let _permit = self.append_permit().await?;
        let base_offset = self.end_offset();
        let mut expected = base_offset;
        let mut latest = self.epochs.borrow().latest().map_or(LeaderEpoch(0), |(epoch, _)| epoch);
        let mut epoch_starts = Vec::new();
        let mut batch_bases = Vec::with_capacity(batches.len());
        for batch in batches {
            let header = match record::validate(batch) {
                Ok(header) => header,
                // A compacted batch keeps its lastOffsetDelta with fewer records in it.
                Err(record::BatchError::Count { .. }) => BatchHeader::new(batch).expect("validated length"),
                Err(e) => return Err(AppendError::InvalidBatch(e.to_string())),
            };
            if header.last_offset_delta() < 0 {
                return Err(AppendError::InvalidBatch(format!(
                    "lastOffsetDelta {} is negative",
                    header.last_offset_delta()
                )));
            }
            if header.base_offset() != expected {
                return Err(AppendError::NotContiguous {
                    expected,
                    got: header.base_offset(),
                });
            }
            let epoch = LeaderEpoch(header.partition_leader_epoch());
            if epoch < latest {
                return Err(AppendError::EpochBackwards { latest, got: epoch });
            }
            if epoch > latest || epoch_starts.is_empty() {
                epoch_starts.push((epoch, header.base_offset()));
                latest = epoch;
            }
            batch_bases.push(header.base_offset());
            expected = header.last_offset().next();
        }
        if batches.is_empty() {
            return Err(AppendError::InvalidBatch("no batches".to_string()));
        }
        phases.mark("append lock");
        let incoming: u64 = batches.iter().map(|b| b.len() as u64).sum();
        self.roll_if_due(incoming).await?;
        for (epoch, start) in epoch_starts {
            self.note_epoch(epoch, start).await?;
        }
        let stored: Vec<StoredBatch> = batches.iter().map(StoredBatch::verbatim).collect();
        if let Err(e) = self.write_stored(&stored, incoming, &mut phases).await {
            // The epochs noted for batches that never landed.
            self.epochs.borrow_mut().truncate_from_end(base_offset);
            return Err(e);
        }
        Ok(AppendOutcome {
            base_offset,
            next_offset: expected,
            log_append_time_ms: None,
            duplicate: false,
            batch_bases,
            write_started: None,
        })
    }

    /// Writes stored batches, which continue the log, as one direct write behind the active
    /// segment's tail, then indexes, caches and records their producers. Under the append lock.
    async fn write_stored(
        &self,
        patched: &[StoredBatch],
        incoming: u64,
        phases: &mut SlowPhases,
    ) -> Result<(), AppendError> {
        let pending = self.state.borrow().active().prepare_append(patched);
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
            state.active_mut().commit_append(patched, preallocated_to);
            for batch in patched {
                let header = batch.header();
                if let Some(done) = producers.record(&header, batch.marker(), now) {
                    super::transactions::index_if_aborted(&mut self.aborted.borrow_mut(), &producers, done);
                }
                state
                    .cache
                    .push(header.base_offset(), header.last_offset(), batch.clone());
            }
        }
        // After the borrow ends: the budget may evict from this very log.
        let mut records = 0i64;
        for batch in patched {
            let header = batch.header();
            records += i64::from(header.record_count());
            self.cache_budget
                .admit(self.myself.borrow().clone(), header.base_offset(), batch.len());
        }
        self.unflushed_records.set(self.unflushed_records.get() + records);
        // Consumers are woken when the records become durable; followers, who read to the
        // log end, now, so they write their copies while this one is flushed.
        self.appended.notify_all();
        self.kick_flusher();
        phases.mark("index and cache");
        phases.report(|took| {
            format!(
                "{}-{}: an append of {incoming} bytes took {took}",
                self.topic, self.partition
            )
        });
        Ok(())
    }

    /// Judges the batches of idempotent producers against their sequences. A retried batch
    /// (only ever alone: produce requests carry one batch per partition) comes back as the
    /// outcome to answer with; a gap or an old epoch is an error.
    pub(super) fn check_sequences(&self, batches: &[Bytes]) -> Result<Option<AppendOutcome>, SequenceError> {
        let producers = self.producers.borrow();
        for batch in batches {
            let header = BatchHeader::new(batch).expect("validated");
            if header.producer_id() < 0 {
                continue;
            }
            if header.is_control() {
                let coordinator_epoch = record::marker_of(batch).map_or(-1, |end| end.coordinator_epoch);
                producers.check_marker(header.producer_id(), header.producer_epoch(), coordinator_epoch)?;
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
    pub(super) async fn roll_if_due(&self, incoming: u64) -> Result<(), StorageError> {
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
    pub(super) async fn seal_active(&self) -> Result<(), StorageError> {
        let work = self.state.borrow_mut().active_mut().seal_work();
        work.run().await
    }
}

/// Times the phases of one append and logs them when the whole took longer than
/// [`crate::constants::SLOW_APPEND_MS`], so a stalled write says where it stalled.
pub(super) struct SlowPhases {
    started: std::time::Instant,
    last: std::time::Instant,
    phases: Vec<(&'static str, std::time::Duration)>,
}

/// Whether this shard may log another slow append this second.
pub(super) fn slow_append_line_allowed() -> bool {
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
