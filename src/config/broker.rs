//! The broker's own configs under Kafka's broker names, as DescribeConfigs shows them, and
//! which broker configs may change while it runs.
//!
//! The broker's own configs are read-only: they are read once at start-up. The topic
//! defaults (`log.retention.ms`, `log.segment.bytes`, ...) are dynamic, as in Kafka: they are
//! [`crate::config::TopicKey::broker`] names, and a change reaches every topic at once.

use crate::config::topic::{topic_key_of_broker, ConfigType, TopicKey};
use crate::config::ServerConfig;

/// One broker config as DescribeConfigs shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BrokerSetting {
    pub name: &'static str,
    pub kind: ConfigType,
    pub value: Option<String>,
}

use ConfigType::{Boolean, Int, List, Long, String as Str};

/// The broker's own configs (read-only), in the order DescribeConfigs lists them. Names
/// Kafka has are Kafka's; the rest are Sluice's own keys.
pub static BROKER_KEYS: &[(&str, ConfigType)] = &[
    ("advertised.listeners", List),
    ("auto.create.topics.enable", Boolean),
    ("batch.cache.bytes", Long),
    ("broker.heartbeat.interval.ms", Long),
    ("broker.id", Int),
    ("broker.session.timeout.ms", Long),
    ("connections.max.idle.ms", Long),
    ("controller.listen", Str),
    ("controller.quorum.voters", List),
    ("cores", Str),
    ("default.replication.factor", Int),
    ("fetch.max.bytes", Int),
    ("fetch.read.memory.bytes", Long),
    ("group.consumer.heartbeat.interval.ms", Int),
    ("group.consumer.max.heartbeat.interval.ms", Int),
    ("group.consumer.max.session.timeout.ms", Int),
    ("group.consumer.min.heartbeat.interval.ms", Int),
    ("group.consumer.min.session.timeout.ms", Int),
    ("group.consumer.session.timeout.ms", Int),
    ("group.initial.rebalance.delay.ms", Int),
    ("group.max.session.timeout.ms", Int),
    ("group.min.session.timeout.ms", Int),
    ("listeners", List),
    ("log.cleaner.backoff.ms", Long),
    ("log.dirs", Str),
    ("log.flush.offset.checkpoint.interval.ms", Int),
    ("log.retention.check.interval.ms", Long),
    ("max.partitions", Long),
    ("metrics.listen", Str),
    ("node.id", Int),
    ("num.partitions", Int),
    ("offset.metadata.max.bytes", Int),
    ("offsets.retention.minutes", Int),
    ("offsets.topic.num.partitions", Int),
    ("offsets.topic.replication.factor", Int),
    ("offsets.topic.segment.bytes", Int),
    ("process.roles", List),
    ("producer.id.expiration.ms", Int),
    ("queued.max.request.bytes", Long),
    ("replica.lag.time.max.ms", Long),
    ("request.frame.timeout.ms", Long),
    ("shard.io.memory.bytes", Long),
    ("shard.ring.depth", Int),
    ("shard.spin.before.park.us", Long),
    ("socket.request.max.bytes", Int),
    ("transaction.abort.timed.out.transaction.cleanup.interval.ms", Int),
    ("transaction.max.timeout.ms", Int),
    ("transaction.state.log.num.partitions", Int),
    ("transaction.state.log.replication.factor", Int),
    ("transaction.version", Int),
    ("transactional.id.expiration.ms", Int),
];

/// What a broker config name is to AlterConfigs.
#[derive(Debug)]
pub enum BrokerKey {
    /// A topic default: changes while the broker runs.
    TopicDefault(&'static TopicKey),
    /// Read once at start-up.
    ReadOnly,
    Unknown,
}

pub fn broker_key(name: &str) -> BrokerKey {
    if let Some(key) = topic_key_of_broker(name) {
        BrokerKey::TopicDefault(key)
    } else if BROKER_KEYS.iter().any(|(key, _)| *key == name) {
        BrokerKey::ReadOnly
    } else {
        BrokerKey::Unknown
    }
}

impl ServerConfig {
    /// The broker's own configs with the values it runs with; `listeners` and
    /// `advertised.listeners` are given as bound and advertised (`PLAINTEXT://host:port`).
    pub fn broker_settings(&self, listeners: &str, advertised: &str) -> Vec<BrokerSetting> {
        BROKER_KEYS
            .iter()
            .map(|&(name, kind)| BrokerSetting {
                name,
                kind,
                value: self.broker_value(name, listeners, advertised),
            })
            .collect()
    }

