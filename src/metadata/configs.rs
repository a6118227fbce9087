//! Configs changed while the broker runs (AlterConfigs, IncrementalAlterConfigs), kept and
//! persisted with the topic metadata: broker configs for every broker (Kafka's cluster-wide
//! default, resource name "") or for one broker, and group configs. Topic overrides live on
//! their topic; [`ConfigTarget`] names any of the four.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::acl::{AclBinding, AclFilter, Acls};
use crate::config::{
    broker_key, topic_key, topic_key_of_broker, BrokerKey, ConfigType, GroupConfig, GroupDefaults, TopicConfig,
};
use crate::error::{ConfigError, KafkaCode};
use crate::metadata::Refusal;

pub type Overrides = BTreeMap<String, String>;

/// The dynamic configs, as persisted in `meta/cluster.json`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct DynamicConfigs {
    /// Broker configs every broker takes, by Kafka broker name.
    #[serde(default)]
    pub cluster: Overrides,
    /// Broker configs of one broker, by node id; they win over the cluster-wide ones.
    #[serde(default)]
    pub brokers: BTreeMap<i32, Overrides>,
    /// Group configs, by group id.
    #[serde(default)]
    pub groups: BTreeMap<String, Overrides>,
    /// SCRAM credentials managed online (AlterUserScramCredentials): user, then mechanism
    /// name, to what Kafka keeps of them (never a password). Left out of the file while
    /// empty, so files of brokers without online users keep their bytes.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub scram: BTreeMap<String, BTreeMap<String, StoredScram>>,
    /// The ACLs (CreateAcls, DeleteAcls); left out of the file while there are none.
    #[serde(default, skip_serializing_if = "Acls::is_empty")]
    pub acls: Acls,
}

/// One user's SCRAM credential for one mechanism, as persisted and replicated: base64 of the
/// salt, StoredKey and ServerKey, and the iterations.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredScram {
    pub salt: String,
    pub iterations: u32,
    pub stored_key: String,
    pub server_key: String,
}

/// A change of the online SCRAM credentials: each `(user, mechanism)` deleted, each upsert set.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScramChange {
    pub deletions: Vec<(String, String)>,
    pub upserts: Vec<(String, String, StoredScram)>,
}

impl DynamicConfigs {
    /// CreateAcls: adds the (checked) bindings not there yet, all or none, within
    /// [`crate::constants::MAX_ACLS`].
    pub fn add_acls(&mut self, bindings: &[AclBinding]) -> Result<(), Refusal> {
        let new = bindings.iter().filter(|b| !self.acls.contains(b)).count();
        if self.acls.len() + new > crate::constants::MAX_ACLS {
            return Err(Refusal::new(
                KafkaCode::InvalidRequest,
                format!(
                    "{new} more ACLs would pass the limit of {} the cluster keeps",
                    crate::constants::MAX_ACLS
                ),
            ));
        }
        for binding in bindings {
            self.acls.insert(binding.clone());
        }
        Ok(())
    }

    /// DeleteAcls: removes what any filter matches; what each filter matched (an ACL two
    /// filters match is reported under both, as Kafka reports it).
    pub fn remove_acls(&mut self, filters: &[AclFilter]) -> Vec<Vec<AclBinding>> {
        let matched: Vec<Vec<AclBinding>> = filters
            .iter()
            .map(|filter| self.acls.iter().filter(|b| filter.matches(b)).collect())
            .collect();
        for filter in filters {
            self.acls.remove_matching(filter);
        }
        matched
    }

    /// Applies `change` to the SCRAM credentials.
    pub fn apply_scram(&mut self, change: &ScramChange) {
        for (user, mechanism) in &change.deletions {
            if let Some(credentials) = self.scram.get_mut(user) {
                credentials.remove(mechanism);
                if credentials.is_empty() {
                    self.scram.remove(user);
                }
            }
        }
        for (user, mechanism, stored) in &change.upserts {
            self.scram
                .entry(user.clone())
                .or_default()
                .insert(mechanism.clone(), stored.clone());
        }
    }
}

