//! DescribeConfigs: a topic's configs (every one Kafka 4.2 defines), the broker's (its own,
//! read-only, and the dynamic topic defaults under Kafka's broker names), the cluster-wide
//! dynamic broker configs (resource name ""), and a group's. Each value says where it comes
//! from, as Kafka's sources and synonyms do: a topic override, a dynamic broker config (this
//! broker's, then every broker's), the config file, or the default.

use kafka_protocol::messages::describe_configs_request::{DescribeConfigsRequest, DescribeConfigsResource};
use kafka_protocol::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResponse, DescribeConfigsResult, DescribeConfigsSynonym,
};
use kafka_protocol::messages::ApiKey;

use crate::config::{ConfigType, Effect, GroupConfig, TopicConfig, TopicKey, GROUP_KEYS, TOPIC_KEYS};
use crate::kafka::context::RequestContext;
use crate::kafka::handlers::str_bytes;
use crate::kafka::handlers::{config_resource, Api};
use crate::metadata::configs::ConfigTarget;
use crate::metadata::{MetadataSnapshot, Topic};
use crate::node::Shard;

/// Kafka's ConfigSource codes.
const SOURCE_TOPIC: i8 = 1;
const SOURCE_DYNAMIC_BROKER: i8 = 2;
const SOURCE_DYNAMIC_DEFAULT_BROKER: i8 = 3;
const SOURCE_STATIC_BROKER: i8 = 4;
const SOURCE_DEFAULT: i8 = 5;
const SOURCE_GROUP: i8 = 8;

/// One config as described, before the wire form.
struct Described {
    name: String,
    value: Option<String>,
    kind: ConfigType,
    read_only: bool,
    /// Where the value could come from, the one in force first.
    synonyms: Vec<(String, Option<String>, i8)>,
    documentation: Option<String>,
}

impl Described {
    fn into_result(self, request: &DescribeConfigsRequest) -> DescribeConfigsResourceResult {
        let source = self.synonyms.first().map_or(SOURCE_DEFAULT, |s| s.2);
        let synonyms = if request.include_synonyms {
            self.synonyms
                .into_iter()
                .map(|(name, value, source)| {
                    DescribeConfigsSynonym::default()
                        .with_name(str_bytes(name))
                        .with_value(value.map(str_bytes))
                        .with_source(source)
                })
                .collect()
        } else {
            Vec::new()
        };
        DescribeConfigsResourceResult::default()
            .with_name(str_bytes(self.name))
            .with_value(self.value.map(str_bytes))
            .with_read_only(self.read_only)
            .with_config_source(source)
            .with_synonyms(synonyms)
            .with_config_type(self.kind.code())
            .with_documentation(
                request
                    .include_documentation
                    .then_some(self.documentation)
                    .flatten()
                    .map(str_bytes),
            )
    }
}

/// What every entry of one answer reads: the metadata, the config file's and the built-in
/// topic defaults.
struct View<'a> {
    shard: &'a Shard,
    snapshot: &'a MetadataSnapshot,
    builtin: TopicConfig,
}

/// The versions served.
pub const API: Api = Api::new(ApiKey::DescribeConfigs, 1, 4);

pub async fn handle(ctx: &RequestContext<'_>, request: DescribeConfigsRequest) -> DescribeConfigsResponse {
    let shard = ctx.shard;
    let snapshot = shard.metadata();
    let view = View {
        shard,
        snapshot: &snapshot,
        builtin: TopicConfig::default(),
    };
    let results = request
        .resources
        .iter()
        .map(|resource| {
            // The codec's default message is ""; Kafka answers success with a null one.
            let result = DescribeConfigsResult::default()
                .with_error_message(None)
                .with_resource_type(resource.resource_type)
                .with_resource_name(resource.resource_name.clone());
            let described = config_resource::authorized_target(
                ctx,
                resource.resource_type,
                &resource.resource_name,
                crate::acl::Operation::DescribeConfigs,
            )
            .and_then(|target| view.describe(&target));
            match described {
                Ok(entries) => result.with_configs(
                    entries
                        .into_iter()
                        .filter(|entry| wanted(resource, &entry.name))
                        .map(|entry| entry.into_result(&request))
                        .collect(),
                ),
                Err(refusal) => result
                    .with_error_code(refusal.code.code())
                    .with_error_message(Some(str_bytes(refusal.message))),
            }
        })
        .collect();
    DescribeConfigsResponse::default().with_results(results)
}

