//! Tasks and timers on the current executor.

use std::future::Future;
use std::time::Duration;

use glommio::{Latency, Shares, TaskQueueHandle};

/// Runs `future` on this executor; dropping the returned task cancels it.
pub fn spawn<T: 'static>(future: impl Future<Output = T> + 'static) -> glommio::Task<T> {
    glommio::spawn_local(future)
}

/// Runs `future` on this executor to its end, with nobody waiting for it.
pub fn spawn_detached(future: impl Future<Output = ()> + 'static) {
    glommio::spawn_local(future).detach();
}

/// Waits `duration` on this executor's timer.
pub async fn sleep(duration: Duration) {
    glommio::timer::sleep(duration).await;
}

/// `future`'s output, or `None` when `duration` passes first (the future is dropped).
pub async fn timeout<T>(duration: Duration, future: impl Future<Output = T>) -> Option<T> {
    let future = std::pin::pin!(future);
    let timer = std::pin::pin!(sleep(duration));
    match futures::future::select(future, timer).await {
        futures::future::Either::Left((output, _)) => Some(output),
        futures::future::Either::Right(_) => None,
    }
}

/// Runs `work` on this executor's blocking thread (pinned beside it), so a slow system call
/// such as fsync never stalls the reactor.
pub async fn spawn_blocking<F, R>(work: F) -> R
where
    F: FnOnce() -> R + Send + 'static,
    R: Send + 'static,
{
    glommio::executor().spawn_blocking(work).await
}

/// A low-priority task queue: work spawned into it gets `shares` against the default queue's
/// 1000 and never competes for latency.
#[derive(Clone, Copy)]
pub struct BackgroundQueue(TaskQueueHandle);

impl BackgroundQueue {
    pub fn new(shares: usize, name: &str) -> BackgroundQueue {
        BackgroundQueue(glommio::executor().create_task_queue(Shares::Static(shares), Latency::NotImportant, name))
    }

    /// Runs `future` in this queue to its end, with nobody waiting for it.
    pub fn spawn_detached(&self, future: impl Future<Output = ()> + 'static) -> Result<(), String> {
        glommio::spawn_local_into(future, self.0)
            .map(|task| {
                task.detach();
            })
            .map_err(|e| e.to_string())
    }
}

/// File I/O this executor's rings completed since the previous call (glommio resets them).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct IoCounts {
    pub reads: u64,
    pub read_bytes: u64,
    pub writes: u64,
    pub write_bytes: u64,
}

pub fn io_counts() -> IoCounts {
    let stats = glommio::executor().io_stats().all_rings();
    let (reads, read_bytes) = stats.file_reads();
    let (buffered_reads, buffered_read_bytes) = stats.file_buffered_reads();
    let (writes, write_bytes) = stats.file_writes();
    let (buffered_writes, buffered_write_bytes) = stats.file_buffered_writes();
    IoCounts {
        reads: reads + buffered_reads,
        read_bytes: read_bytes + buffered_read_bytes,
        writes: writes + buffered_writes,
        write_bytes: write_bytes + buffered_write_bytes,
    }
}
