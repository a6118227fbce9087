//! The Kafka listener and connections. Every shard accepts on the shared port
//! (SO_REUSEPORT) and owns the connections it accepted; requests are decoded on the
//! connection's shard.

pub mod client;
pub mod connection;
pub mod error_log;
pub mod listener;
pub mod metrics_http;
pub mod request_memory;
pub mod tls;

use std::os::fd::RawFd;
use std::rc::Rc;

use crate::config::ServerConfig;
use crate::node::Shard;
use crate::runtime::Task;
use error_log::ErrorLog;
use request_memory::RequestMemory;

/// Starts serving `shard`'s clients: every Kafka listener of the broker and, when given, the
/// metrics endpoint on the bound socket `metrics_fd`. Dropping the tasks stops them.
pub fn serve_shard(shard: Rc<Shard>, metrics_fd: Option<RawFd>) -> Result<Vec<Task<()>>, String> {
    let shared = Rc::new(ShardConnections::new(&shard.config));
    let mut serving = Vec::new();
    for bound in &shard.identity.listeners {
        serving.push(listener::listen(shard.clone(), shared.clone(), Rc::new(bound.clone()))?);
    }
    if let Some(fd) = metrics_fd {
        serving.push(metrics_http::serve_listener(shard, fd));
    }
    Ok(serving)
}

/// What all of one shard's connections share.
pub struct ShardConnections {
    /// Request bytes in flight across the shard's connections (`queued.max.request.bytes`).
    pub request_memory: Rc<RequestMemory>,
    /// The rate limit on logging connection errors.
    pub error_log: ErrorLog,
}

impl ShardConnections {
    pub fn new(config: &ServerConfig) -> ShardConnections {
        ShardConnections {
            request_memory: Rc::new(RequestMemory::new(config.queued_max_request_bytes)),
            error_log: ErrorLog::default(),
        }
    }
}