    fn broker_value(&self, name: &str, listeners: &str, advertised: &str) -> Option<String> {
        let number = |n: u64| Some(n.to_string());
        match name {
            "advertised.listeners" => Some(advertised.to_string()),
            "auto.create.topics.enable" => Some(self.auto_create_topics_enable.to_string()),
            "batch.cache.bytes" => number(self.batch_cache_bytes),
            "broker.heartbeat.interval.ms" => number(self.cluster.broker_heartbeat_interval_ms),
            "broker.session.timeout.ms" => number(self.cluster.broker_session_timeout_ms),
            "controller.listen" => self.cluster.controller_address(self.node_id).ok().flatten(),
            "controller.quorum.voters" => Some(self.cluster.controller_quorum_voters.clone()),
            "default.replication.factor" => Some(self.cluster.default_replication_factor.to_string()),
            "broker.id" | "node.id" => Some(self.node_id.to_string()),
            "connections.max.idle.ms" => number(self.connections_max_idle_ms),
            "cores" => self.cores.clone(),
            "fetch.max.bytes" => number(self.fetch_max_bytes),
            "fetch.read.memory.bytes" => number(self.fetch_read_memory_bytes),
            "group.consumer.heartbeat.interval.ms" => number(self.group_consumer_heartbeat_interval_ms),
            "group.consumer.max.heartbeat.interval.ms" => number(self.group_consumer_max_heartbeat_interval_ms),
            "group.consumer.max.session.timeout.ms" => number(self.group_consumer_max_session_timeout_ms),
            "group.consumer.min.heartbeat.interval.ms" => number(self.group_consumer_min_heartbeat_interval_ms),
            "group.consumer.min.session.timeout.ms" => number(self.group_consumer_min_session_timeout_ms),
            "group.consumer.session.timeout.ms" => number(self.group_consumer_session_timeout_ms),
            "group.initial.rebalance.delay.ms" => number(self.group_initial_rebalance_delay_ms),
            "group.max.session.timeout.ms" => number(self.group_max_session_timeout_ms),
            "group.min.session.timeout.ms" => number(self.group_min_session_timeout_ms),
            "listeners" => Some(listeners.to_string()),
            "log.cleaner.backoff.ms" => number(self.log_cleaner_backoff_ms),
            "log.dirs" => Some(self.data_dir.display().to_string()),
            "log.flush.offset.checkpoint.interval.ms" => number(self.log_flush_offset_checkpoint_interval_ms),
            "log.retention.check.interval.ms" => number(self.log_retention_check_interval_ms),
            "max.partitions" => number(self.max_partitions),
            "metrics.listen" => Some(self.metrics_listen.clone()),
            "num.partitions" => Some(self.num_partitions.to_string()),
            "offset.metadata.max.bytes" => number(self.offset_metadata_max_bytes as u64),
            "offsets.retention.minutes" => Some(self.offsets_retention_minutes.to_string()),
            "offsets.topic.num.partitions" => Some(self.offsets_topic_num_partitions.to_string()),
            "offsets.topic.replication.factor" => Some(self.cluster.offsets_topic_replication_factor.to_string()),
            "offsets.topic.segment.bytes" => number(self.offsets_topic_segment_bytes),
            "process.roles" => Some(self.cluster.process_roles.clone()),
            "producer.id.expiration.ms" => Some(self.producer_id_expiration_ms.to_string()),
            "queued.max.request.bytes" => number(self.queued_max_request_bytes),
            "replica.lag.time.max.ms" => number(self.cluster.replica_lag_time_max_ms),
            "request.frame.timeout.ms" => number(self.request_frame_timeout_ms),
            "shard.io.memory.bytes" => number(self.shard_io_memory_bytes),
            "shard.ring.depth" => number(self.shard_ring_depth),
            "shard.spin.before.park.us" => number(self.shard_spin_before_park_us),
            "transaction.abort.timed.out.transaction.cleanup.interval.ms" => {
                number(self.transaction_cleanup_interval_ms)
            }
            "transaction.max.timeout.ms" => Some(self.transaction_max_timeout_ms.to_string()),
            "transaction.state.log.num.partitions" => Some(self.transaction_state_log_num_partitions.to_string()),
            "transaction.state.log.replication.factor" => {
                Some(self.cluster.transaction_state_log_replication_factor.to_string())
            }
            "transactional.id.expiration.ms" => Some(self.transactional_id_expiration_ms.to_string()),
            "transaction.version" => Some(self.transaction_version.to_string()),
            "socket.request.max.bytes" => number(self.socket_request_max_bytes),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_broker_key_has_a_value_and_none_is_a_topic_default() {
        let config = ServerConfig::default();
        for setting in config.broker_settings("PLAINTEXT://127.0.0.1:9092", "PLAINTEXT://127.0.0.1:9092") {
            assert!(
                setting.value.is_some() || ["cores", "controller.listen"].contains(&setting.name),
                "{} has no value",
                setting.name
            );
            assert!(
                matches!(broker_key(setting.name), BrokerKey::ReadOnly),
                "{}",
                setting.name
            );
        }
        assert!(matches!(broker_key("log.retention.ms"), BrokerKey::TopicDefault(k) if k.name == "retention.ms"));
        assert!(matches!(broker_key("no.such.config"), BrokerKey::Unknown));
        let mut names: Vec<&str> = BROKER_KEYS.iter().map(|(name, _)| *name).collect();
        let unsorted = names.clone();
        names.sort();
        assert_eq!(names, unsorted);
    }
}
