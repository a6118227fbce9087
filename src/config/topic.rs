//! Topic configs: every key Kafka 4.2 defines for a topic, the broker config that holds its
//! default, and what Sluice does with it.
//!
//! A key Sluice enforces is a typed field of [`TopicConfig`]; a key it only stores (validated as
//! Kafka validates it, kept and described, changing nothing) lives in [`TopicConfig`]'s stored
//! map. [`TopicConfig::set`] is the one place a topic config value is parsed.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::constants::{SEGMENT_BYTES_MAX, SEGMENT_BYTES_MIN};
use crate::error::ConfigError;

/// Kafka's ConfigType codes (DescribeConfigs v3+).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConfigType {
    Boolean = 1,
    String = 2,
    Int = 3,
    Long = 5,
    Double = 6,
    List = 7,
}

impl ConfigType {
    pub fn code(self) -> i8 {
        self as i8
    }
}

/// What Sluice does with a topic config.
#[derive(Clone, Copy, Debug)]
pub enum Effect {
    /// Applied as Kafka applies it.
    Enforced,
    /// Validated, kept and described, but changes nothing in Sluice, for the reason given.
    Stored {
        default: &'static str,
        /// The value as Kafka stores it, or why it is refused.
        check: fn(&str) -> Result<String, String>,
        why: &'static str,
    },
}

/// One topic config as Kafka 4.2 defines it.
#[derive(Debug)]
pub struct TopicKey {
    pub name: &'static str,
    pub kind: ConfigType,
    /// The broker config every topic's default comes from, as Kafka names it; None when the
    /// default is fixed.
    pub broker: Option<&'static str>,
    pub effect: Effect,
}

impl TopicKey {
    pub fn enforced(&self) -> bool {
        matches!(self.effect, Effect::Enforced)
    }
}

const fn enforced(name: &'static str, kind: ConfigType, broker: &'static str) -> TopicKey {
    TopicKey {
        name,
        kind,
        broker: Some(broker),
        effect: Effect::Enforced,
    }
}

const fn stored(
    name: &'static str,
    kind: ConfigType,
    broker: Option<&'static str>,
    default: &'static str,
    check: fn(&str) -> Result<String, String>,
    why: &'static str,
) -> TopicKey {
    TopicKey {
        name,
        kind,
        broker,
        effect: Effect::Stored { default, check, why },
    }
}

use ConfigType::{Boolean, Double, Int, List, Long, String as Str};

const NO_TIERING: &str = "Sluice has no tiered storage";
const NO_RECOMPRESSION: &str = "batches are kept as their producer compressed them";
const NO_REPLICAS: &str = "a single node has no followers";
const OWN_INDEX: &str = "Sluice's segment index has its own fixed layout";

