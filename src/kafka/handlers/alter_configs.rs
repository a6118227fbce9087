//! AlterConfigs (the pre-incremental API, still what librdkafka's `AlterConfigs` sends): the
//! given configs replace the resource's whole override set (a topic's, the brokers', this
//! broker's or a group's).

use std::collections::BTreeMap;

use kafka_protocol::messages::alter_configs_request::{AlterConfigsRequest, AlterableConfig};
use kafka_protocol::messages::alter_configs_response::{AlterConfigsResourceResponse, AlterConfigsResponse};
use kafka_protocol::messages::ApiKey;

use crate::error::KafkaCode;
use crate::kafka::context::RequestContext;
use crate::kafka::handlers::str_bytes;
use crate::kafka::handlers::{config_resource, Api};
use crate::metadata::Refusal;
use crate::node::authority;

/// The versions served.
pub const API: Api = Api::new(ApiKey::AlterConfigs, 0, 2);

pub async fn handle(ctx: &RequestContext<'_>, request: AlterConfigsRequest) -> AlterConfigsResponse {
    let shard = ctx.shard;
    let mut responses = Vec::with_capacity(request.resources.len());
    for resource in request.resources {
        let outcome = match (
            config_resource::authorized_target(
                ctx,
                resource.resource_type,
                &resource.resource_name,
                crate::acl::Operation::AlterConfigs,
            ),
            replacement(resource.configs),
        ) {
            (Ok(target), Ok(configs)) => {
                let edit = move |overrides: &mut BTreeMap<String, String>, _: &authority::Inherited| {
                    *overrides = configs.clone();
                    Ok(())
                };
                authority::alter_overrides(shard, target, edit, request.validate_only).await
            }
            (Err(refusal), _) | (_, Err(refusal)) => Err(refusal),
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
    AlterConfigsResponse::default().with_responses(responses)
}

/// The new override set; which keys the resource takes is checked on the metadata authority.
fn replacement(configs: Vec<AlterableConfig>) -> Result<BTreeMap<String, String>, Refusal> {
    let mut overrides = BTreeMap::new();
    for config in configs {
        let key = config.name.to_string();
        let Some(value) = config.value else {
            return Err(Refusal::new(
                KafkaCode::InvalidRequest,
                format!("Null value not supported for : {key}"),
            ));
        };
        if overrides.insert(key, value.to_string()).is_some() {
            return Err(Refusal::new(
                KafkaCode::InvalidRequest,
                "Error due to duplicate config keys",
            ));
        }
    }
    Ok(overrides)
}