/// Null asks for every config; so does an empty list.
fn wanted(resource: &DescribeConfigsResource, key: &str) -> bool {
    resource
        .configuration_keys
        .as_ref()
        .filter(|keys| !keys.is_empty())
        .is_none_or(|keys| keys.iter().any(|k| k.as_str() == key))
}

impl View<'_> {
    fn describe(&self, target: &ConfigTarget) -> Result<Vec<Described>, crate::metadata::Refusal> {
        Ok(match target {
            ConfigTarget::Topic(name) => {
                let topic = self.snapshot.topic(name).ok_or_else(|| {
                    crate::metadata::Refusal::new(
                        crate::error::KafkaCode::UnknownTopicOrPartition,
                        format!("Topic '{name}' does not exist."),
                    )
                })?;
                self.topic(topic)
            }
            ConfigTarget::Cluster => self.cluster(),
            ConfigTarget::Broker(_) => self.broker(),
            ConfigTarget::Group(group) => self.group(group),
        })
    }

    /// Every topic config Kafka defines, with the topic's value.
    fn topic(&self, topic: &Topic) -> Vec<Described> {
        topic_entries(self, &topic.config, &topic.meta.overrides)
    }

    /// Only the configs set for every broker, as Kafka answers the resource named "".
    fn cluster(&self) -> Vec<Described> {
        self.snapshot
            .dynamic
            .cluster
            .iter()
            .filter_map(|(name, value)| {
                let key = crate::config::topic_key_of_broker(name)?;
                Some(Described {
                    name: name.clone(),
                    value: Some(value.clone()),
                    kind: key.kind,
                    read_only: false,
                    synonyms: vec![(name.clone(), Some(value.clone()), SOURCE_DYNAMIC_DEFAULT_BROKER)],
                    documentation: documentation(key),
                })
            })
            .collect()
    }

    /// This broker's own configs (read-only) and its topic defaults (dynamic).
    fn broker(&self) -> Vec<Described> {
        let identity = &self.shard.identity;
        let listeners: Vec<String> = identity
            .listeners
            .iter()
            .map(|l| format!("{}://{}", l.name, l.addr))
            .collect();
        let listeners = listeners.join(",");
        let advertised: Vec<String> = identity
            .listeners
            .iter()
            .map(|l| format!("{}://{}:{}", l.name, l.advertised_host, l.advertised_port))
            .collect();
        let advertised = advertised.join(",");
        let config = &self.shard.config;
        let mut entries: Vec<Described> = config
            .broker_settings(&listeners, &advertised)
            .into_iter()
            .map(|setting| {
                let source = if config.explicit.contains(setting.name) {
                    SOURCE_STATIC_BROKER
                } else {
                    SOURCE_DEFAULT
                };
                Described {
                    name: setting.name.to_string(),
                    value: setting.value.clone(),
                    kind: setting.kind,
                    read_only: true,
                    synonyms: vec![(setting.name.to_string(), setting.value, source)],
                    documentation: None,
                }
            })
            .collect();
        entries.extend(TOPIC_KEYS.iter().filter_map(|key| {
            let broker = key.broker?;
            Some(Described {
                name: broker.to_string(),
                value: self.snapshot.topic_defaults.get(key.name),
                kind: key.kind,
                read_only: false,
                synonyms: self.broker_synonyms(key, broker),
                documentation: documentation(key),
            })
        }));
        entries.sort_by(|a, b| a.name.cmp(&b.name));
        entries
    }

    /// A group's configs: its own where set, the broker's defaults otherwise.
    fn group(&self, group: &str) -> Vec<Described> {
        let overrides = self.snapshot.dynamic.group(group);
        let defaults = self.shard.config.group_defaults();
        let config = GroupConfig::resolve(&defaults, overrides).unwrap_or(defaults.config);
        GROUP_KEYS
            .iter()
            .map(|&(name, kind)| {
                let value = config.get(name);
                let source = if overrides.is_some_and(|o| o.contains_key(name)) {
                    SOURCE_GROUP
                } else {
                    SOURCE_DEFAULT
                };
                Described {
                    name: name.to_string(),
                    value: value.clone(),
                    kind,
                    read_only: false,
                    synonyms: vec![(name.to_string(), value, source)],
                    documentation: None,
                }
            })
            .collect()
    }

    /// Where the broker config `broker` (the default of topic config `key`) comes from, the
    /// one in force first: this broker's dynamic config, every broker's, the config file,
    /// the built-in default.
    fn broker_synonyms(&self, key: &TopicKey, broker: &str) -> Vec<(String, Option<String>, i8)> {
        let dynamic = &self.snapshot.dynamic;
        let node = self.shard.identity.node_id.0;
        let mut synonyms = Vec::new();
        if let Some(value) = dynamic.broker(node).and_then(|own| own.get(broker)) {
            synonyms.push((broker.to_string(), Some(value.clone()), SOURCE_DYNAMIC_BROKER));
        }
        if let Some(value) = dynamic.cluster.get(broker) {
            synonyms.push((broker.to_string(), Some(value.clone()), SOURCE_DYNAMIC_DEFAULT_BROKER));
        }
        if self.shard.config.explicit.contains(broker) {
            synonyms.push((
                broker.to_string(),
                self.shard.config.topic_defaults.get(key.name),
                SOURCE_STATIC_BROKER,
            ));
        }
        synonyms.push((broker.to_string(), self.builtin.get(key.name), SOURCE_DEFAULT));
        synonyms
    }
}

