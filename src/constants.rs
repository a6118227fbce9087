//! Every limit Sluice enforces, in one place.
//!
//! A limit has a name ending in `_max` (or `_min`) and a unit in its name. Relations between
//! limits are checked at compile time below, so a change that breaks one fails the build.

/// Largest request frame accepted whatever `socket.request.max.bytes` says (which defaults
/// to it). A frame header claiming more closes the connection before any body is read.
pub const FRAME_BYTES_MAX: usize = 100 * 1024 * 1024;

/// Request bytes one connection may have read but not yet answered. Reading stops (TCP
/// back-pressure) until responses drain below it.
pub const CONNECTION_IN_FLIGHT_BYTES_MAX: usize = 128 * 1024 * 1024;

/// Requests one connection may have in flight (pipelined) at once.
pub const CONNECTION_IN_FLIGHT_REQUESTS_MAX: usize = 64;

/// Messages queued on one shard-to-shard channel of the mesh before senders wait.
pub const MESH_CHANNEL_DEPTH_MAX: usize = 1024;

/// Shards (pinned executors) one process may run.
pub const SHARDS_MAX: usize = 256;

/// Partitions one topic may have.
pub const TOPIC_PARTITIONS_MAX: i32 = 10_000;

/// Partitions the internal offsets topic may have (`offsets.topic.num.partitions`).
pub const OFFSETS_TOPIC_PARTITIONS_MAX: i32 = 1000;

/// Members one classic group may have; a join past it gets GROUP_MAX_SIZE_REACHED.
pub const GROUP_MEMBERS_MAX: usize = 10_000;

/// Longest topic name Kafka accepts.
pub const TOPIC_NAME_BYTES_MAX: usize = 249;

/// Smallest and largest `segment.bytes` accepted (Kafka allows 14 bytes, which makes no sense
/// for direct I/O; one aligned page is the floor here).
pub const SEGMENT_BYTES_MIN: u64 = 4096;
pub const SEGMENT_BYTES_MAX: u64 = i32::MAX as u64;

/// Largest record batch accepted from a producer, whatever `max.message.bytes` says.
pub const BATCH_BYTES_MAX: usize = 64 * 1024 * 1024;

/// Bytes of log between two entries of the sparse offset and time indexes
/// (Kafka's `index.interval.bytes`).
pub const INDEX_INTERVAL_BYTES: u64 = 4096;

/// Alignment of every direct-I/O write and read: one page, which satisfies every block device
/// `O_DIRECT` is used on here.
pub const IO_ALIGNMENT_BYTES: u64 = 4096;

/// Size of one read when scanning a segment during recovery or index rebuild.
pub const SCAN_READ_BYTES: usize = 1024 * 1024;

/// Smallest read issued for a fetch from disk; one read usually covers several batches.
pub const FETCH_READ_BYTES_MIN: usize = 64 * 1024;

/// Space reserved ahead of the write position of an active segment.
pub const PREALLOCATE_STEP_BYTES: u64 = 16 * 1024 * 1024;

/// Largest `batch.cache.bytes` (a shard's cache of recent batches) accepted.
pub const SHARD_CACHE_BYTES_MAX: u64 = 64 * 1024 * 1024 * 1024;

/// Longest `max_wait_ms` a fetch may park for, whatever the client asks.
pub const FETCH_WAIT_MS_MAX: u64 = 60_000;

/// Longest a graceful shutdown waits for in-flight requests before flushing and exiting.
pub const SHUTDOWN_DRAIN_MS_MAX: u64 = 5_000;

/// Batches remembered per idempotent producer and partition: a retry of any of them is
/// answered with its original offsets. Five is the most in-flight requests an idempotent
/// client may have (`max.in.flight.requests.per.connection`).
pub const PRODUCER_BATCHES_KEPT: usize = 5;

/// Idempotent producers one partition remembers; past it the least recently active is
/// forgotten (besides `producer.id.expiration.ms`).
pub const PRODUCERS_PER_PARTITION_MAX: usize = 100_000;

/// Producer ids the metadata authority hands a shard at a time (persisted before use, so
/// ids are never reused across restarts).
pub const PRODUCER_ID_BLOCK: i64 = 1000;

/// Memory one compaction pass may use for its map of keys to their newest offsets. Segments
/// whose keys do not fit wait for a later pass.
pub const COMPACTION_KEY_MAP_BYTES_MAX: usize = 256 * 1024 * 1024;

/// Bytes written to a compacted segment per write.
pub const COMPACTION_WRITE_BYTES: usize = 1024 * 1024;

/// Longest `shard.spin.before.park.us`: a second of busy polling is already a whole core.
pub const SHARD_SPIN_US_MAX: u64 = 1_000_000;

/// Bounds of `shard.io.memory.bytes` (glommio reserves at least 64 KiB).
pub const SHARD_IO_MEMORY_BYTES_MIN: u64 = 64 * 1024;
pub const SHARD_IO_MEMORY_BYTES_MAX: u64 = 4 * 1024 * 1024 * 1024;

/// Largest `shard.ring.depth`.
pub const SHARD_RING_DEPTH_MAX: u64 = 4096;

/// Bytes of queued appends one direct write of a partition may combine. Appends that arrive
/// while a write is in flight are written together next, up to this.
pub const COALESCED_WRITE_BYTES_MAX: usize = 4 * 1024 * 1024;

const _: () = assert!(FRAME_BYTES_MAX <= CONNECTION_IN_FLIGHT_BYTES_MAX);
const _: () = assert!(BATCH_BYTES_MAX <= FRAME_BYTES_MAX);
const _: () = assert!(SEGMENT_BYTES_MIN % IO_ALIGNMENT_BYTES == 0);
const _: () = assert!(PREALLOCATE_STEP_BYTES % IO_ALIGNMENT_BYTES == 0);
const _: () = assert!(SCAN_READ_BYTES as u64 % IO_ALIGNMENT_BYTES == 0);
const _: () = assert!(INDEX_INTERVAL_BYTES > 0);
const _: () = assert!(FETCH_READ_BYTES_MIN <= SCAN_READ_BYTES);
const _: () = assert!(OFFSETS_TOPIC_PARTITIONS_MAX <= TOPIC_PARTITIONS_MAX);
