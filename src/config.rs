//! Typed configuration, validated once at start-up.
//!
//! The server reads an optional TOML file; flags override it. Keys that Kafka has use Kafka's
//! names (`num.partitions`, `segment.bytes`, ...), so an operator's existing knowledge applies.
//! Topic-level defaults live in [`TopicConfig`]; a topic's own overrides are applied on top
//! of them with [`TopicConfig::set`], the one place a topic config value is parsed.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::constants::{SEGMENT_BYTES_MAX, SEGMENT_BYTES_MIN, SHARDS_MAX};
use crate::error::ConfigError;

/// Everything `sluice serve` runs with.
#[derive(Clone, Debug, Deserialize)]
pub struct ServerConfig {
    /// Address the Kafka listener binds on every shard.
    #[serde(default = "default_listen")]
    pub listen: String,
    /// Address clients are told to connect to; the bound listen address when unset.
    #[serde(default)]
    pub advertise: Option<String>,
    #[serde(default = "default_data_dir", rename = "data-dir", alias = "data_dir")]
    pub data_dir: PathBuf,
    /// CPUs to pin one shard each to, as a list such as `0,1` or `0-3`; all CPUs when unset.
    #[serde(default)]
    pub cores: Option<String>,
    #[serde(default, rename = "node.id")]
    pub node_id: i32,
    #[serde(default = "default_num_partitions", rename = "num.partitions")]
    pub num_partitions: i32,
    #[serde(default = "default_true", rename = "auto.create.topics.enable")]
    pub auto_create_topics_enable: bool,
    /// Partitions of the internal `__consumer_offsets` topic, set when it is first created.
    #[serde(default = "default_offsets_partitions", rename = "offsets.topic.num.partitions")]
    pub offsets_topic_num_partitions: i32,
    /// How long committed offsets of an empty group are kept.
    #[serde(default = "default_offsets_retention_minutes", rename = "offsets.retention.minutes")]
    pub offsets_retention_minutes: i64,
    /// Largest metadata string an offset commit may carry.
    #[serde(default = "default_offset_metadata_max_bytes", rename = "offset.metadata.max.bytes")]
    pub offset_metadata_max_bytes: usize,
    /// How long a group forming from empty waits for more members before its first generation.
    #[serde(
        default = "default_initial_rebalance_delay_ms",
        rename = "group.initial.rebalance.delay.ms"
    )]
    pub group_initial_rebalance_delay_ms: u64,
    /// Session timeout of consumer-protocol (KIP-848) members, set by the broker.
    #[serde(
        default = "default_consumer_session_timeout_ms",
        rename = "group.consumer.session.timeout.ms"
    )]
    pub group_consumer_session_timeout_ms: u64,
    /// How often consumer-protocol members are told to heartbeat.
    #[serde(
        default = "default_consumer_heartbeat_interval_ms",
        rename = "group.consumer.heartbeat.interval.ms"
    )]
    pub group_consumer_heartbeat_interval_ms: u64,
    #[serde(default = "default_min_session_timeout_ms", rename = "group.min.session.timeout.ms")]
    pub group_min_session_timeout_ms: u64,
    #[serde(default = "default_max_session_timeout_ms", rename = "group.max.session.timeout.ms")]
    pub group_max_session_timeout_ms: u64,
    /// How often each shard applies `retention.ms` and `retention.bytes`.
    #[serde(
        default = "default_retention_check_interval_ms",
        rename = "log.retention.check.interval.ms"
    )]
    pub log_retention_check_interval_ms: u64,
    /// How long a shard's reactor busy-polls for I/O and messages before parking its thread
    /// (µs; 0 parks at once). Trades a core's idle time for wake-up latency.
    #[serde(default, rename = "shard.spin.before.park.us")]
    pub shard_spin_before_park_us: u64,
    /// Memory each shard registers with io_uring for direct-I/O buffers; appends and reads
    /// beyond it use ordinary allocations.
    #[serde(default = "default_shard_io_memory_bytes", rename = "shard.io.memory.bytes")]
    pub shard_io_memory_bytes: u64,
    /// Submission-queue depth of each shard's io_uring rings.
    #[serde(default = "default_shard_ring_depth", rename = "shard.ring.depth")]
    pub shard_ring_depth: u64,
    /// Where Prometheus scrapes per-shard metrics (`GET /metrics`); empty turns it off.
    #[serde(default = "default_metrics_listen", rename = "metrics.listen")]
    pub metrics_listen: String,
    /// How often each partition records its durable offset as its recovery point.
    #[serde(
        default = "default_checkpoint_interval_ms",
        rename = "log.flush.offset.checkpoint.interval.ms"
    )]
    pub log_flush_offset_checkpoint_interval_ms: u64,
    /// How often each shard looks for compacted topics with newly closed segments.
    #[serde(default = "default_cleaner_backoff_ms", rename = "log.cleaner.backoff.ms")]
    pub log_cleaner_backoff_ms: u64,
    /// `segment.bytes` of the offsets topic, applied when it is created.
    #[serde(default = "default_offsets_segment_bytes", rename = "offsets.topic.segment.bytes")]
    pub offsets_topic_segment_bytes: u64,
    /// How long a partition remembers an idempotent producer that stopped writing to it.
    #[serde(default = "default_producer_id_expiration_ms", rename = "producer.id.expiration.ms")]
    pub producer_id_expiration_ms: i64,
    /// Largest request frame a client may send; a larger one closes its connection.
    #[serde(default = "default_socket_request_max_bytes", rename = "socket.request.max.bytes")]
    pub socket_request_max_bytes: u64,
    /// Bytes of recent batches each shard keeps in memory for tailing consumers.
    #[serde(default = "default_batch_cache_bytes", rename = "batch.cache.bytes")]
    pub batch_cache_bytes: u64,
    /// Request bytes one shard holds across all its connections (read, not yet answered).
    /// A frame takes its buffer from this budget as its bytes arrive, so a client that only
    /// announces a large frame costs nothing. Kafka's key, but per shard.
    #[serde(default = "default_queued_max_request_bytes", rename = "queued.max.request.bytes")]
    pub queued_max_request_bytes: u64,
    /// A connection with nothing in flight that sends nothing for this long is closed.
    #[serde(default = "default_connections_max_idle_ms", rename = "connections.max.idle.ms")]
    pub connections_max_idle_ms: u64,
    /// Longest a request frame may take to arrive once its length has; past it the
    /// connection is closed and the frame's budget returned.
    #[serde(default = "default_request_frame_timeout_ms", rename = "request.frame.timeout.ms")]
    pub request_frame_timeout_ms: u64,
    /// Partitions this broker may hold, internal ones included; creating more is refused.
    #[serde(default = "default_max_partitions", rename = "max.partitions")]
    pub max_partitions: u64,
    /// Record bytes one fetch response may carry, whatever the request's `max_bytes` says
    /// (one batch may exceed it, so a consumer always progresses).
    #[serde(default = "default_fetch_max_bytes", rename = "fetch.max.bytes")]
    pub fetch_max_bytes: u64,
    /// Bytes one shard may hold read from disk for fetches being answered; reads past it
    /// wait their turn.
    #[serde(default = "default_fetch_read_memory_bytes", rename = "fetch.read.memory.bytes")]
    pub fetch_read_memory_bytes: u64,
    #[serde(flatten)]
    pub topic_defaults: TopicConfig,
    /// Keys nothing above took; any here is an error (serde cannot deny unknown fields
    /// through `flatten`, so they are caught and refused in [`ServerConfig::from_toml`]).
    #[serde(flatten)]
    unknown: BTreeMap<String, toml::Value>,
}

