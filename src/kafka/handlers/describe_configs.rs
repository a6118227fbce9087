//! DescribeConfigs: a topic's effective configs (each marked as set on the topic or
//! defaulted), and the broker's topic defaults.

use std::rc::Rc;

use kafka_protocol::messages::describe_configs_request::DescribeConfigsRequest;
use kafka_protocol::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResponse, DescribeConfigsResult,
};

use crate::config::{TopicConfig, TOPIC_CONFIG_KEYS};
use crate::error::KafkaCode;
use crate::kafka::handlers::config_resource::{RESOURCE_BROKER, RESOURCE_TOPIC};
use crate::kafka::handlers::create_topics::{SOURCE_DEFAULT, SOURCE_TOPIC};
use crate::kafka::handlers::str_bytes;
use crate::shard::Shard;

const SOURCE_STATIC_BROKER: i8 = 4;

/// Kafka's ConfigType codes, for clients that show them (v3+).
fn config_type(key: &str) -> i8 {
    match key {
        "cleanup.policy" => 7,
        "compression.type" | "message.timestamp.type" => 2,
        "max.message.bytes" | "min.insync.replicas" => 3,
        _ => 5,
    }
}

pub fn handle(shard: &Rc<Shard>, version: i16, request: DescribeConfigsRequest) -> DescribeConfigsResponse {
    let snapshot = shard.metadata();
    let results = request
        .resources
        .into_iter()
        .map(|resource| {
            let name = resource.resource_name.to_string();
            // Null asks for every config; so does an empty list.
            let wanted = |key: &str| {
                resource
                    .configuration_keys
                    .as_ref()
                    .filter(|keys| !keys.is_empty())
                    .is_none_or(|keys| keys.iter().any(|k| k.as_str() == key))
            };
            // The codec's default message is ""; Kafka answers success with a null one.
            let result = DescribeConfigsResult::default()
                .with_error_message(None)
                .with_resource_type(resource.resource_type)
                .with_resource_name(resource.resource_name.clone());
            match resource.resource_type {
                RESOURCE_TOPIC => match snapshot.topic(&name) {
                    Some(topic) => result.with_configs(entries(&topic.config, version, &wanted, |key| {
                        if topic.meta.overrides.contains_key(key) {
                            SOURCE_TOPIC
                        } else {
                            SOURCE_DEFAULT
                        }
                    })),
                    None => result
                        .with_error_code(KafkaCode::UnknownTopicOrPartition.code())
                        .with_error_message(Some(str_bytes(format!("Topic '{name}' does not exist.")))),
                },
                RESOURCE_BROKER if name.is_empty() || name == shard.identity.node_id.to_string() => result
                    .with_configs(entries(&shard.config.topic_defaults, version, &wanted, |_| {
                        SOURCE_STATIC_BROKER
                    })),
                RESOURCE_BROKER => result
                    .with_error_code(KafkaCode::InvalidRequest.code())
                    .with_error_message(Some(str_bytes(format!("Unknown broker {name}")))),
                other => result
                    .with_error_code(KafkaCode::InvalidRequest.code())
                    .with_error_message(Some(str_bytes(format!("Resource type {other} has no configs here")))),
            }
        })
        .collect();
    DescribeConfigsResponse::default().with_results(results)
}

fn entries(
    config: &TopicConfig,
    version: i16,
    wanted: &dyn Fn(&str) -> bool,
    source: impl Fn(&str) -> i8,
) -> Vec<DescribeConfigsResourceResult> {
    TOPIC_CONFIG_KEYS
        .iter()
        .filter(|key| wanted(key))
        .map(|key| {
            let entry = DescribeConfigsResourceResult::default()
                .with_name(str_bytes(*key))
                .with_value(config.get(key).map(str_bytes))
                .with_config_source(source(key));
            if version >= 3 {
                entry.with_config_type(config_type(key))
            } else {
                entry
            }
        })
        .collect()
}