/// A resource whose config overrides the metadata authority keeps.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ConfigTarget {
    Topic(String),
    /// The broker configs of every broker (resource name "").
    Cluster,
    Broker(i32),
    Group(String),
}

impl DynamicConfigs {
    /// The topic defaults of broker `node`: the static ones, then the cluster-wide dynamic
    /// ones, then the broker's own.
    pub fn topic_defaults(&self, statics: &TopicConfig, node: i32) -> Result<TopicConfig, ConfigError> {
        let mut defaults = statics.clone();
        apply_broker_overrides(&mut defaults, &self.cluster)?;
        if let Some(own) = self.brokers.get(&node) {
            apply_broker_overrides(&mut defaults, own)?;
        }
        Ok(defaults)
    }

    pub fn broker(&self, node: i32) -> Option<&Overrides> {
        self.brokers.get(&node)
    }

    pub fn group(&self, group: &str) -> Option<&Overrides> {
        self.groups.get(group)
    }

    /// Replaces the overrides of a broker-level or group `target` (an empty set removes a
    /// broker's or group's entry). Topic overrides live with their topic.
    pub fn set(&mut self, target: &ConfigTarget, overrides: Overrides) {
        match target {
            ConfigTarget::Topic(_) => unreachable!("topic overrides live on the topic"),
            ConfigTarget::Cluster => self.cluster = overrides,
            ConfigTarget::Broker(node) if overrides.is_empty() => {
                self.brokers.remove(node);
            }
            ConfigTarget::Broker(node) => {
                self.brokers.insert(*node, overrides);
            }
            ConfigTarget::Group(group) if overrides.is_empty() => {
                self.groups.remove(group);
            }
            ConfigTarget::Group(group) => {
                self.groups.insert(group.clone(), overrides);
            }
        }
    }
}

/// Applies broker-named topic defaults to `defaults`.
pub fn apply_broker_overrides(defaults: &mut TopicConfig, overrides: &Overrides) -> Result<(), ConfigError> {
    for (name, value) in overrides {
        let key = topic_key_of_broker(name).ok_or_else(|| ConfigError::new(name, "not a dynamic broker config"))?;
        defaults
            .set(key.name, value)
            .map_err(|reason| ConfigError::new(name, reason))?;
    }
    Ok(())
}

/// Checks that every key of a topic's overrides is a topic config.
pub fn check_topic_keys(overrides: &Overrides) -> Result<(), Refusal> {
    match overrides.keys().find(|key| topic_key(key).is_none()) {
        Some(key) => Err(Refusal::new(
            KafkaCode::InvalidConfig,
            format!("Unknown topic config name: {key}"),
        )),
        None => Ok(()),
    }
}

/// Checks that every key of a broker resource's overrides may change while the broker runs.
pub fn check_broker_keys(overrides: &Overrides) -> Result<(), Refusal> {
    let mut read_only = Vec::new();
    for key in overrides.keys() {
        match broker_key(key) {
            BrokerKey::TopicDefault(_) => {}
            BrokerKey::ReadOnly => read_only.push(key.as_str()),
            BrokerKey::Unknown => {
                return Err(Refusal::new(
                    KafkaCode::InvalidConfig,
                    format!("Unknown broker config name: {key}"),
                ))
            }
        }
    }
    if !read_only.is_empty() {
        return Err(Refusal::new(
            KafkaCode::InvalidRequest,
            format!(
                "Cannot update these configs dynamically: {}. Sluice reads them at start-up: set them in the \
                 config file and restart.",
                read_only.join(", ")
            ),
        ));
    }
    Ok(())
}

/// Checks a group's overrides against the broker's defaults and bounds. Kafka's share- and
/// streams-group configs are refused by name: Sluice serves neither kind of group.
pub fn check_group(defaults: &GroupDefaults, overrides: &Overrides) -> Result<GroupConfig, Refusal> {
    for key in overrides.keys() {
        let kind = if key.starts_with("share.") {
            "share"
        } else if key.starts_with("streams.") {
            "streams"
        } else {
            continue;
        };
        return Err(Refusal::new(
            KafkaCode::InvalidConfig,
            format!("Sluice serves no {kind} groups, so it does not take the group config {key}"),
        ));
    }
    GroupConfig::resolve(defaults, Some(overrides)).map_err(|reason| Refusal::new(KafkaCode::InvalidConfig, reason))
}