fn default_listen() -> String {
    "127.0.0.1:9092".to_string()
}
fn default_data_dir() -> PathBuf {
    PathBuf::from("./sluice-data")
}
fn default_num_partitions() -> i32 {
    1
}
fn default_true() -> bool {
    true
}
fn default_offsets_partitions() -> i32 {
    50
}
fn default_shard_io_memory_bytes() -> u64 {
    10 * 1024 * 1024
}
fn default_shard_ring_depth() -> u64 {
    128
}
fn default_metrics_listen() -> String {
    "127.0.0.1:9644".into()
}
fn default_checkpoint_interval_ms() -> u64 {
    60_000
}
fn default_cleaner_backoff_ms() -> u64 {
    15_000
}
fn default_offsets_segment_bytes() -> u64 {
    100 * 1024 * 1024
}
fn default_producer_id_expiration_ms() -> i64 {
    24 * 60 * 60 * 1000
}
fn default_offsets_retention_minutes() -> i64 {
    7 * 24 * 60
}
fn default_offset_metadata_max_bytes() -> usize {
    4096
}
fn default_initial_rebalance_delay_ms() -> u64 {
    3000
}
fn default_consumer_session_timeout_ms() -> u64 {
    45_000
}
fn default_consumer_heartbeat_interval_ms() -> u64 {
    5_000
}
fn default_min_session_timeout_ms() -> u64 {
    6000
}
fn default_max_session_timeout_ms() -> u64 {
    1_800_000
}
fn default_retention_check_interval_ms() -> u64 {
    300_000
}
fn default_socket_request_max_bytes() -> u64 {
    crate::constants::FRAME_BYTES_MAX as u64
}
fn default_queued_max_request_bytes() -> u64 {
    256 * 1024 * 1024
}
fn default_connections_max_idle_ms() -> u64 {
    600_000
}
fn default_request_frame_timeout_ms() -> u64 {
    30_000
}
fn default_max_partitions() -> u64 {
    10_000
}
fn default_fetch_max_bytes() -> u64 {
    55 * 1024 * 1024
}
fn default_fetch_read_memory_bytes() -> u64 {
    256 * 1024 * 1024
}
fn default_batch_cache_bytes() -> u64 {
    256 * 1024 * 1024
}