/// Every topic config of Kafka 4.2, in the order DescribeConfigs lists them.
pub static TOPIC_KEYS: &[TopicKey] = &[
    enforced("cleanup.policy", List, "log.cleanup.policy"),
    stored(
        "compression.gzip.level",
        Int,
        Some("compression.gzip.level"),
        "-1",
        gzip_level,
        NO_RECOMPRESSION,
    ),
    stored(
        "compression.lz4.level",
        Int,
        Some("compression.lz4.level"),
        "9",
        int_between::<1, 17>,
        NO_RECOMPRESSION,
    ),
    stored(
        "compression.type",
        Str,
        Some("compression.type"),
        "producer",
        compression_type,
        NO_RECOMPRESSION,
    ),
    stored(
        "compression.zstd.level",
        Int,
        Some("compression.zstd.level"),
        "3",
        int_between::<-131072, 22>,
        NO_RECOMPRESSION,
    ),
    enforced("delete.retention.ms", Long, "log.cleaner.delete.retention.ms"),
    stored(
        "file.delete.delay.ms",
        Long,
        Some("log.segment.delete.delay.ms"),
        "60000",
        long_at_least::<0>,
        "a deleted segment's file is removed at once (readers hold it open)",
    ),
    enforced("flush.messages", Long, "log.flush.interval.messages"),
    enforced("flush.ms", Long, "log.flush.interval.ms"),
    stored(
        "follower.replication.throttled.replicas",
        List,
        None,
        "",
        throttled_replicas,
        NO_REPLICAS,
    ),
    stored(
        "index.interval.bytes",
        Int,
        Some("log.index.interval.bytes"),
        "4096",
        int_between::<0, { i32::MAX as i64 }>,
        OWN_INDEX,
    ),
    stored(
        "leader.replication.throttled.replicas",
        List,
        None,
        "",
        throttled_replicas,
        NO_REPLICAS,
    ),
    stored(
        "local.retention.bytes",
        Long,
        Some("log.local.retention.bytes"),
        "-2",
        long_at_least::<-2>,
        NO_TIERING,
    ),
    stored(
        "local.retention.ms",
        Long,
        Some("log.local.retention.ms"),
        "-2",
        long_at_least::<-2>,
        NO_TIERING,
    ),
    stored(
        "max.compaction.lag.ms",
        Long,
        Some("log.cleaner.max.compaction.lag.ms"),
        "9223372036854775807",
        long_at_least::<1>,
        "the cleaner compacts every closed segment each log.cleaner.backoff.ms",
    ),
    enforced("max.message.bytes", Int, "message.max.bytes"),
    enforced(
        "message.timestamp.after.max.ms",
        Long,
        "log.message.timestamp.after.max.ms",
    ),
    enforced(
        "message.timestamp.before.max.ms",
        Long,
        "log.message.timestamp.before.max.ms",
    ),
    enforced("message.timestamp.type", Str, "log.message.timestamp.type"),
    stored(
        "min.cleanable.dirty.ratio",
        Double,
        Some("log.cleaner.min.cleanable.ratio"),
        "0.5",
        ratio,
        "the cleaner compacts every closed segment each log.cleaner.backoff.ms",
    ),
    stored(
        "min.compaction.lag.ms",
        Long,
        Some("log.cleaner.min.compaction.lag.ms"),
        "0",
        long_at_least::<0>,
        "the cleaner compacts every closed segment each log.cleaner.backoff.ms",
    ),
    enforced("min.insync.replicas", Int, "min.insync.replicas"),
    stored(
        "preallocate",
        Boolean,
        Some("log.preallocate"),
        "false",
        boolean,
        "Sluice always preallocates segment files, in growing steps",
    ),
    stored("remote.log.copy.disable", Boolean, None, "false", boolean, NO_TIERING),
    stored(
        "remote.log.delete.on.disable",
        Boolean,
        None,
        "false",
        boolean,
        NO_TIERING,
    ),
    stored("remote.storage.enable", Boolean, None, "false", no_tiering, NO_TIERING),
    enforced("retention.bytes", Long, "log.retention.bytes"),
    enforced("retention.ms", Long, "log.retention.ms"),
    enforced("segment.bytes", Int, "log.segment.bytes"),
    stored(
        "segment.index.bytes",
        Int,
        Some("log.index.size.max.bytes"),
        "10485760",
        int_between::<4, { i32::MAX as i64 }>,
        OWN_INDEX,
    ),
    stored(
        "segment.jitter.ms",
        Long,
        Some("log.roll.jitter.ms"),
        "0",
        long_at_least::<0>,
        "segments roll at segment.ms exactly",
    ),
    enforced("segment.ms", Long, "log.roll.ms"),
    stored(
        "unclean.leader.election.enable",
        Boolean,
        Some("unclean.leader.election.enable"),
        "false",
        boolean,
        NO_REPLICAS,
    ),
];

/// The topic config named `name`.
pub fn topic_key(name: &str) -> Option<&'static TopicKey> {
    TOPIC_KEYS.iter().find(|key| key.name == name)
}

