//! Typed configuration, validated once at start-up.
//!
//! The server reads an optional TOML file; flags override it. Keys that Kafka has use Kafka's
//! names (`num.partitions`, `segment.bytes`, ...), so an operator's existing knowledge applies.
//! Topic-level defaults live in [`TopicConfig`]; a topic's own overrides are applied on top
//! of them with [`TopicConfig::set`], the one place a topic config value is parsed.

mod broker;
mod cluster;
mod group;
pub mod listeners;
mod security;
mod topic;
mod values;

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::PathBuf;

use serde::Deserialize;

pub use crate::config::broker::{broker_key, BrokerKey, BrokerSetting, BROKER_KEYS};
pub use crate::config::cluster::{ClusterSettings, ProcessRoles, Voter};
pub use crate::config::group::{GroupConfig, GroupDefaults, GROUP_KEYS};
pub use crate::config::listeners::{ListenerSpec, SecurityProtocol};
pub use crate::config::security::{ClientAuth, SecuritySettings};
pub use crate::config::topic::{
    topic_key, topic_key_of_broker, Cleanup, CleanupPolicy, ConfigType, Effect, TimestampType, TopicConfig, TopicKey,
    TOPIC_KEYS,
};
use crate::constants::SHARDS_MAX;
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
    /// Partitions of the internal `__transaction_state` topic, set when it is first created.
    #[serde(
        default = "default_transaction_state_partitions",
        rename = "transaction.state.log.num.partitions"
    )]
    pub transaction_state_log_num_partitions: i32,
    /// The largest `transaction.timeout.ms` a producer may ask for.
    #[serde(
        default = "default_transaction_max_timeout_ms",
        rename = "transaction.max.timeout.ms"
    )]
    pub transaction_max_timeout_ms: i64,
    /// A transactional id with no transaction for this long is forgotten.
    #[serde(
        default = "default_transactional_id_expiration_ms",
        rename = "transactional.id.expiration.ms"
    )]
    pub transactional_id_expiration_ms: i64,
    /// How often coordinators look for transactions past their timeout (and ids to expire).
    #[serde(
        default = "default_transaction_cleanup_interval_ms",
        rename = "transaction.abort.timed.out.transaction.cleanup.interval.ms"
    )]
    pub transaction_cleanup_interval_ms: u64,
    /// The transaction version (Kafka's `transaction.version` feature level) finalized for
    /// clients: 2 (KIP-890 part 2: implicit adds, an epoch bump at every ending) or lower.
    #[serde(default = "default_transaction_version", rename = "transaction.version")]
    pub transaction_version: i16,
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
    /// Bounds of a consumer-protocol group's `consumer.session.timeout.ms` (and the broker's).
    #[serde(
        default = "default_consumer_min_session_timeout_ms",
        rename = "group.consumer.min.session.timeout.ms"
    )]
    pub group_consumer_min_session_timeout_ms: u64,
    #[serde(
        default = "default_consumer_max_session_timeout_ms",
        rename = "group.consumer.max.session.timeout.ms"
    )]
    pub group_consumer_max_session_timeout_ms: u64,
    /// Bounds of a consumer-protocol group's `consumer.heartbeat.interval.ms` (and the broker's).
    #[serde(
        default = "default_consumer_min_heartbeat_interval_ms",
        rename = "group.consumer.min.heartbeat.interval.ms"
    )]
    pub group_consumer_min_heartbeat_interval_ms: u64,
    #[serde(
        default = "default_consumer_max_heartbeat_interval_ms",
        rename = "group.consumer.max.heartbeat.interval.ms"
    )]
    pub group_consumer_max_heartbeat_interval_ms: u64,
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
    /// Cluster mode: roles, the controller quorum, replication defaults. Flattened, so its
    /// keys sit beside the others under Kafka's names; it must stay before `unknown`, which
    /// takes whatever no struct field took.
    #[serde(flatten)]
    pub cluster: ClusterSettings,
    /// Listeners and TLS (`listeners`, `advertised.listeners`, `ssl.*`), flattened likewise.
    #[serde(flatten)]
    pub security: SecuritySettings,
    /// Topic defaults, taken from the file by topic or broker key through [`TOPIC_KEYS`] in
    /// [`ServerConfig::from_toml`].
    #[serde(skip)]
    pub topic_defaults: TopicConfig,
    /// Keys nothing above took: topic configs (by topic or broker name) are taken from here
    /// in [`ServerConfig::from_toml`]; any other is an error (serde cannot deny unknown fields
    /// through `flatten`).
    #[serde(flatten)]
    unknown: BTreeMap<String, toml::Value>,
    /// The broker configs (by Kafka's broker names) the config file or a flag set, so
    /// DescribeConfigs can tell them from defaults.
    #[serde(skip)]
    pub explicit: BTreeSet<String>,
    /// The SASL users' secrets, made from `[sasl.users]` (whose passwords are then dropped).
    #[serde(skip)]
    pub credentials: std::sync::Arc<crate::sasl::Credentials>,
    /// The authorizer `acl.enable` turns on ([`crate::config::SecuritySettings::authorizer`]).
    #[serde(skip)]
    pub authorizer: Option<std::sync::Arc<crate::acl::Authorizer>>,
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
fn default_transaction_state_partitions() -> i32 {
    50
}
fn default_transaction_max_timeout_ms() -> i64 {
    15 * 60 * 1000
}
fn default_transactional_id_expiration_ms() -> i64 {
    7 * 24 * 60 * 60 * 1000
}
fn default_transaction_version() -> i16 {
    crate::constants::TRANSACTION_VERSION_MAX
}
fn default_transaction_cleanup_interval_ms() -> u64 {
    10_000
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
fn default_consumer_min_session_timeout_ms() -> u64 {
    45_000
}
fn default_consumer_max_session_timeout_ms() -> u64 {
    60_000
}
fn default_consumer_min_heartbeat_interval_ms() -> u64 {
    5_000
}
fn default_consumer_max_heartbeat_interval_ms() -> u64 {
    15_000
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
        let mut config: ServerConfig =
            toml::from_str(text).map_err(|e| ConfigError::new("config file", e.to_string()))?;
        for (key, value) in std::mem::take(&mut config.unknown) {
            let topic_key = topic_key(&key)
                .or_else(|| topic_key_of_broker(&key))
                .ok_or_else(|| ConfigError::new(key.clone(), "unknown config key"))?;
            let text = match value {
                toml::Value::String(s) => s,
                other => other.to_string(),
            };
            config
                .topic_defaults
                .set(topic_key.name, &text)
                .map_err(|reason| ConfigError::new(key.clone(), reason))?;
        }
        let table: toml::Table = toml::from_str(text).map_err(|e| ConfigError::new("config file", e.to_string()))?;
        if table.contains_key("listeners") && (table.contains_key("listen") || table.contains_key("advertise")) {
            return Err(ConfigError::new(
                "listeners",
                "replaces listen and advertise (PLAINTEXT shorthands): set one or the other",
            ));
        }
        config.explicit = table.keys().map(|key| broker_name_of_file_key(key)).collect();
        let passwords = std::mem::take(&mut config.security.sasl.users);
        config.credentials = std::sync::Arc::new(crate::sasl::Credentials::from_passwords(&passwords));
        config.authorizer = config.security.authorizer()?.map(std::sync::Arc::new);
        Ok(config)
    }

    /// Records that a flag set the config file's `key`.
    pub fn set_by_flag(&mut self, key: &str) {
        self.explicit.insert(broker_name_of_file_key(key));
    }

    /// Checks relations no single field can check; called once before the shards start.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.security.validate(self.listen_addr()?)?;
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
        if !(1..=crate::constants::OFFSETS_TOPIC_PARTITIONS_MAX).contains(&self.transaction_state_log_num_partitions) {
            return Err(ConfigError::new(
                "transaction.state.log.num.partitions",
                format!(
                    "must be between 1 and {}",
                    crate::constants::OFFSETS_TOPIC_PARTITIONS_MAX
                ),
            ));
        }
        if !(0..=crate::constants::TRANSACTION_VERSION_MAX).contains(&self.transaction_version) {
            return Err(ConfigError::new(
                "transaction.version",
                format!("must be between 0 and {}", crate::constants::TRANSACTION_VERSION_MAX),
            ));
        }
        for (key, value) in [
            ("transaction.max.timeout.ms", self.transaction_max_timeout_ms),
            ("transactional.id.expiration.ms", self.transactional_id_expiration_ms),
            (
                "transaction.abort.timed.out.transaction.cleanup.interval.ms",
                i64::try_from(self.transaction_cleanup_interval_ms).unwrap_or(i64::MAX),
            ),
        ] {
            if !(1..=i64::from(i32::MAX)).contains(&value) {
                return Err(ConfigError::new(key, format!("must be between 1 and {}", i32::MAX)));
            }
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
        self.group_consumer_limits()?;
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
        self.cluster.validate(self.node_id)?;
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
/// `host:port` where the host may be empty (a listener on every address).
pub fn parse_host_port_allowing_empty(text: &str) -> Result<(String, u16), String> {
    let (host, port) = text
        .rsplit_once(':')
        .ok_or_else(|| format!("{text:?} is not HOST:PORT"))?;
    let port = port.parse::<u16>().map_err(|_| format!("{text:?} has no valid port"))?;
    Ok((host.trim_start_matches('[').trim_end_matches(']').to_string(), port))
}

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

/// The Kafka broker name of a config file key: a topic key's broker config, `listen` as
/// `listeners`, `advertise` as `advertised.listeners`, `data-dir` as `log.dirs`.
fn broker_name_of_file_key(key: &str) -> String {
    match key {
        "listen" => "listeners".into(),
        "advertise" => "advertised.listeners".into(),
        "data-dir" | "data_dir" => "log.dirs".into(),
        _ => match topic_key(key) {
            Some(topic_key) => topic_key.broker.unwrap_or(topic_key.name).to_string(),
            None => key.to_string(),
        },
    }
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
    fn topic_defaults_take_broker_names_and_stored_keys() {
        let config = ServerConfig::from_toml(
            "\"log.message.timestamp.before.max.ms\" = 1000\n\"message.timestamp.after.max.ms\" = 0\n\
             \"log.cleaner.delete.retention.ms\" = 5\n\"log.preallocate\" = true\n\"compression.type\" = \"zstd\"\n",
        )
        .unwrap();
        assert_eq!(config.topic_defaults.message_timestamp_before_max_ms, 1000);
        assert_eq!(config.topic_defaults.message_timestamp_after_max_ms, 0);
        assert_eq!(config.topic_defaults.delete_retention_ms, 5);
        assert_eq!(config.topic_defaults.get("preallocate").as_deref(), Some("true"));
        assert_eq!(config.topic_defaults.get("compression.type").as_deref(), Some("zstd"));
        assert!(ServerConfig::from_toml("\"compression.type\" = \"brotli\"").is_err());
    }

    #[test]
    fn cluster_keys_sit_beside_the_others() {
        let config = ServerConfig::from_toml(
            "\"node.id\" = 2\n\"controller.quorum.voters\" = \"1@127.0.0.1:9101,2@127.0.0.1:9102,3@127.0.0.1:9103\"\n\
             \"controller.listen\" = \"127.0.0.1:9102\"\n\"default.replication.factor\" = 3\n\
             \"min.insync.replicas\" = 2\n",
        )
        .unwrap();
        config.validate().unwrap();
        assert_eq!(config.cluster.default_replication_factor, 3);
        assert_eq!(config.topic_defaults.min_insync_replicas, 2);
        let voters = config.cluster.voters().unwrap();
        assert_eq!(voters.len(), 3);
        assert_eq!(voters[1].id, 2);
        assert_eq!(voters[1].address, "127.0.0.1:9102");
        assert!(config.cluster.roles().unwrap().controller);
        assert!(ServerConfig::default().cluster.voters().unwrap().is_empty());
        // A voter must be named in the voters it is one of.
        let stranger =
            ServerConfig::from_toml("\"node.id\" = 7\n\"controller.quorum.voters\" = \"1@127.0.0.1:9101\"\n").unwrap();
        assert!(stranger.validate().is_err());
    }

    #[test]
    fn explicit_keys_are_recorded_under_broker_names() {
        let mut config =
            ServerConfig::from_toml("listen = \"127.0.0.1:0\"\n\"retention.ms\" = 5\n\"num.partitions\" = 2\n")
                .unwrap();
        config.set_by_flag("data-dir");
        let explicit: Vec<&str> = config.explicit.iter().map(String::as_str).collect();
        assert_eq!(
            explicit,
            ["listeners", "log.dirs", "log.retention.ms", "num.partitions"]
        );
    }
}