impl Default for ServerConfig {
    fn default() -> Self {
        toml::from_str("").expect("the empty config is valid")
    }
}

impl ServerConfig {
    pub fn from_toml(text: &str) -> Result<ServerConfig, ConfigError> {
        let config: ServerConfig = toml::from_str(text).map_err(|e| ConfigError::new("config file", e.to_string()))?;
        if let Some(key) = config.unknown.keys().next() {
            return Err(ConfigError::new(key.clone(), "unknown config key"));
        }
        Ok(config)
    }

    /// Checks relations no single field can check; called once before the shards start.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.listen_addr()?;
        if let Some(advertise) = &self.advertise {
            parse_host_port(advertise).map_err(|reason| ConfigError::new("advertise", reason))?;
        }
        if self.num_partitions < 1 {
            return Err(ConfigError::new("num.partitions", "must be at least 1"));
        }
        if !(1..=crate::constants::OFFSETS_TOPIC_PARTITIONS_MAX).contains(&self.offsets_topic_num_partitions) {
            return Err(ConfigError::new(
                "offsets.topic.num.partitions",
                format!(
                    "must be between 1 and {}",
                    crate::constants::OFFSETS_TOPIC_PARTITIONS_MAX
                ),
            ));
        }
        if self.log_retention_check_interval_ms == 0 {
            return Err(ConfigError::new(
                "log.retention.check.interval.ms",
                "must be at least 1",
            ));
        }
        use crate::constants::{
            SHARD_IO_MEMORY_BYTES_MAX, SHARD_IO_MEMORY_BYTES_MIN, SHARD_RING_DEPTH_MAX, SHARD_SPIN_US_MAX,
        };
        if self.shard_spin_before_park_us > SHARD_SPIN_US_MAX {
            return Err(ConfigError::new(
                "shard.spin.before.park.us",
                format!("must be at most {SHARD_SPIN_US_MAX}"),
            ));
        }
        if !(SHARD_IO_MEMORY_BYTES_MIN..=SHARD_IO_MEMORY_BYTES_MAX).contains(&self.shard_io_memory_bytes) {
            return Err(ConfigError::new(
                "shard.io.memory.bytes",
                format!("must be between {SHARD_IO_MEMORY_BYTES_MIN} and {SHARD_IO_MEMORY_BYTES_MAX}"),
            ));
        }
        if !(1..=SHARD_RING_DEPTH_MAX).contains(&self.shard_ring_depth) {
            return Err(ConfigError::new(
                "shard.ring.depth",
                format!("must be between 1 and {SHARD_RING_DEPTH_MAX}"),
            ));
        }
        if self.log_flush_offset_checkpoint_interval_ms == 0 {
            return Err(ConfigError::new(
                "log.flush.offset.checkpoint.interval.ms",
                "must be at least 1",
            ));
        }
        if self.log_cleaner_backoff_ms == 0 {
            return Err(ConfigError::new("log.cleaner.backoff.ms", "must be at least 1"));
        }
        if !(crate::constants::SEGMENT_BYTES_MIN..=crate::constants::SEGMENT_BYTES_MAX)
            .contains(&self.offsets_topic_segment_bytes)
        {
            return Err(ConfigError::new(
                "offsets.topic.segment.bytes",
                format!(
                    "must be between {} and {}",
                    crate::constants::SEGMENT_BYTES_MIN,
                    crate::constants::SEGMENT_BYTES_MAX
                ),
            ));
        }
        if self.producer_id_expiration_ms < 1 {
            return Err(ConfigError::new("producer.id.expiration.ms", "must be at least 1"));
        }
        if self.offsets_retention_minutes < 1 {
            return Err(ConfigError::new("offsets.retention.minutes", "must be at least 1"));
        }
        if self.group_consumer_heartbeat_interval_ms == 0
            || self.group_consumer_heartbeat_interval_ms >= self.group_consumer_session_timeout_ms
        {
            return Err(ConfigError::new(
                "group.consumer.heartbeat.interval.ms",
                "must be above 0 and below group.consumer.session.timeout.ms",
            ));
        }
        if self.group_min_session_timeout_ms > self.group_max_session_timeout_ms {
            return Err(ConfigError::new(
                "group.min.session.timeout.ms",
                "must not exceed group.max.session.timeout.ms",
            ));
        }
        let frame_max = crate::constants::FRAME_BYTES_MAX as u64;
        if !(1024..=frame_max).contains(&self.socket_request_max_bytes) {
            return Err(ConfigError::new(
                "socket.request.max.bytes",
                format!("must be between 1024 and {frame_max}"),
            ));
        }
        if self.batch_cache_bytes > crate::constants::SHARD_CACHE_BYTES_MAX {
            return Err(ConfigError::new(
                "batch.cache.bytes",
                format!("must be at most {}", crate::constants::SHARD_CACHE_BYTES_MAX),
            ));
        }
        use crate::constants::{
            BROKER_PARTITIONS_MAX, CONNECTION_TIMEOUT_MS_MAX, FETCH_RESPONSE_BYTES_MAX, SHARD_FETCH_READ_BYTES_MAX,
            SHARD_QUEUED_REQUEST_BYTES_MAX,
        };
        if !(self.socket_request_max_bytes..=SHARD_QUEUED_REQUEST_BYTES_MAX).contains(&self.queued_max_request_bytes) {
            return Err(ConfigError::new(
                "queued.max.request.bytes",
                format!(
                    "must be between socket.request.max.bytes ({}) and {SHARD_QUEUED_REQUEST_BYTES_MAX}, so the \
                     largest frame fits",
                    self.socket_request_max_bytes
                ),
            ));
        }
        for (key, value) in [
            ("connections.max.idle.ms", self.connections_max_idle_ms),
            ("request.frame.timeout.ms", self.request_frame_timeout_ms),
        ] {
            if !(1..=CONNECTION_TIMEOUT_MS_MAX).contains(&value) {
                return Err(ConfigError::new(
                    key,
                    format!("must be between 1 and {CONNECTION_TIMEOUT_MS_MAX}"),
                ));
            }
        }
        if !(1..=BROKER_PARTITIONS_MAX).contains(&self.max_partitions) {
            return Err(ConfigError::new(
                "max.partitions",
                format!("must be between 1 and {BROKER_PARTITIONS_MAX}"),
            ));
        }
        if !(1..=FETCH_RESPONSE_BYTES_MAX).contains(&self.fetch_max_bytes) {
            return Err(ConfigError::new(
                "fetch.max.bytes",
                format!("must be between 1 and {FETCH_RESPONSE_BYTES_MAX}"),
            ));
        }
        if !(1..=SHARD_FETCH_READ_BYTES_MAX).contains(&self.fetch_read_memory_bytes) {
            return Err(ConfigError::new(
                "fetch.read.memory.bytes",
                format!("must be between 1 and {SHARD_FETCH_READ_BYTES_MAX}"),
            ));
        }
        self.cpus()?;
        self.topic_defaults
            .validate()
            .map_err(|(key, reason)| ConfigError::new(key, reason))
    }

    pub fn listen_addr(&self) -> Result<SocketAddr, ConfigError> {
        use std::net::ToSocketAddrs;
        self.listen
            .to_socket_addrs()
            .map_err(|e| ConfigError::new("listen", format!("{}: {e}", self.listen)))?
            .next()
            .ok_or_else(|| ConfigError::new("listen", format!("{} resolves to nothing", self.listen)))
    }

    /// The CPUs to run shards on, one shard each, in shard order.
    pub fn cpus(&self) -> Result<Vec<usize>, ConfigError> {
        let available = std::thread::available_parallelism().map_or(1, |n| n.get());
        let cpus = match &self.cores {
            None => (0..available).collect(),
            Some(list) => parse_cpu_list(list).map_err(|reason| ConfigError::new("cores", reason))?,
        };
        if cpus.is_empty() || cpus.len() > SHARDS_MAX {
            return Err(ConfigError::new(
                "cores",
                format!("{} CPUs given; between 1 and {SHARDS_MAX} are allowed", cpus.len()),
            ));
        }
        Ok(cpus)
    }
}

