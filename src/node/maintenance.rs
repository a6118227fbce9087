//! Maintenance timers of one shard: retention, producer expiry, recovery-point checkpoints and
//! compaction, each in a low-priority task queue so they never add latency to requests; and
//! sealing every log at shutdown.

use std::future::Future;
use std::rc::Rc;
use std::time::Duration;

use crate::runtime::BackgroundQueue;
use crate::storage::log::PartitionLog;

use super::Shard;

/// Scheduler shares of the background queue; request handling runs with glommio's default
/// 1000, so maintenance gets about a tenth of a busy shard.
const BACKGROUND_SHARES: usize = 100;

impl Shard {
    /// Background log maintenance, in its own low-priority task queue so it never adds latency
    /// to requests: every `log.retention.check.interval.ms`, retention on every owned log and
    /// expiry of idle idempotent producers (`producer.id.expiration.ms`); every
    /// `log.flush.offset.checkpoint.interval.ms`, each log's recovery point; every
    /// `log.cleaner.backoff.ms`, compaction of the compacted ones.
    pub fn start_background(self: &Rc<Self>) {
        let queue = BackgroundQueue::new(BACKGROUND_SHARES, "background");
        let retention = Duration::from_millis(self.config.log_retention_check_interval_ms);
        self.every(queue, retention, |shard, log, now| async move {
            if let Err(e) = log.apply_retention(now).await {
                tracing::error!("{}-{}: retention: {e}", log.topic, log.partition);
            }
            let expired = log.expire_producers(now - shard.config.producer_id_expiration_ms);
            if expired > 0 {
                tracing::debug!("{}-{}: {expired} idle producers expired", log.topic, log.partition);
            }
        });
        let checkpoint = Duration::from_millis(self.config.log_flush_offset_checkpoint_interval_ms);
        self.every(queue, checkpoint, |_, log, _| async move {
            if let Err(e) = log.checkpoint_recovery_point().await {
                tracing::error!("{}-{}: recovery point: {e}", log.topic, log.partition);
            }
        });
        let cleaner = Duration::from_millis(self.config.log_cleaner_backoff_ms);
        self.every(queue, cleaner, |_, log, now| async move {
            if let Err(e) = log.compact(now).await {
                tracing::error!("{}-{}: compaction: {e}", log.topic, log.partition);
            }
        });
    }

    /// Runs `work` on every owned log each `interval`, in `queue`, until the shard closes.
    fn every<F, Fut>(self: &Rc<Self>, queue: BackgroundQueue, interval: Duration, work: F)
    where
        F: Fn(Rc<Shard>, Rc<PartitionLog>, i64) -> Fut + 'static,
        Fut: Future<Output = ()>,
    {
        let shard = self.clone();
        let task = queue.spawn_detached(async move {
            loop {
                crate::runtime::sleep(interval).await;
                if shard.is_closing() {
                    return;
                }
                let logs: Vec<Rc<PartitionLog>> = shard.partitions.borrow().values().cloned().collect();
                for log in logs {
                    work(shard.clone(), log, crate::storage::segment::now_ms()).await;
                }
            }
        });
        if let Err(e) = task {
            tracing::error!("shard {}: starting background work: {e}", self.id);
        }
    }

    /// Stops taking appends and seals every owned log, making all acknowledged data durable.
    pub async fn close_partitions(&self) {
        self.closing.set(true);
        let logs: Vec<Rc<PartitionLog>> = self.partitions.borrow().values().cloned().collect();
        for log in logs {
            if let Err(e) = log.close().await {
                tracing::error!("closing {}-{}: {e}", log.topic, log.partition);
            }
        }
    }
}
