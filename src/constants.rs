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

/// Groups that may have configs of their own (IncrementalAlterConfigs on GROUP resources);
/// more are refused with POLICY_VIOLATION. Group ids are bounded by the protocol's string
/// length, so this bounds what the metadata file holds for them.
pub const GROUP_CONFIGS_MAX: usize = 1000;

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

/// Bytes the records of one compressed batch may decompress to while produce validates them;
/// a batch that expands past it is refused (INVALID_RECORD) once this much is decoded, so a
/// decompression bomb costs one shard at most this much memory and time. 256 MiB leaves
/// room for a full `BATCH_BYTES_MAX` batch compressed 4:1, or a default 1 MiB
/// `max.message.bytes` batch of highly repetitive records compressed 256:1.
pub const BATCH_DECOMPRESSED_BYTES_MAX: usize = 256 * 1024 * 1024;

/// Bytes of decompression scratch a shard keeps between batches; a larger batch's buffer is
/// freed once it is validated, so a rare huge batch does not pin its memory.
pub const DECOMPRESSED_SCRATCH_BYTES_KEPT: usize = 8 * 1024 * 1024;

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

/// Space reserved ahead of the write position of an active segment grows with the segment:
/// the first step is small, so thousands of near-empty partitions cost little disk, and each
/// later step doubles the last, up to the largest.
pub const PREALLOCATE_STEP_BYTES_MIN: u64 = 64 * 1024;
pub const PREALLOCATE_STEP_BYTES_MAX: u64 = 16 * 1024 * 1024;

/// Largest `batch.cache.bytes` (a shard's cache of recent batches) accepted.
pub const SHARD_CACHE_BYTES_MAX: u64 = 64 * 1024 * 1024 * 1024;

/// Longest `max_wait_ms` a fetch may park for, whatever the client asks.
pub const FETCH_WAIT_MS_MAX: u64 = 60_000;

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

/// ACLs a cluster keeps: CreateAcls past it is refused. Every ACL is in each shard's
/// metadata snapshot, and DescribeAcls may list them all in one response.
pub const MAX_ACLS: usize = 100_000;

/// Filters one DeleteAcls request may carry: each is matched against every ACL on the
/// metadata authority, so their product bounds the work one request asks of it.
pub const ACL_FILTERS_PER_REQUEST_MAX: usize = 1000;

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

/// Largest `queued.max.request.bytes`: the request bytes in flight across all of one shard's
/// connections. Frames take their buffer from it as their bytes arrive.
pub const SHARD_QUEUED_REQUEST_BYTES_MAX: u64 = 64 * 1024 * 1024 * 1024;

/// Longest `connections.max.idle.ms` and `request.frame.timeout.ms` accepted (a day).
pub const CONNECTION_TIMEOUT_MS_MAX: u64 = 24 * 60 * 60 * 1000;

/// Lines per second a shard logs about connections it closed for bad input; the rest are
/// counted in metrics only, so a flood of bad requests cannot flood the log.
pub const CONNECTION_ERROR_LOG_LINES_PER_SECOND_MAX: u32 = 10;

/// How long an arriving frame must have received nothing (its client stopped sending, or it
/// waits for budget above its share) before it may be evicted for frames within their share
/// when the shard's request memory is spent.
pub const ARRIVING_FRAME_SILENCE_EVICT_MS: u64 = 500;

/// Largest `max.partitions`: partitions one broker may hold, internal ones included.
pub const BROKER_PARTITIONS_MAX: u64 = 1_000_000;

/// Largest `fetch.max.bytes`: the record bytes of one fetch response.
pub const FETCH_RESPONSE_BYTES_MAX: u64 = 1024 * 1024 * 1024;

/// Largest `fetch.read.memory.bytes`: bytes one shard may hold read from disk for fetches
/// that are being answered.
pub const SHARD_FETCH_READ_BYTES_MAX: u64 = 64 * 1024 * 1024 * 1024;

/// Each connection's read buffer: small requests arrive through it whole (length and body
/// in one read); large frame bodies bypass it once they flow. Every open connection holds
/// one, so it is kept small.
pub const CONNECTION_READ_BUFFER_BYTES: usize = 16 * 1024;

/// Largest request head (request line and headers) a metrics scrape may send.
pub const METRICS_REQUEST_HEAD_BYTES_MAX: usize = 8 * 1024;

/// Bytes read per step when a coordinator replays its internal partition (start-up).
pub const COORDINATOR_REPLAY_READ_BYTES: usize = 1024 * 1024;