/// Parses `0,2,4-7` into `[0, 2, 4, 5, 6, 7]`, keeping the order given.
pub fn parse_cpu_list(list: &str) -> Result<Vec<usize>, String> {
    let mut cpus = Vec::new();
    for part in list.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let parse = |s: &str| {
            s.trim()
                .parse::<usize>()
                .map_err(|_| format!("{s:?} is not a CPU number"))
        };
        match part.split_once('-') {
            Some((first, last)) => {
                let (first, last) = (parse(first)?, parse(last)?);
                if first > last {
                    return Err(format!("range {part} runs backwards"));
                }
                cpus.extend(first..=last);
            }
            None => cpus.push(parse(part)?),
        }
    }
    if cpus.len() > SHARDS_MAX {
        return Err(format!("more than {SHARDS_MAX} CPUs listed"));
    }
    Ok(cpus)
}

/// Splits `host:port`, where the port must be a number.
pub fn parse_host_port(text: &str) -> Result<(String, u16), String> {
    let (host, port) = text
        .rsplit_once(':')
        .ok_or_else(|| format!("{text:?} is not HOST:PORT"))?;
    let port = port.parse::<u16>().map_err(|_| format!("{text:?} has no valid port"))?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() {
        return Err(format!("{text:?} has no host"));
    }
    Ok((host.to_string(), port))
}