/// The topic config whose default the broker config `broker_name` holds.
pub fn topic_key_of_broker(broker_name: &str) -> Option<&'static TopicKey> {
    TOPIC_KEYS.iter().find(|key| key.broker == Some(broker_name))
}

fn long_at_least<const MIN: i64>(value: &str) -> Result<String, String> {
    let number: i64 = parse_num(value)?;
    if number < MIN {
        return Err(format!("{number} is below the minimum {MIN}"));
    }
    Ok(number.to_string())
}

fn int_between<const MIN: i64, const MAX: i64>(value: &str) -> Result<String, String> {
    let number: i64 = parse_num(value)?;
    if !(MIN..=MAX).contains(&number) {
        return Err(format!("{number} is not between {MIN} and {MAX}"));
    }
    Ok(number.to_string())
}

fn gzip_level(value: &str) -> Result<String, String> {
    let number: i64 = parse_num(value)?;
    if number != -1 && !(1..=9).contains(&number) {
        return Err(format!("{number} is not -1 or between 1 and 9"));
    }
    Ok(number.to_string())
}

fn ratio(value: &str) -> Result<String, String> {
    let number: f64 = parse_num(value)?;
    if !(0.0..=1.0).contains(&number) {
        return Err(format!("{number} is not between 0 and 1"));
    }
    Ok(number.to_string())
}

fn boolean(value: &str) -> Result<String, String> {
    match value.trim().to_ascii_lowercase().as_str() {
        "true" => Ok("true".into()),
        "false" => Ok("false".into()),
        _ => Err(format!("{value:?} is not true or false")),
    }
}

fn no_tiering(value: &str) -> Result<String, String> {
    match boolean(value)?.as_str() {
        "false" => Ok("false".into()),
        _ => Err(format!("{NO_TIERING}: remote.storage.enable must be false")),
    }
}

fn compression_type(value: &str) -> Result<String, String> {
    const COMPRESSION: &[&str] = &["producer", "uncompressed", "gzip", "snappy", "lz4", "zstd"];
    let value = value.trim();
    if !COMPRESSION.contains(&value) {
        return Err(format!("{value:?} is not one of {COMPRESSION:?}"));
    }
    Ok(value.to_string())
}

/// `*`, or `partition:broker` pairs separated by commas, as Kafka's throttled-replica lists.
fn throttled_replicas(value: &str) -> Result<String, String> {
    let value = value.trim();
    if value.is_empty() || value == "*" {
        return Ok(value.to_string());
    }
    for pair in value.split(',').map(str::trim) {
        let well_formed = pair
            .split_once(':')
            .is_some_and(|(p, b)| p.parse::<u32>().is_ok() && b.parse::<u32>().is_ok());
        if !well_formed {
            return Err(format!("{pair:?} is not PARTITION:BROKER"));
        }
    }
    Ok(value.to_string())
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
    #[serde(
        default = "d_day_ms",
        rename = "delete.retention.ms",
        alias = "log.cleaner.delete.retention.ms"
    )]
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
    /// acks=all produce is refused (NOT_ENOUGH_REPLICAS) while fewer replicas are in sync.
    #[serde(default = "d_one", rename = "min.insync.replicas")]
    pub min_insync_replicas: i32,
    /// Values of the keys Sluice stores without applying them, where they differ from
    /// Kafka's default; set through [`TopicConfig::set`] only.
    #[serde(skip)]
    stored: BTreeMap<&'static str, String>,
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

impl Default for TopicConfig {
    fn default() -> Self {
        toml::from_str("").expect("the empty topic config is valid")
    }
}

impl TopicConfig {
    /// The defaults with `overrides` applied; the first bad override is the error.
    pub fn with_overrides(&self, overrides: &BTreeMap<String, String>) -> Result<TopicConfig, ConfigError> {
        let mut config = self.clone();
        for (key, value) in overrides {
            config.set(key, value).map_err(|reason| ConfigError::new(key, reason))?;
        }
        Ok(config)
    }