/// Every topic config of a topic whose effective config is `config` and whose own overrides
/// are `overrides`; CreateTopics answers with the same.
fn topic_entries(
    view: &View,
    config: &TopicConfig,
    overrides: &std::collections::BTreeMap<String, String>,
) -> Vec<Described> {
    TOPIC_KEYS
        .iter()
        .map(|key| {
            let value = config.get(key.name);
            let mut synonyms = Vec::new();
            if overrides.contains_key(key.name) {
                synonyms.push((key.name.to_string(), value.clone(), SOURCE_TOPIC));
            }
            if let Some(broker) = key.broker {
                synonyms.extend(view.broker_synonyms(key, broker));
            }
            Described {
                name: key.name.to_string(),
                value,
                kind: key.kind,
                read_only: false,
                synonyms,
                documentation: documentation(key),
            }
        })
        .collect()
}

/// The configs of a topic with `overrides` (validated), each with where its value comes
/// from: the topic, a dynamic broker config, the config file or the default (CreateTopics
/// v5+ reports them).
pub fn topic_sources(
    shard: &Shard,
    overrides: &std::collections::BTreeMap<String, String>,
) -> Vec<(&'static str, Option<String>, i8)> {
    let snapshot = shard.metadata();
    let config = snapshot
        .topic_defaults
        .with_overrides(overrides)
        .expect("overrides were validated");
    let view = View {
        shard,
        snapshot: &snapshot,
        builtin: TopicConfig::default(),
    };
    topic_entries(&view, &config, overrides)
        .into_iter()
        .zip(TOPIC_KEYS)
        .map(|(entry, key)| {
            (
                key.name,
                entry.value,
                entry.synonyms.first().map_or(SOURCE_DEFAULT, |s| s.2),
            )
        })
        .collect()
}

/// What a config Sluice stores without applying says about itself when documentation is asked.
fn documentation(key: &TopicKey) -> Option<String> {
    match key.effect {
        Effect::Enforced { .. } => None,
        Effect::Stored { why, .. } => Some(format!(
            "Sluice keeps and describes this config but does not apply it: {why}."
        )),
    }
}
