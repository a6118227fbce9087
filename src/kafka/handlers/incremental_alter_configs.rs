//! IncrementalAlterConfigs: SET, DELETE, APPEND and SUBTRACT on a topic's overrides.
//! Broker configs are static (set in the config file) and refused.

use std::collections::BTreeMap;
use std::rc::Rc;

use kafka_protocol::messages::incremental_alter_configs_request::{AlterableConfig, IncrementalAlterConfigsRequest};
use kafka_protocol::messages::incremental_alter_configs_response::{
    AlterConfigsResourceResponse, IncrementalAlterConfigsResponse,
};

use crate::config::TOPIC_CONFIG_KEYS;
use crate::error::KafkaCode;
use crate::kafka::handlers::config_resource;
use crate::kafka::handlers::str_bytes;
use crate::metadata::Refusal;
use crate::shard::Shard;

const SET: i8 = 0;
const DELETE: i8 = 1;
const APPEND: i8 = 2;
const SUBTRACT: i8 = 3;

pub async fn handle(shard: &Rc<Shard>, request: IncrementalAlterConfigsRequest) -> IncrementalAlterConfigsResponse {
    let mut responses = Vec::with_capacity(request.resources.len());
    for resource in request.resources {
        let name = resource.resource_name.to_string();
        let defaults = shard.config.topic_defaults.clone();
        let operations = resource.configs;
        let edit = move |overrides: &mut BTreeMap<String, String>| apply(overrides, &defaults, operations);
        let outcome = config_resource::alter(shard, resource.resource_type, name, edit, request.validate_only).await;
        // The codec's default message is ""; Kafka answers success with a null one.
        let response = AlterConfigsResourceResponse::default()
            .with_error_message(None)
            .with_resource_type(resource.resource_type)
            .with_resource_name(resource.resource_name);
        responses.push(match outcome {
            Ok(()) => response,
            Err(refusal) => response
                .with_error_code(refusal.code.code())
                .with_error_message(Some(str_bytes(refusal.message))),
        });
    }
    IncrementalAlterConfigsResponse::default().with_responses(responses)
}

/// Applies the operations to a copy of the overrides; validation of the result happens on
/// the authority.
fn apply(
    overrides: &mut BTreeMap<String, String>,
    defaults: &crate::config::TopicConfig,
    operations: Vec<AlterableConfig>,
) -> Result<(), Refusal> {
    for op in operations {
        let key = op.name.to_string();
        if !TOPIC_CONFIG_KEYS.contains(&key.as_str()) {
            return Err(Refusal::new(
                KafkaCode::InvalidConfig,
                format!("Unknown topic config name: {key}"),
            ));
        }
        let value = op.value.map(|v| v.to_string());
        match op.config_operation {
            SET => {
                let value = value
                    .ok_or_else(|| Refusal::new(KafkaCode::InvalidConfig, format!("SET of {key} needs a value")))?;
                overrides.insert(key, value);
            }
            DELETE => {
                overrides.remove(&key);
            }
            APPEND | SUBTRACT if key == "cleanup.policy" => {
                let value =
                    value.ok_or_else(|| Refusal::new(KafkaCode::InvalidConfig, format!("{key} needs a value")))?;
                let current = overrides
                    .get(&key)
                    .cloned()
                    .unwrap_or_else(|| defaults.cleanup_policy.clone());
                let mut items: Vec<String> = current
                    .split(',')
                    .map(|s| s.trim().to_string())
                    .filter(|s| !s.is_empty())
                    .collect();
                for item in value.split(',').map(str::trim).filter(|s| !s.is_empty()) {
                    if op.config_operation == APPEND {
                        if !items.iter().any(|i| i == item) {
                            items.push(item.to_string());
                        }
                    } else {
                        items.retain(|i| i != item);
                    }
                }
                overrides.insert(key, items.join(","));
            }
            APPEND | SUBTRACT => {
                return Err(Refusal::new(
                    KafkaCode::InvalidConfig,
                    format!("{key} is not a list config"),
                ));
            }
            other => {
                return Err(Refusal::new(
                    KafkaCode::InvalidRequest,
                    format!("Unknown config operation {other}"),
                ))
            }
        }
    }
    Ok(())
}
