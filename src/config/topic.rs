//! Topic configs: every key Kafka 4.2 defines for a topic, the broker config that holds its
//! default, and what Sluice does with it.
//!
//! [`TOPIC_KEYS`] is the one table of them: name, type, the broker key its default comes from
//! (also accepted in the config file), the default, and how a value is parsed, checked and
//! printed. A key Sluice enforces is a typed field of [`TopicConfig`], set and read through
//! its entry; a key it only stores (validated as Kafka validates it, kept and described,
//! changing nothing) lives in [`TopicConfig`]'s stored map. [`TopicConfig::set`] is the one
//! place a topic config value is parsed.

use std::collections::BTreeMap;

use crate::constants::{BATCH_BYTES_MAX, SEGMENT_BYTES_MAX, SEGMENT_BYTES_MIN};
use crate::error::ConfigError;

use super::values::{
    at_least, between, boolean, compression_type, gzip_level, int_between, long_at_least, ratio, throttled_replicas,
};
pub use super::values::{Cleanup, CleanupPolicy, TimestampType};

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
    /// Applied as Kafka applies it: a field of [`TopicConfig`].
    Enforced {
        default: &'static str,
        /// The field's value as Kafka prints it.
        get: fn(&TopicConfig) -> String,
        /// Parses and checks a value, then sets the field; on error nothing changes.
        set: fn(&mut TopicConfig, &str) -> Result<(), String>,
    },
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
        matches!(self.effect, Effect::Enforced { .. })
    }

    /// The value every topic has unless the broker or the topic sets another.
    pub fn default_value(&self) -> &'static str {
        match self.effect {
            Effect::Enforced { default, .. } | Effect::Stored { default, .. } => default,
        }
    }
}

