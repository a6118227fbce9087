//! # Sluice
//!
//! A Kafka-compatible event-streaming broker, thread-per-core on io_uring (glommio).
//!
//! ## What runs where
//! - `sluice serve` starts one **shard** per configured CPU ([`node::startup`]): an executor
//!   pinned to that CPU with its own io_uring rings ([`runtime`], which knows no protocol).
//!   Shards share nothing mutable and talk only through the mesh ([`node::Shard::invoke_on`],
//!   over [`runtime::mesh`]). A [`node::Shard`] is the per-shard context: its partition
//!   registry, groups, metadata snapshot and budgets.
//! - Every shard listens on the Kafka port with SO_REUSEPORT and owns the connections it
//!   accepts ([`net`]). Requests are decoded on the connection's shard ([`kafka`]) and the
//!   work for each partition runs on the partition's owner: one hop per (request, shard).
//!   Handlers are found through one registry ([`kafka::handlers`]: dispatch and ApiVersions
//!   come from each handler's own `API`) and each receives a [`kafka::context::RequestContext`]
//!   (its shard, the connection's session and principal, client id, version).
//! - Each partition is owned by exactly one shard, chosen by the pure
//!   [`node::placement`] function and recorded in topic metadata. Its log
//!   ([`storage::log::PartitionLog`]) is segmented, appended with direct I/O, indexed
//!   sparsely, and fronted by a cache of recent batches. It keeps its offsets explicitly
//!   ([`storage::log::LogOffsets`]: log start, last stable, high watermark, durable, log end)
//!   and its leader epoch with a persisted epoch cache, and offers what replication will
//!   call: verbatim appends, truncation, a high watermark set from outside. Batches are read
//!   and patched as bytes through [`record`], the leaf every layer shares.
//! - Consumer groups are coordinated on the shard owning their `__consumer_offsets` partition
//!   ([`group`]); offsets and generations are records in that partition, routed to, written
//!   and replayed by the machinery any coordinator of an internal topic shares
//!   ([`coordinator`]). A coordinator sees its shard only through
//!   [`coordinator::CoordinatorHost`].
//! - Topic metadata has one writer, shard 0 ([`node::authority`]); every shard reads an
//!   immutable snapshot ([`metadata::MetadataSnapshot`]).
//! - Idempotent producers are deduplicated by the partition's log
//!   ([`storage::producers`]); compacted topics are cleaned in each shard's low-priority
//!   background queue ([`storage::compaction`]), beside retention and recovery points.
//! - Each shard counts its own metrics ([`metrics`]); shard 0 serves `GET /metrics` and
//!   gathers the others over the mesh. `sluice bench` ([`cli::bench`]) is the load generator.
//!
//! - Config ([`config`]) is typed and validated once; topic keys come from one table
//!   ([`config::TOPIC_KEYS`]). Protocol failures are [`error::ProtocolError`]s, storage
//!   failures [`error::StorageError`]s that keep their operation and path.
//!
//! ## Limits
//! Every bound (frame size, in-flight bytes, partitions, ...) is named in [`constants`]. Hostile
//! array counts in requests cannot abort the process: see [`alloc`].

pub mod acl;
pub mod alloc;
pub mod cli;
pub mod cluster;
pub mod config;
pub mod constants;
pub mod coordinator;
pub mod error;
pub mod group;
pub mod ids;
pub mod kafka;
pub mod metadata;
pub mod metrics;
pub mod net;
pub mod node;
pub mod record;
pub mod replication;
pub mod runtime;
pub mod sasl;
pub mod signal;
pub mod storage;
pub mod text;
pub mod txn;
