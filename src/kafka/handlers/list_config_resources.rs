//! ListConfigResources (KIP-1142; v0 was ListClientMetricsResources): the resources that
//! have configs, of the types asked for (all when none are named): every topic, this
//! broker, and the groups given configs of their own. Sluice keeps no client-metrics
//! resources, so v0 answers an empty list.

use kafka_protocol::messages::list_config_resources_request::ListConfigResourcesRequest;
use kafka_protocol::messages::list_config_resources_response::{ConfigResource, ListConfigResourcesResponse};
use kafka_protocol::messages::ApiKey;

use crate::acl::Operation;
use crate::error::KafkaCode;
use crate::kafka::handlers::{str_bytes, Api};

use crate::kafka::context::RequestContext;
use crate::kafka::handlers::config_resource::{
    RESOURCE_BROKER as BROKER, RESOURCE_BROKER_LOGGER as BROKER_LOGGER, RESOURCE_CLIENT_METRICS as CLIENT_METRICS,
    RESOURCE_GROUP as GROUP, RESOURCE_TOPIC as TOPIC,
};

/// The versions served.
pub const API: Api = Api::new(ApiKey::ListConfigResources, 0, 1);

pub async fn handle(ctx: &RequestContext<'_>, request: ListConfigResourcesRequest) -> ListConfigResourcesResponse {
    if !ctx.allows_cluster(Operation::DescribeConfigs) {
        return ListConfigResourcesResponse::default().with_error_code(KafkaCode::ClusterAuthorizationFailed.code());
    }
    let shard = ctx.shard;
    let version = ctx.api_version;
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
    let snapshot = shard.metadata();
    if wants(TOPIC) {
        resources.extend(snapshot.topics.values().map(|topic| {
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
    if wants(GROUP) {
        resources.extend(snapshot.dynamic.groups.keys().map(|group| {
            ConfigResource::default()
                .with_resource_name(str_bytes(group.clone()))
                .with_resource_type(GROUP)
        }));
    }
    ListConfigResourcesResponse::default().with_config_resources(resources)
}