const fn enforced(
    name: &'static str,
    kind: ConfigType,
    broker: &'static str,
    default: &'static str,
    get: fn(&TopicConfig) -> String,
    set: fn(&mut TopicConfig, &str) -> Result<(), String>,
) -> TopicKey {
    TopicKey {
        name,
        kind,
        broker: Some(broker),
        effect: Effect::Enforced { default, get, set },
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
    enforced(
        "cleanup.policy",
        List,
        "log.cleanup.policy",
        "delete",
        |c| c.cleanup_policy.to_string(),
        |c, v| {
            c.cleanup_policy = v.parse()?;
            Ok(())
        },
    ),
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
    enforced(
        "delete.retention.ms",
        Long,
        "log.cleaner.delete.retention.ms",
        "86400000",
        |c| c.delete_retention_ms.to_string(),
        |c, v| {
            c.delete_retention_ms = at_least(v, 0)?;
            Ok(())
        },
    ),
    stored(
        "file.delete.delay.ms",
        Long,
        Some("log.segment.delete.delay.ms"),
        "60000",
        long_at_least::<0>,
        "a deleted segment's file is removed at once (readers hold it open)",
    ),
    enforced(
        "flush.messages",
        Long,
        "log.flush.interval.messages",
        "9223372036854775807",
        |c| c.flush_messages.to_string(),
        |c, v| {
            c.flush_messages = at_least(v, 1)?;
            Ok(())
        },
    ),
    // Kafka's default leaves flushing to the OS; Sluice flushes at once (0), so the high
    // watermark trails the log end by one fdatasync.
    enforced(
        "flush.ms",
        Long,
        "log.flush.interval.ms",
        "0",
        |c| c.flush_ms.to_string(),
        |c, v| {
            c.flush_ms = at_least(v, 0)?;
            Ok(())
        },
    ),
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
    enforced(
        "max.message.bytes",
        Int,
        "message.max.bytes",
        "1048588",
        |c| c.max_message_bytes.to_string(),
        |c, v| {
            c.max_message_bytes = between(v, 1, BATCH_BYTES_MAX as u64)?;
            Ok(())
        },
    ),
    enforced(
        "message.timestamp.after.max.ms",
        Long,
        "log.message.timestamp.after.max.ms",
        "3600000",
        |c| c.message_timestamp_after_max_ms.to_string(),
        |c, v| {
            c.message_timestamp_after_max_ms = at_least(v, 0)?;
            Ok(())
        },
    ),
    enforced(
        "message.timestamp.before.max.ms",
        Long,
        "log.message.timestamp.before.max.ms",
        "9223372036854775807",
        |c| c.message_timestamp_before_max_ms.to_string(),
        |c, v| {
            c.message_timestamp_before_max_ms = at_least(v, 0)?;
            Ok(())
        },
    ),
    enforced(
        "message.timestamp.type",
        Str,
        "log.message.timestamp.type",
        "CreateTime",
        |c| format!("{:?}", c.message_timestamp_type),
        |c, v| {
            c.message_timestamp_type = match v {
                "CreateTime" => TimestampType::CreateTime,
                "LogAppendTime" => TimestampType::LogAppendTime,
                _ => return Err(format!("{v:?} is not CreateTime or LogAppendTime")),
            };
            Ok(())
        },
    ),
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
    enforced(
        "min.insync.replicas",
        Int,
        "min.insync.replicas",
        "1",
        |c| c.min_insync_replicas.to_string(),
        |c, v| {
            c.min_insync_replicas = at_least(v, 1)?;
            Ok(())
        },
    ),
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
    enforced(
        "retention.bytes",
        Long,
        "log.retention.bytes",
        "-1",
        |c| c.retention_bytes.to_string(),
        |c, v| {
            c.retention_bytes = at_least(v, -1)?;
            Ok(())
        },
    ),
    enforced(
        "retention.ms",
        Long,
        "log.retention.ms",
        "604800000",
        |c| c.retention_ms.to_string(),
        |c, v| {
            c.retention_ms = at_least(v, -1)?;
            Ok(())
        },
    ),
    enforced(
        "segment.bytes",
        Int,
        "log.segment.bytes",
        "1073741824",
        |c| c.segment_bytes.to_string(),
        |c, v| {
            c.segment_bytes = between(v, SEGMENT_BYTES_MIN, SEGMENT_BYTES_MAX)?;
            Ok(())
        },
    ),
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
    enforced(
        "segment.ms",
        Long,
        "log.roll.ms",
        "604800000",
        |c| c.segment_ms.to_string(),
        |c, v| {
            c.segment_ms = at_least(v, 1)?;
            Ok(())
        },
    ),
    stored(
        "unclean.leader.election.enable",
        Boolean,
        Some("unclean.leader.election.enable"),
        "false",
        boolean,
        NO_REPLICAS,
    ),
];

fn no_tiering(value: &str) -> Result<String, String> {
    match boolean(value)?.as_str() {
        "false" => Ok("false".into()),
        _ => Err(format!("{NO_TIERING}: remote.storage.enable must be false")),
    }
}

/// The topic config named `name`.
pub fn topic_key(name: &str) -> Option<&'static TopicKey> {
    TOPIC_KEYS.iter().find(|key| key.name == name)
}

/// The topic config whose default the broker config `broker_name` holds.
pub fn topic_key_of_broker(broker_name: &str) -> Option<&'static TopicKey> {
    TOPIC_KEYS.iter().find(|key| key.broker == Some(broker_name))
}