/// How the broker stamps record timestamps.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum TimestampType {
    CreateTime,
    LogAppendTime,
}

/// A topic's effective configuration: server defaults with the topic's overrides applied.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TopicConfig {
    #[serde(default = "d_segment_bytes", rename = "segment.bytes", alias = "log.segment.bytes")]
    pub segment_bytes: u64,
    #[serde(default = "d_week_ms", rename = "segment.ms", alias = "log.roll.ms")]
    pub segment_ms: i64,
    #[serde(default = "d_week_ms", rename = "retention.ms", alias = "log.retention.ms")]
    pub retention_ms: i64,
    #[serde(default = "d_minus_one", rename = "retention.bytes", alias = "log.retention.bytes")]
    pub retention_bytes: i64,
    #[serde(
        default = "d_max_message_bytes",
        rename = "max.message.bytes",
        alias = "message.max.bytes"
    )]
    pub max_message_bytes: u64,
    #[serde(
        default = "d_cleanup_policy",
        rename = "cleanup.policy",
        alias = "log.cleanup.policy"
    )]
    pub cleanup_policy: String,
    #[serde(default = "d_day_ms", rename = "delete.retention.ms")]
    pub delete_retention_ms: i64,
    #[serde(
        default = "d_i64_max",
        rename = "flush.messages",
        alias = "log.flush.interval.messages"
    )]
    pub flush_messages: i64,
    /// How long appended records may wait before the flusher runs: 0 (the default) flushes at
    /// once, so the high watermark trails the log end by one fdatasync.
    #[serde(default = "d_zero", rename = "flush.ms", alias = "log.flush.interval.ms")]
    pub flush_ms: i64,
    #[serde(
        default = "d_timestamp_type",
        rename = "message.timestamp.type",
        alias = "log.message.timestamp.type"
    )]
    pub message_timestamp_type: TimestampType,
    /// How far before the broker's clock a CreateTime record timestamp may lie; produce
    /// refuses older records with INVALID_TIMESTAMP. Kafka's default sets no limit.
    #[serde(
        default = "d_i64_max",
        rename = "message.timestamp.before.max.ms",
        alias = "log.message.timestamp.before.max.ms"
    )]
    pub message_timestamp_before_max_ms: i64,
    /// How far after the broker's clock a CreateTime record timestamp may lie; produce
    /// refuses records further in the future with INVALID_TIMESTAMP (Kafka 4's default: an
    /// hour, so a producer's clock error cannot stall time-based retention for years).
    #[serde(
        default = "d_hour_ms",
        rename = "message.timestamp.after.max.ms",
        alias = "log.message.timestamp.after.max.ms"
    )]
    pub message_timestamp_after_max_ms: i64,
    #[serde(default = "d_one", rename = "min.insync.replicas")]
    pub min_insync_replicas: i32,
    #[serde(default = "d_compression_type", rename = "compression.type")]
    pub compression_type: String,
}

