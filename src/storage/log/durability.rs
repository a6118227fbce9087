//! Durability: one flusher per log fdatasyncs until nothing appended is left unflushed
//! (group commit: appends made during a flush ride the next one), and moves the durable
//! offset and with it, on a single node, the high watermark.

use super::*;

/// A high watermark set from outside that the log cannot take.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HighWatermarkError {
    #[error("high watermark {offset} is past the log end {log_end}")]
    PastLogEnd { offset: Offset, log_end: Offset },
    #[error("high watermark {offset} is below the current {current}")]
    Backwards { offset: Offset, current: Offset },
}

/// Why an acks=all write was not replicated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum NotReplicated {
    #[error("the partition closed")]
    Closed,
    #[error("this broker no longer leads the partition")]
    NoLongerLeader,
}

/// What moves a log's high watermark.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Watermark {
    /// Its own durable offset: a single node, or a leader alone in its ISR.
    Durable,
    /// A leader with followers in its ISR: the least of its own durable offset and the
    /// offset each follower has fetched up to (a follower fetches from its durable end, so
    /// that is what it holds durably). Keyed by node id.
    InSync(std::collections::BTreeMap<i32, Offset>),
    /// A follower: what its leader says ([`PartitionLog::set_high_watermark`]).
    Leader,
}

impl PartitionLog {
    /// Leads with `followers` in the ISR (this broker aside): the high watermark waits for
    /// each of them. A follower newly in the set starts at the current high watermark (it was
    /// in sync up to at least there); one already tracked keeps its offset.
    pub fn lead_with(&self, followers: &[i32]) {
        let next = if followers.is_empty() {
            Watermark::Durable
        } else {
            let current = self.high_watermark.get();
            let known = match &*self.watermark.borrow() {
                Watermark::InSync(known) => known.clone(),
                _ => Default::default(),
            };
            Watermark::InSync(
                followers
                    .iter()
                    .map(|f| (*f, known.get(f).copied().unwrap_or(current)))
                    .collect(),
            )
        };
        *self.watermark.borrow_mut() = next;
        self.recompute_high_watermark();
    }

    /// Follows a leader: the high watermark is what the leader says. Writers waiting for
    /// their records to replicate are woken (they are answered NOT_LEADER_OR_FOLLOWER).
    pub fn follow_leader(&self) {
        let was_leading = self.watermark.replace(Watermark::Leader) != Watermark::Leader;
        if was_leading {
            self.signal.notify_all();
        }
    }

    /// The rule in force, for tests and metrics.
    pub fn watermark(&self) -> Watermark {
        self.watermark.borrow().clone()
    }

    /// A follower fetched from `offset`: it holds everything before it. Moves the high
    /// watermark when the follower is in the ISR.
    pub fn follower_fetched(&self, follower: i32, offset: Offset) {
        let changed = match &mut *self.watermark.borrow_mut() {
            Watermark::InSync(followers) => match followers.get_mut(&follower) {
                Some(at) if offset > *at => {
                    *at = offset.min(self.end_offset());
                    true
                }
                _ => false,
            },
            _ => false,
        };
        if changed {
            self.recompute_high_watermark();
        }
    }

    /// Moves the high watermark as the rule in force allows (never backwards).
    fn recompute_high_watermark(&self) {
        let target = match &*self.watermark.borrow() {
            Watermark::Durable => self.durable.get(),
            Watermark::InSync(followers) => followers.values().copied().fold(self.durable.get(), Offset::min),
            Watermark::Leader => return,
        };
        if target > self.high_watermark.get() {
            self.move_high_watermark(target);
            self.signal.notify_all();
        }
    }

    /// Waits until the high watermark reaches `target` (acks=all on a replicated partition):
    /// every in-sync replica holds it. Fails once this log stops leading or closes. The
    /// caller bounds the wait.
    pub async fn wait_high_watermark(&self, target: Offset) -> Result<(), NotReplicated> {
        loop {
            if self.high_watermark.get() >= target {
                return Ok(());
            }
            if self.closed.get() {
                return Err(NotReplicated::Closed);
            }
            if *self.watermark.borrow() == Watermark::Leader {
                return Err(NotReplicated::NoLongerLeader);
            }
            let woken = self.signal.wait();
            if self.durable.get() < target {
                self.kick_flusher();
            }
            let _ = woken.await;
        }
    }

    /// Moves the durable offset to `offset` and, by the rule in force, the high watermark
    /// with it. Neither moves backwards nor passes the log end: a
    /// consumer must never be shown a record the log does not hold, nor lose sight of one it
    /// was shown.
    pub(super) fn advance_durable(&self, offset: Offset) {
        let (current, end) = (self.durable.get(), self.end_offset());
        assert!(
            current <= offset && offset <= end,
            "{}-{}: durable offset {current} -> {offset} with log end {end}",
            self.topic,
            self.partition
        );
        self.durable.set(offset);
        self.recompute_high_watermark();
    }

    /// The one place the high watermark moves forward; asserts it stays monotonic and within
    /// the log.
    fn move_high_watermark(&self, offset: Offset) {
        let (current, end) = (self.high_watermark.get(), self.end_offset());
        assert!(
            current <= offset && offset <= end,
            "{}-{}: high watermark {current} -> {offset} with log end {end}",
            self.topic,
            self.partition
        );
        self.high_watermark.set(offset);
    }

    /// Sets the high watermark from outside, as replication does (a leader once its in-sync
    /// replicas hold `offset`; a follower from its leader's answer). From then on it no longer
    /// follows the local flush. It may not pass the log end nor move back (only truncation
    /// lowers it). Fetches waiting for new data are woken.
    pub fn set_high_watermark(&self, offset: Offset) -> Result<(), HighWatermarkError> {
        let (current, log_end) = (self.high_watermark.get(), self.end_offset());
        if offset > log_end {
            return Err(HighWatermarkError::PastLogEnd { offset, log_end });
        }
        if offset < current {
            return Err(HighWatermarkError::Backwards { offset, current });
        }
        *self.watermark.borrow_mut() = Watermark::Leader;
        self.move_high_watermark(offset);
        self.signal.notify_all();
        Ok(())
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
    pub(super) fn kick_flusher(&self) {
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
    pub(super) async fn flush_loop(self: Rc<Self>) {
        loop {
            let delay_ms = self.config.borrow().flush_ms.clamp(0, FLUSH_DELAY_MS_MAX);
            let pressing = self.unflushed_records.get() >= self.config.borrow().flush_messages;
            if delay_ms > 0 && !pressing {
                let woken = self.urgent.wait();
                let delay = glommio::timer::sleep(std::time::Duration::from_millis(delay_ms as u64));
                futures::future::select(woken, Box::pin(delay)).await;
            }
            let target = self.end_offset();
            let truncations = self.truncations.get();
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
                    // A truncation in progress (an odd count) or run during the flush replaced
                    // the file it flushed: the next round flushes the new tail.
                    let truncated = truncations % 2 == 1 || truncations != self.truncations.get();
                    if target > self.durable.get() && !truncated {
                        self.advance_durable(target);
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
}
