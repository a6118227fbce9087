//! Group configs (config resource type GROUP, KIP-848): a consumer-protocol group's own
//! session timeout and heartbeat interval, overriding the broker's defaults within the
//! broker's bounds.

use std::collections::BTreeMap;

use crate::config::values::parse_num;
use crate::config::{ConfigType, ServerConfig};
use crate::error::ConfigError;

/// The group configs Sluice serves, with their types, in the order DescribeConfigs lists them.
pub static GROUP_KEYS: &[(&str, ConfigType)] = &[
    ("consumer.heartbeat.interval.ms", ConfigType::Int),
    ("consumer.session.timeout.ms", ConfigType::Int),
];

/// A consumer-protocol group's effective timing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GroupConfig {
    pub session_timeout_ms: u64,
    pub heartbeat_interval_ms: u64,
}

/// The broker's defaults for every group and the bounds a group's own value must keep.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GroupDefaults {
    pub config: GroupConfig,
    pub session_timeout_ms: (u64, u64),
    pub heartbeat_interval_ms: (u64, u64),
}

impl GroupConfig {
    /// The defaults with a group's `overrides` applied, checked as Kafka checks them.
    pub fn resolve(
        defaults: &GroupDefaults,
        overrides: Option<&BTreeMap<String, String>>,
    ) -> Result<GroupConfig, String> {
        let mut config = defaults.config;
        for (key, value) in overrides.into_iter().flatten() {
            match key.as_str() {
                "consumer.session.timeout.ms" => config.session_timeout_ms = parse_num(value)?,
                "consumer.heartbeat.interval.ms" => config.heartbeat_interval_ms = parse_num(value)?,
                other => return Err(format!("Unknown group config name: {other}")),
            }
        }
        let within = |key: &str, value: u64, (min, max): (u64, u64), min_key: &str, max_key: &str| {
            if value < min {
                Err(format!("{key} must be greater than or equal to {min_key} ({min})"))
            } else if value > max {
                Err(format!("{key} must be less than or equal to {max_key} ({max})"))
            } else {
                Ok(())
            }
        };
        within(
            "consumer.session.timeout.ms",
            config.session_timeout_ms,
            defaults.session_timeout_ms,
            "group.consumer.min.session.timeout.ms",
            "group.consumer.max.session.timeout.ms",
        )?;
        within(
            "consumer.heartbeat.interval.ms",
            config.heartbeat_interval_ms,
            defaults.heartbeat_interval_ms,
            "group.consumer.min.heartbeat.interval.ms",
            "group.consumer.max.heartbeat.interval.ms",
        )?;
        if config.session_timeout_ms <= config.heartbeat_interval_ms {
            return Err("consumer.session.timeout.ms must be greater than consumer.heartbeat.interval.ms".into());
        }
        Ok(config)
    }

    /// The value of `key` as Kafka prints it.
    pub fn get(&self, key: &str) -> Option<String> {
        match key {
            "consumer.session.timeout.ms" => Some(self.session_timeout_ms.to_string()),
            "consumer.heartbeat.interval.ms" => Some(self.heartbeat_interval_ms.to_string()),
            _ => None,
        }
    }
}

impl ServerConfig {
    pub fn group_defaults(&self) -> GroupDefaults {
        GroupDefaults {
            config: GroupConfig {
                session_timeout_ms: self.group_consumer_session_timeout_ms,
                heartbeat_interval_ms: self.group_consumer_heartbeat_interval_ms,
            },
            session_timeout_ms: (
                self.group_consumer_min_session_timeout_ms,
                self.group_consumer_max_session_timeout_ms,
            ),
            heartbeat_interval_ms: (
                self.group_consumer_min_heartbeat_interval_ms,
                self.group_consumer_max_heartbeat_interval_ms,
            ),
        }
    }

    /// The broker's consumer-group timing keeps its own bounds, as Kafka checks at start-up.
    pub(super) fn group_consumer_limits(&self) -> Result<(), ConfigError> {
        let defaults = self.group_defaults();
        if defaults.session_timeout_ms.0 > defaults.session_timeout_ms.1 {
            return Err(ConfigError::new(
                "group.consumer.min.session.timeout.ms",
                "must not exceed group.consumer.max.session.timeout.ms",
            ));
        }
        if defaults.heartbeat_interval_ms.0 == 0 || defaults.heartbeat_interval_ms.0 > defaults.heartbeat_interval_ms.1
        {
            return Err(ConfigError::new(
                "group.consumer.min.heartbeat.interval.ms",
                "must be at least 1 and not exceed group.consumer.max.heartbeat.interval.ms",
            ));
        }
        GroupConfig::resolve(&defaults, None).map_err(|reason| {
            let key = if reason.starts_with("consumer.heartbeat") {
                "group.consumer.heartbeat.interval.ms"
            } else {
                "group.consumer.session.timeout.ms"
            };
            ConfigError::new(key, format!("the broker's default breaks a bound: {reason}"))
        })?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn overrides(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn group_overrides_keep_the_broker_bounds() {
        let defaults = ServerConfig::default().group_defaults();
        assert_eq!(
            GroupConfig::resolve(&defaults, None).unwrap(),
            GroupConfig {
                session_timeout_ms: 45_000,
                heartbeat_interval_ms: 5_000
            }
        );
        let config = GroupConfig::resolve(&defaults, Some(&overrides(&[("consumer.session.timeout.ms", "50000")])));
        assert_eq!(config.unwrap().session_timeout_ms, 50_000);
        for bad in [
            ("consumer.session.timeout.ms", "44999"),
            ("consumer.session.timeout.ms", "60001"),
            ("consumer.heartbeat.interval.ms", "4999"),
            ("consumer.heartbeat.interval.ms", "x"),
            ("share.session.timeout.ms", "45000"),
        ] {
            assert!(
                GroupConfig::resolve(&defaults, Some(&overrides(&[bad]))).is_err(),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn broker_defaults_outside_their_bounds_fail_start_up() {
        let config = ServerConfig::from_toml("\"group.consumer.session.timeout.ms\" = 6000\n").unwrap();
        let err = config.validate().unwrap_err();
        assert_eq!(err.key, "group.consumer.session.timeout.ms");
        let config = ServerConfig::from_toml(
            "\"group.consumer.session.timeout.ms\" = 6000\n\"group.consumer.min.session.timeout.ms\" = 1000\n",
        )
        .unwrap();
        config.validate().unwrap();
    }
}
