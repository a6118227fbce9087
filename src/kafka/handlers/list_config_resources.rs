//! ListConfigResources (KIP-1142; v0 was ListClientMetricsResources): the resources that
//! have configs, of the types asked for (all when none are named): every topic, and this
//! broker. Sluice keeps no client-metrics resources, so v0 answers an empty list.

use std::rc::Rc;

use kafka_protocol::messages::list_config_resources_request::ListConfigResourcesRequest;
use kafka_protocol::messages::list_config_resources_response::{ConfigResource, ListConfigResourcesResponse};

use crate::error::KafkaCode;
use crate::kafka::handlers::str_bytes;
use crate::shard::Shard;

/// Kafka's ConfigResource types.
const TOPIC: i8 = 2;
const BROKER: i8 = 4;
const BROKER_LOGGER: i8 = 8;
const CLIENT_METRICS: i8 = 16;
const GROUP: i8 = 32;

pub fn handle(shard: &Rc<Shard>, version: i16, request: ListConfigResourcesRequest) -> ListConfigResourcesResponse {
    if version == 0 {
        return ListConfigResourcesResponse::default();
    }
    let known = [TOPIC, BROKER, BROKER_LOGGER, CLIENT_METRICS, GROUP];
    if let Some(unknown) = request.resource_types.iter().find(|t| !known.contains(t)) {
        tracing::debug!("ListConfigResources: unknown resource type {unknown}");
        return ListConfigResourcesResponse::default().with_error_code(KafkaCode::UnsupportedVersion.code());
    }
    let wants = |kind: i8| request.resource_types.is_empty() || request.resource_types.contains(&kind);
    let mut resources = Vec::new();
    if wants(TOPIC) {
        resources.extend(shard.metadata().topics.values().map(|topic| {
            ConfigResource::default()
                .with_resource_name(str_bytes(topic.meta.name.clone()))
                .with_resource_type(TOPIC)
        }));
    }
    if wants(BROKER) {
        resources.push(
            ConfigResource::default()
                .with_resource_name(str_bytes(shard.identity.node_id.0.to_string()))
                .with_resource_type(BROKER),
        );
    }
    ListConfigResourcesResponse::default().with_config_resources(resources)
}