/// Whether `key` of `target` holds a list (so APPEND and SUBTRACT apply to it).
pub fn is_list(target: &ConfigTarget, key: &str) -> bool {
    let topic = match target {
        ConfigTarget::Topic(_) => topic_key(key),
        ConfigTarget::Cluster | ConfigTarget::Broker(_) => topic_key_of_broker(key),
        ConfigTarget::Group(_) => None,
    };
    topic.is_some_and(|k| k.kind == ConfigType::List)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn overrides(pairs: &[(&str, &str)]) -> Overrides {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn broker_overrides_win_over_cluster_ones_over_statics() {
        let statics = TopicConfig::default();
        let configs = DynamicConfigs {
            cluster: overrides(&[("log.retention.ms", "1000"), ("log.segment.bytes", "1048576")]),
            brokers: [(0, overrides(&[("log.retention.ms", "2000")]))].into(),
            groups: BTreeMap::new(),
            scram: BTreeMap::new(),
            acls: Acls::default(),
        };
        let defaults = configs.topic_defaults(&statics, 0).unwrap();
        assert_eq!(defaults.retention_ms, 2000);
        assert_eq!(defaults.segment_bytes, 1_048_576);
        assert_eq!(configs.topic_defaults(&statics, 1).unwrap().retention_ms, 1000);
    }

    #[test]
    fn broker_keys_are_refused_by_name() {
        check_broker_keys(&overrides(&[("log.retention.ms", "1")])).unwrap();
        let refused = check_broker_keys(&overrides(&[("num.partitions", "3"), ("listeners", "x")])).unwrap_err();
        assert_eq!(refused.code, KafkaCode::InvalidRequest);
        assert!(
            refused.message.contains("listeners, num.partitions"),
            "{}",
            refused.message
        );
        let unknown = check_broker_keys(&overrides(&[("retention.ms", "1")])).unwrap_err();
        assert_eq!(unknown.code, KafkaCode::InvalidConfig);
        assert!(check_topic_keys(&overrides(&[("log.retention.ms", "1")])).is_err());
    }

    #[test]
    fn an_acl_two_filters_match_is_reported_under_both() {
        use crate::acl::{Operation, PatternType, Permission, ResourcePattern, ResourceType};
        let mut configs = DynamicConfigs::default();
        let binding = AclBinding::new(
            ResourcePattern {
                kind: ResourceType::Topic,
                name: "t".into(),
                pattern: PatternType::Literal,
            },
            "User:a",
            "*",
            Operation::Read,
            Permission::Allow,
        );
        configs.add_acls(std::slice::from_ref(&binding)).unwrap();
        let by_topic = AclFilter {
            kind: Some(ResourceType::Topic),
            ..AclFilter::any()
        };
        let removed = configs.remove_acls(&[by_topic, AclFilter::any()]);
        assert_eq!(removed, vec![vec![binding.clone()], vec![binding]]);
        assert!(configs.acls.is_empty());
    }

    #[test]
    fn scram_changes_delete_then_upsert() {
        let stored = |iterations| StoredScram {
            salt: "c2FsdA==".into(),
            iterations,
            stored_key: "a2V5".into(),
            server_key: "a2V5".into(),
        };
        let mut configs = DynamicConfigs::default();
        configs.apply_scram(&ScramChange {
            deletions: Vec::new(),
            upserts: vec![("carol".into(), "SCRAM-SHA-256".into(), stored(4096))],
        });
        configs.apply_scram(&ScramChange {
            deletions: vec![("carol".into(), "SCRAM-SHA-256".into())],
            upserts: vec![("dave".into(), "SCRAM-SHA-512".into(), stored(8192))],
        });
        assert!(
            !configs.scram.contains_key("carol"),
            "a user without credentials is gone"
        );
        assert_eq!(configs.scram["dave"]["SCRAM-SHA-512"].iterations, 8192);
    }
}