/// Longest a coordinator's write waits for the partition's in-sync replicas before the
/// change is refused with COORDINATOR_NOT_AVAILABLE (Kafka's `offsets.commit.timeout.ms`
/// default).
pub const COORDINATOR_REPLICATION_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);
/// How long a request for a transactional id waits for the id's change in flight (a
/// completing transaction's markers, mostly) before it is answered CONCURRENT_TRANSACTIONS.
/// Waiting instead of answering at once spares the client its retry backoff (librdkafka's
/// `retry.backoff.ms`, 100 ms) after every commit.
pub const TXN_BUSY_WAIT_MAX: std::time::Duration = std::time::Duration::from_secs(5);

/// The highest transaction version (Kafka's `transaction.version` feature) served: 2, KIP-890
/// part 2.
pub const TRANSACTION_VERSION_MAX: i16 = 2;

/// Longest `flush.ms` honoured: the high watermark waits for flushes, so data must become
/// readable within this even if a topic asks for less frequent flushing.
pub const FLUSH_DELAY_MS_MAX: i64 = 60_000;

const _: () = assert!(FRAME_BYTES_MAX <= CONNECTION_IN_FLIGHT_BYTES_MAX);
const _: () = assert!(BATCH_BYTES_MAX <= FRAME_BYTES_MAX);
// Whatever a producer may send uncompressed, it may also send compressed.
const _: () = assert!(BATCH_BYTES_MAX <= BATCH_DECOMPRESSED_BYTES_MAX);
const _: () = assert!(DECOMPRESSED_SCRATCH_BYTES_KEPT <= BATCH_DECOMPRESSED_BYTES_MAX);
const _: () = assert!(SEGMENT_BYTES_MIN % IO_ALIGNMENT_BYTES == 0);
const _: () = assert!(PREALLOCATE_STEP_BYTES_MIN % IO_ALIGNMENT_BYTES == 0);
const _: () = assert!(PREALLOCATE_STEP_BYTES_MAX % IO_ALIGNMENT_BYTES == 0);
const _: () = assert!(PREALLOCATE_STEP_BYTES_MIN <= PREALLOCATE_STEP_BYTES_MAX);
const _: () = assert!(FRAME_BYTES_MAX as u64 <= SHARD_QUEUED_REQUEST_BYTES_MAX);
const _: () = assert!(BATCH_BYTES_MAX as u64 <= FETCH_RESPONSE_BYTES_MAX);
const _: () = assert!(SCAN_READ_BYTES as u64 % IO_ALIGNMENT_BYTES == 0);
const _: () = assert!(INDEX_INTERVAL_BYTES > 0);
const _: () = assert!(FETCH_READ_BYTES_MIN <= SCAN_READ_BYTES);
const _: () = assert!(OFFSETS_TOPIC_PARTITIONS_MAX <= TOPIC_PARTITIONS_MAX);

/// An append slower than this is logged with the time of each of its phases (lock, roll,
/// preallocation, direct write, index and cache).
pub const SLOW_APPEND_MS: u64 = 100;

/// Slow-append lines one shard writes per second at most: a stalled disk slows every
/// partition's appends at once.
pub const SLOW_APPEND_LINES_PER_SECOND_MAX: u32 = 5;

/// Controller voters a quorum may have (Raft needs a majority of them for every change).
pub const CLUSTER_VOTERS_MAX: usize = 9;

/// Replicas one partition may have.
pub const REPLICATION_FACTOR_MAX: i16 = 16;

/// Largest frame on the controller port (Raft messages, snapshots in chunks, metadata images).
pub const CONTROLLER_FRAME_BYTES_MAX: usize = 64 * 1024 * 1024;

/// Bytes of one snapshot chunk sent to a lagging voter.
pub const CONTROLLER_SNAPSHOT_CHUNK_BYTES: u64 = 4 * 1024 * 1024;

/// Connections the controller port serves at once (peers and brokers); more are refused.
pub const CONTROLLER_CONNECTIONS_MAX: usize = 1024;

/// Raft entries applied since the last snapshot before a new one is taken.
pub const CONTROLLER_SNAPSHOT_EVERY_ENTRIES: u64 = 1024;

/// Records the controller's log file may hold past its live entries before it is rewritten.
pub const CONTROLLER_LOG_REWRITE_SLACK: usize = 4096;

/// Longest a broker's metadata request waits at the controller for a newer image.
pub const CONTROLLER_IMAGE_WAIT_MS: u64 = 1_000;

/// Longest one controller call (connect, send, answer) may take before it is retried elsewhere.
pub const CONTROLLER_CALL_TIMEOUT_MS: u64 = 5_000;