fn d_segment_bytes() -> u64 {
    1024 * 1024 * 1024
}
fn d_week_ms() -> i64 {
    7 * 24 * 60 * 60 * 1000
}
fn d_day_ms() -> i64 {
    24 * 60 * 60 * 1000
}
fn d_hour_ms() -> i64 {
    60 * 60 * 1000
}
fn d_minus_one() -> i64 {
    -1
}
fn d_max_message_bytes() -> u64 {
    1_048_588
}
fn d_cleanup_policy() -> String {
    "delete".to_string()
}
fn d_zero() -> i64 {
    0
}
fn d_i64_max() -> i64 {
    i64::MAX
}
fn d_timestamp_type() -> TimestampType {
    TimestampType::CreateTime
}
fn d_one() -> i32 {
    1
}
fn d_compression_type() -> String {
    "producer".to_string()
}

impl Default for TopicConfig {
    fn default() -> Self {
        toml::from_str("").expect("the empty topic config is valid")
    }
}

/// Every topic config key Sluice knows, in the order DescribeConfigs lists them.
pub const TOPIC_CONFIG_KEYS: &[&str] = &[
    "cleanup.policy",
    "compression.type",
    "delete.retention.ms",
    "flush.messages",
    "flush.ms",
    "max.message.bytes",
    "message.timestamp.after.max.ms",
    "message.timestamp.before.max.ms",
    "message.timestamp.type",
    "min.insync.replicas",
    "retention.bytes",
    "retention.ms",
    "segment.bytes",
    "segment.ms",
];

impl TopicConfig {
    /// The defaults with `overrides` applied; the first bad override is the error.
    pub fn with_overrides(&self, overrides: &BTreeMap<String, String>) -> Result<TopicConfig, ConfigError> {
        let mut config = self.clone();
        for (key, value) in overrides {
            config.set(key, value).map_err(|reason| ConfigError::new(key, reason))?;
        }
        Ok(config)
    }

