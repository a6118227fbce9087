//! Pinned executors: one thread per CPU, each with its own io_uring reactor.

use std::future::Future;
use std::time::Duration;

use glommio::{LocalExecutorBuilder, Placement};

/// How one executor is built.
#[derive(Debug, Clone)]
pub struct ExecutorOptions {
    /// The thread's name, as `top` and `perf` show it.
    pub name: String,
    /// The CPU the thread is pinned to.
    pub cpu: usize,
    /// Memory registered with the rings for direct I/O buffers.
    pub io_memory_bytes: usize,
    /// Entries in each io_uring ring.
    pub ring_depth: usize,
    /// How long an idle executor spins before it parks (zero: it parks at once).
    pub spin_before_park: Duration,
}

/// A running executor thread.
pub struct Executor(glommio::ExecutorJoinHandle<()>);

impl Executor {
    /// Starts a thread pinned to `options.cpu` that runs `body()` to its end.
    pub fn spawn<F, Fut>(options: &ExecutorOptions, body: F) -> Result<Executor, String>
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = ()> + 'static,
    {
        let mut builder = LocalExecutorBuilder::new(Placement::Fixed(options.cpu))
            .name(&options.name)
            .io_memory(options.io_memory_bytes)
            .ring_depth(options.ring_depth);
        if !options.spin_before_park.is_zero() {
            builder = builder.spin_before_park(options.spin_before_park);
        }
        builder
            .spawn(body)
            .map(Executor)
            .map_err(|e| format!("starting the executor on CPU {}: {e}", options.cpu))
    }

    /// Waits for the thread to end; an error when its body panicked.
    pub fn join(self) -> Result<(), String> {
        self.0.join().map_err(|e| e.to_string())
    }
}
