//! The Kafka listener and connections. Every shard accepts on the shared port
//! (SO_REUSEPORT) and owns the connections it accepted; requests are decoded on the
//! connection's shard.

pub mod connection;
pub mod error_log;
pub mod listener;
pub mod metrics_http;
pub mod request_memory;