    /// The value of `key` as Kafka prints it, or None for a key Kafka does not define.
    pub fn get(&self, key: &str) -> Option<String> {
        Some(match key {
            "cleanup.policy" => self.cleanup_policy.clone(),
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
            _ => match topic_key(key)?.effect {
                Effect::Stored { default, .. } => self.stored.get(key).map_or(default, String::as_str).to_string(),
                Effect::Enforced => unreachable!("enforced key {key} has no getter"),
            },
        })
    }

    /// Parses and validates `value` for `key`; on error the config is unchanged.
    pub fn set(&mut self, key: &str, value: &str) -> Result<(), String> {
        let mut next = self.clone();
        match key {
            "cleanup.policy" => next.cleanup_policy = value.to_string(),
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
            _ => {
                let topic_key = topic_key(key).ok_or_else(|| format!("unknown topic config {key:?}"))?;
                let Effect::Stored { check, .. } = topic_key.effect else {
                    unreachable!("enforced key {key} has no setter");
                };
                next.stored.insert(topic_key.name, check(value)?);
            }
        }
        next.validate().map_err(|(_, reason)| reason)?;
        *self = next;
        Ok(())
    }

    /// Checks every field's range; the error names the key.
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        // Kafka 4.2 allows an empty policy (KIP-1161): nothing is deleted or compacted.
        let mut policies = self.cleanup_policy.split(',').map(str::trim).filter(|p| !p.is_empty());
        if policies.any(|p| p != "delete" && p != "compact") {
            return Err((
                "cleanup.policy",
                format!("{:?} is not delete, compact, both or empty", self.cleanup_policy),
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

pub(super) fn parse_num<T: std::str::FromStr>(value: &str) -> Result<T, String> {
    value
        .trim()
        .parse()
        .map_err(|_| format!("{value:?} is not a valid number"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_topic_key_round_trips_through_get_and_set() {
        let defaults = TopicConfig::default();
        for key in TOPIC_KEYS {
            let value = defaults
                .get(key.name)
                .unwrap_or_else(|| panic!("{} has no getter", key.name));
            let mut config = defaults.clone();
            config
                .set(key.name, &value)
                .unwrap_or_else(|e| panic!("{}={value}: {e}", key.name));
            assert_eq!(config.get(key.name), Some(value), "{}", key.name);
        }
    }

    #[test]
    fn keys_are_sorted_unique_and_each_broker_name_maps_back() {
        let names: Vec<&str> = TOPIC_KEYS.iter().map(|k| k.name).collect();
        let mut sorted = names.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(names, sorted);
        for key in TOPIC_KEYS {
            if let Some(broker) = key.broker {
                assert_eq!(topic_key_of_broker(broker).map(|k| k.name), Some(key.name));
            }
        }
    }

    #[test]
    fn stored_keys_are_validated_as_kafka_validates_them() {
        let mut config = TopicConfig::default();
        assert!(config.set("min.cleanable.dirty.ratio", "1.5").is_err());
        assert!(config.set("compression.gzip.level", "0").is_err());
        assert!(config.set("remote.storage.enable", "true").is_err());
        assert!(config.set("leader.replication.throttled.replicas", "0:x").is_err());
        assert_eq!(config, TopicConfig::default(), "a refused value changes nothing");
        config.set("preallocate", "TRUE").unwrap();
        assert_eq!(config.get("preallocate").as_deref(), Some("true"));
        config.set("leader.replication.throttled.replicas", "0:1,1:1").unwrap();
        config.set("cleanup.policy", "").unwrap();
        assert!(config.set("cleanup.policy", "delete,forever").is_err());
        assert!(config.set("no.such.key", "1").is_err());
    }

    #[test]
    fn timestamp_bounds_default_as_kafka_4() {
        let defaults = TopicConfig::default();
        assert_eq!(defaults.message_timestamp_before_max_ms, i64::MAX);
        assert_eq!(defaults.message_timestamp_after_max_ms, 3_600_000);
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