    /// The value of `key` as Kafka prints it, or None for a key Sluice does not know.
    pub fn get(&self, key: &str) -> Option<String> {
        Some(match key {
            "cleanup.policy" => self.cleanup_policy.clone(),
            "compression.type" => self.compression_type.clone(),
            "delete.retention.ms" => self.delete_retention_ms.to_string(),
            "flush.messages" => self.flush_messages.to_string(),
            "flush.ms" => self.flush_ms.to_string(),
            "max.message.bytes" => self.max_message_bytes.to_string(),
            "message.timestamp.after.max.ms" => self.message_timestamp_after_max_ms.to_string(),
            "message.timestamp.before.max.ms" => self.message_timestamp_before_max_ms.to_string(),
            "message.timestamp.type" => format!("{:?}", self.message_timestamp_type),
            "min.insync.replicas" => self.min_insync_replicas.to_string(),
            "retention.bytes" => self.retention_bytes.to_string(),
            "retention.ms" => self.retention_ms.to_string(),
            "segment.bytes" => self.segment_bytes.to_string(),
            "segment.ms" => self.segment_ms.to_string(),
            _ => return None,
        })
    }

    /// Parses and validates `value` for `key`; on error the config is unchanged.
    pub fn set(&mut self, key: &str, value: &str) -> Result<(), String> {
        let mut next = self.clone();
        match key {
            "cleanup.policy" => next.cleanup_policy = value.to_string(),
            "compression.type" => next.compression_type = value.to_string(),
            "delete.retention.ms" => next.delete_retention_ms = parse_num(value)?,
            "flush.messages" => next.flush_messages = parse_num(value)?,
            "flush.ms" => next.flush_ms = parse_num(value)?,
            "max.message.bytes" => next.max_message_bytes = parse_num(value)?,
            "message.timestamp.after.max.ms" => next.message_timestamp_after_max_ms = parse_num(value)?,
            "message.timestamp.before.max.ms" => next.message_timestamp_before_max_ms = parse_num(value)?,
            "message.timestamp.type" => {
                next.message_timestamp_type = match value {
                    "CreateTime" => TimestampType::CreateTime,
                    "LogAppendTime" => TimestampType::LogAppendTime,
                    _ => return Err(format!("{value:?} is not CreateTime or LogAppendTime")),
                }
            }
            "min.insync.replicas" => next.min_insync_replicas = parse_num(value)?,
            "retention.bytes" => next.retention_bytes = parse_num(value)?,
            "retention.ms" => next.retention_ms = parse_num(value)?,
            "segment.bytes" => next.segment_bytes = parse_num(value)?,
            "segment.ms" => next.segment_ms = parse_num(value)?,
            _ => return Err(format!("unknown topic config {key:?}")),
        }
        next.validate().map_err(|(_, reason)| reason)?;
        *self = next;
        Ok(())
    }

    /// Checks every field's range; the error names the key.
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        let policies: Vec<&str> = self.cleanup_policy.split(',').map(str::trim).collect();
        if policies.is_empty() || policies.iter().any(|p| *p != "delete" && *p != "compact") {
            return Err((
                "cleanup.policy",
                format!("{:?} is not delete, compact or both", self.cleanup_policy),
            ));
        }
        const COMPRESSION: &[&str] = &["producer", "uncompressed", "gzip", "snappy", "lz4", "zstd"];
        if !COMPRESSION.contains(&self.compression_type.as_str()) {
            return Err((
                "compression.type",
                format!("{:?} is not one of {COMPRESSION:?}", self.compression_type),
            ));
        }
        if !(SEGMENT_BYTES_MIN..=SEGMENT_BYTES_MAX).contains(&self.segment_bytes) {
            return Err((
                "segment.bytes",
                format!("must be between {SEGMENT_BYTES_MIN} and {SEGMENT_BYTES_MAX}"),
            ));
        }
        let at_least = |key: &'static str, value: i64, min: i64| {
            if value < min {
                Err((key, format!("{value} is below the minimum {min}")))
            } else {
                Ok(())
            }
        };
        at_least("segment.ms", self.segment_ms, 1)?;
        at_least("retention.ms", self.retention_ms, -1)?;
        at_least("retention.bytes", self.retention_bytes, -1)?;
        at_least("delete.retention.ms", self.delete_retention_ms, 0)?;
        at_least("flush.messages", self.flush_messages, 1)?;
        at_least("flush.ms", self.flush_ms, 0)?;
        at_least("min.insync.replicas", i64::from(self.min_insync_replicas), 1)?;
        at_least(
            "message.timestamp.before.max.ms",
            self.message_timestamp_before_max_ms,
            0,
        )?;
        at_least("message.timestamp.after.max.ms", self.message_timestamp_after_max_ms, 0)?;
        if self.max_message_bytes == 0 || self.max_message_bytes > crate::constants::BATCH_BYTES_MAX as u64 {
            return Err((
                "max.message.bytes",
                format!("must be between 1 and {}", crate::constants::BATCH_BYTES_MAX),
            ));
        }
        Ok(())
    }
}

