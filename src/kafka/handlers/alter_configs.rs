//! AlterConfigs (the pre-incremental API, still what librdkafka's `AlterConfigs` sends): the
//! given configs replace the topic's whole override set.

use std::collections::BTreeMap;
use std::rc::Rc;

use kafka_protocol::messages::alter_configs_request::AlterConfigsRequest;
use kafka_protocol::messages::alter_configs_response::{AlterConfigsResourceResponse, AlterConfigsResponse};

use crate::config::TOPIC_CONFIG_KEYS;
use crate::error::KafkaCode;
use crate::kafka::handlers::config_resource;
use crate::kafka::handlers::str_bytes;
use crate::metadata::Refusal;
use crate::shard::Shard;

pub async fn handle(shard: &Rc<Shard>, request: AlterConfigsRequest) -> AlterConfigsResponse {
    let mut responses = Vec::with_capacity(request.resources.len());
    for resource in request.resources {
        let name = resource.resource_name.to_string();
        let configs = resource.configs;
        let edit = move |overrides: &mut BTreeMap<String, String>| {
            *overrides = replacement(configs)?;
            Ok(())
        };
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
    AlterConfigsResponse::default().with_responses(responses)
}

fn replacement(
    configs: Vec<kafka_protocol::messages::alter_configs_request::AlterableConfig>,
) -> Result<BTreeMap<String, String>, Refusal> {
    let mut overrides = BTreeMap::new();
    for config in configs {
        let key = config.name.to_string();
        if !TOPIC_CONFIG_KEYS.contains(&key.as_str()) {
            return Err(Refusal::new(
                KafkaCode::InvalidConfig,
                format!("Unknown topic config name: {key}"),
            ));
        }
        match config.value {
            Some(value) => {
                overrides.insert(key, value.to_string());
            }
            None => return Err(Refusal::new(KafkaCode::InvalidConfig, format!("Null value for {key}"))),
        }
    }
    Ok(overrides)
}