/// A topic's effective configuration: server defaults with the topic's overrides applied.
/// Every field is set through its [`TOPIC_KEYS`] entry, which holds its default and bounds.
#[derive(Clone, Debug, PartialEq)]
pub struct TopicConfig {
    pub segment_bytes: u64,
    pub segment_ms: i64,
    pub retention_ms: i64,
    pub retention_bytes: i64,
    pub max_message_bytes: u64,
    pub cleanup_policy: CleanupPolicy,
    pub delete_retention_ms: i64,
    pub flush_messages: i64,
    /// How long appended records may wait before the flusher runs: 0 (the default) flushes at
    /// once, so the high watermark trails the log end by one fdatasync.
    pub flush_ms: i64,
    pub message_timestamp_type: TimestampType,
    /// How far before the broker's clock a CreateTime record timestamp may lie; produce
    /// refuses older records with INVALID_TIMESTAMP. Kafka's default sets no limit.
    pub message_timestamp_before_max_ms: i64,
    /// How far after the broker's clock a CreateTime record timestamp may lie; produce
    /// refuses records further in the future with INVALID_TIMESTAMP (Kafka 4's default: an
    /// hour, so a producer's clock error cannot stall time-based retention for years).
    pub message_timestamp_after_max_ms: i64,
    /// acks=all produce is refused (NOT_ENOUGH_REPLICAS) while fewer replicas are in sync.
    pub min_insync_replicas: i32,
    /// Values of the keys Sluice stores without applying them, where they differ from
    /// Kafka's default; set through [`TopicConfig::set`] only.
    stored: BTreeMap<&'static str, String>,
}

impl Default for TopicConfig {
    /// Every key at its table default.
    fn default() -> Self {
        let mut config = TopicConfig {
            segment_bytes: 0,
            segment_ms: 0,
            retention_ms: 0,
            retention_bytes: 0,
            max_message_bytes: 0,
            cleanup_policy: CleanupPolicy::default(),
            delete_retention_ms: 0,
            flush_messages: 0,
            flush_ms: 0,
            message_timestamp_type: TimestampType::CreateTime,
            message_timestamp_before_max_ms: 0,
            message_timestamp_after_max_ms: 0,
            min_insync_replicas: 0,
            stored: BTreeMap::new(),
        };
        for key in TOPIC_KEYS {
            if let Effect::Enforced { default, set, .. } = key.effect {
                set(&mut config, default).unwrap_or_else(|e| panic!("default {}={default}: {e}", key.name));
            }
        }
        config
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
        let topic_key = topic_key(key)?;
        Some(match topic_key.effect {
            Effect::Enforced { get, .. } => get(self),
            Effect::Stored { default, .. } => self.stored.get(key).map_or(default, String::as_str).to_string(),
        })
    }

    /// Parses and validates `value` for `key`; on error the config is unchanged.
    pub fn set(&mut self, key: &str, value: &str) -> Result<(), String> {
        let topic_key = topic_key(key).ok_or_else(|| format!("unknown topic config {key:?}"))?;
        match topic_key.effect {
            Effect::Enforced { set, .. } => set(self, value),
            Effect::Stored { check, .. } => {
                self.stored.insert(topic_key.name, check(value)?);
                Ok(())
            }
        }
    }

    /// Checks every enforced field against its key's bounds; the error names the key. Values
    /// only enter through [`TopicConfig::set`], so this holds unless a field was written
    /// directly.
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        for key in TOPIC_KEYS {
            if let Effect::Enforced { get, set, .. } = key.effect {
                set(&mut self.clone(), &get(self)).map_err(|reason| (key.name, reason))?;
            }
        }
        Ok(())
    }
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
    fn defaults_come_from_the_table_and_print_as_the_table_says() {
        let defaults = TopicConfig::default();
        for key in TOPIC_KEYS {
            assert_eq!(
                defaults.get(key.name).as_deref(),
                Some(key.default_value()),
                "{}",
                key.name
            );
        }
        assert_eq!(defaults.segment_bytes, 1 << 30);
        assert_eq!(defaults.retention_ms, 7 * 24 * 3_600_000);
        assert!(defaults.cleanup_policy.deletes() && !defaults.cleanup_policy.compacts());
    }

    #[test]
    fn bad_override_is_rejected_with_its_key() {
        let mut overrides = BTreeMap::new();
        overrides.insert("segment.bytes".to_string(), "12".to_string());
        let err = TopicConfig::default().with_overrides(&overrides).unwrap_err();
        assert_eq!(err.key, "segment.bytes");
    }
}
