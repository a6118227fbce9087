//! IncrementalAlterConfigs: SET, DELETE, APPEND and SUBTRACT on a resource's overrides (a
//! topic's, the brokers', this broker's or a group's). Which keys each resource takes, and
//! their values, are checked on the metadata authority.

use std::collections::{BTreeMap, BTreeSet};

use kafka_protocol::messages::incremental_alter_configs_request::{AlterableConfig, IncrementalAlterConfigsRequest};
use kafka_protocol::messages::incremental_alter_configs_response::{
    AlterConfigsResourceResponse, IncrementalAlterConfigsResponse,
};
use kafka_protocol::messages::ApiKey;

use crate::error::KafkaCode;
use crate::kafka::context::RequestContext;
use crate::kafka::handlers::str_bytes;
use crate::kafka::handlers::{config_resource, Api};
use crate::metadata::Refusal;
use crate::node::authority::{self, Inherited};

const SET: i8 = 0;
const DELETE: i8 = 1;
const APPEND: i8 = 2;
const SUBTRACT: i8 = 3;

/// The versions served.
pub const API: Api = Api::new(ApiKey::IncrementalAlterConfigs, 0, 1);

pub async fn handle(
    ctx: &RequestContext<'_>,
    request: IncrementalAlterConfigsRequest,
) -> IncrementalAlterConfigsResponse {
    let shard = ctx.shard;
    let mut responses = Vec::with_capacity(request.resources.len());
    for resource in request.resources {
        let outcome = match config_resource::authorized_target(
            ctx,
            resource.resource_type,
            &resource.resource_name,
            crate::acl::Operation::AlterConfigs,
        )
        .and_then(|target| distinct(&resource.configs).map(|()| target))
        {
            Ok(target) => {
                let operations = resource.configs;
                let edit = move |overrides: &mut BTreeMap<String, String>, inherited: &Inherited| {
                    apply(overrides, inherited, operations.clone())
                };
                authority::alter_overrides(shard, target, edit, request.validate_only).await
            }
            Err(refusal) => Err(refusal),
        };
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

/// Kafka refuses a resource that names one key twice.
fn distinct(operations: &[AlterableConfig]) -> Result<(), Refusal> {
    let mut seen = BTreeSet::new();
    if operations.iter().all(|op| seen.insert(op.name.as_str())) {
        Ok(())
    } else {
        Err(Refusal::new(
            KafkaCode::InvalidRequest,
            "Error due to duplicate config keys",
        ))
    }
}

/// Applies the operations to a copy of the overrides; the result is checked afterwards.
fn apply(
    overrides: &mut BTreeMap<String, String>,
    inherited: &Inherited,
    operations: Vec<AlterableConfig>,
) -> Result<(), Refusal> {
    for op in operations {
        let key = op.name.to_string();
        let value = op.value.map(|v| v.to_string());
        match op.config_operation {
            SET => {
                let value = value.ok_or_else(|| {
                    Refusal::new(
                        KafkaCode::InvalidRequest,
                        format!("Null value not supported for : {key}"),
                    )
                })?;
                overrides.insert(key, value);
            }
            DELETE => {
                overrides.remove(&key);
            }
            APPEND | SUBTRACT if inherited.is_list(&key) => {
                let value =
                    value.ok_or_else(|| Refusal::new(KafkaCode::InvalidRequest, format!("{key} needs a value")))?;
                let current = overrides
                    .get(&key)
                    .cloned()
                    .or_else(|| inherited.value(&key))
                    .unwrap_or_default();
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
            APPEND => {
                return Err(Refusal::new(
                    KafkaCode::InvalidConfig,
                    format!("Config value append is not allowed for config key: {key}"),
                ));
            }
            SUBTRACT => {
                return Err(Refusal::new(
                    KafkaCode::InvalidConfig,
                    format!("Config value subtract is not allowed for config key: {key}"),
                ));
            }
            other => {
                return Err(Refusal::new(
                    KafkaCode::InvalidRequest,
                    format!("Unknown operations type {other}"),
                ))
            }
        }
    }
    Ok(())
}