fn parse_num<T: std::str::FromStr>(value: &str) -> Result<T, String> {
    value
        .trim()
        .parse()
        .map_err(|_| format!("{value:?} is not a valid number"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_lists_parse_in_order() {
        assert_eq!(parse_cpu_list("0,1").unwrap(), vec![0, 1]);
        assert_eq!(parse_cpu_list("0-3").unwrap(), vec![0, 1, 2, 3]);
        assert_eq!(parse_cpu_list("4, 0-1").unwrap(), vec![4, 0, 1]);
        assert!(parse_cpu_list("3-1").is_err());
        assert!(parse_cpu_list("x").is_err());
    }

    #[test]
    fn every_topic_key_round_trips_through_get_and_set() {
        let defaults = TopicConfig::default();
        for key in TOPIC_CONFIG_KEYS {
            let value = defaults.get(key).unwrap_or_else(|| panic!("{key} has no getter"));
            let mut config = defaults.clone();
            config.set(key, &value).unwrap_or_else(|e| panic!("{key}={value}: {e}"));
            assert_eq!(config, defaults, "{key}");
        }
    }

    #[test]
    fn server_config_reads_kafka_names_and_rejects_unknown_keys() {
        let config = ServerConfig::from_toml(
            "listen = \"127.0.0.1:0\"\n\"num.partitions\" = 3\n\"segment.bytes\" = 65536\n\"message.max.bytes\" = 2000\n",
        )
        .unwrap();
        assert_eq!(config.num_partitions, 3);
        assert_eq!(config.topic_defaults.segment_bytes, 65536);
        assert_eq!(config.topic_defaults.max_message_bytes, 2000);
        config.validate().unwrap();
        assert!(ServerConfig::from_toml("\"no.such.key\" = 1").is_err());
    }

    #[test]
    fn timestamp_bounds_default_as_kafka_4_and_take_broker_names() {
        let defaults = TopicConfig::default();
        assert_eq!(defaults.message_timestamp_before_max_ms, i64::MAX);
        assert_eq!(defaults.message_timestamp_after_max_ms, 3_600_000);
        let config = ServerConfig::from_toml(
            "\"log.message.timestamp.before.max.ms\" = 1000\n\"message.timestamp.after.max.ms\" = 0\n",
        )
        .unwrap();
        assert_eq!(config.topic_defaults.message_timestamp_before_max_ms, 1000);
        assert_eq!(config.topic_defaults.message_timestamp_after_max_ms, 0);
        let mut topic = TopicConfig::default();
        assert!(topic.set("message.timestamp.after.max.ms", "-1").is_err());
        assert_eq!(topic, defaults, "a refused value changes nothing");
    }

    #[test]
    fn bad_override_is_rejected_with_its_key() {
        let mut overrides = BTreeMap::new();
        overrides.insert("segment.bytes".to_string(), "12".to_string());
        let err = TopicConfig::default().with_overrides(&overrides).unwrap_err();
        assert_eq!(err.key, "segment.bytes");
    }
}
