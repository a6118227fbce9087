//! The runtime: pinned executors, task queues, timers and the cross-shard mesh.
//!
//! It knows no protocol and no storage format: it runs futures on one executor per CPU and
//! carries closures between them. Outside `net/` and the storage I/O layer, code reaches
//! glommio only through here, so the executor could change without the broker noticing.
//!
//! State here is per thread: a task spawned runs on the executor that spawned it, and a
//! [`mesh::Job`] runs on the executor it was sent to, with that executor's context.

pub mod executor;
pub mod mesh;
pub mod tasks;

pub use glommio::sync::Semaphore;
pub use glommio::Task;
pub use tasks::{io_counts, sleep, spawn, spawn_blocking, spawn_detached, timeout, BackgroundQueue, IoCounts};
