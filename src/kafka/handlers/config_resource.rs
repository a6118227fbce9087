//! What the config APIs share: resource types, and which kept overrides a resource names.

use std::rc::Rc;

use crate::acl::{Operation, ResourceType};
use crate::error::KafkaCode;
use crate::kafka::context::RequestContext;
use crate::metadata::configs::ConfigTarget;
use crate::metadata::Refusal;
use crate::node::Shard;

/// Kafka's ConfigResource types.
pub const RESOURCE_TOPIC: i8 = 2;
pub const RESOURCE_BROKER: i8 = 4;
pub const RESOURCE_BROKER_LOGGER: i8 = 8;
pub const RESOURCE_CLIENT_METRICS: i8 = 16;
pub const RESOURCE_GROUP: i8 = 32;

/// The overrides a config resource names, refused as Kafka refuses them: a broker must be
/// this one (or "", every broker) and a group must be named.
pub fn target(shard: &Rc<Shard>, resource_type: i8, name: &str) -> Result<ConfigTarget, Refusal> {
    match resource_type {
        RESOURCE_TOPIC => Ok(ConfigTarget::Topic(name.to_string())),
        RESOURCE_BROKER if name.is_empty() => Ok(ConfigTarget::Cluster),
        RESOURCE_BROKER => Ok(ConfigTarget::Broker(this_broker(shard, name)?)),
        RESOURCE_GROUP if name.is_empty() => {
            Err(Refusal::new(KafkaCode::InvalidRequest, "Group name must not be empty"))
        }
        RESOURCE_GROUP => Ok(ConfigTarget::Group(name.to_string())),
        RESOURCE_BROKER_LOGGER => Err(Refusal::new(
            KafkaCode::InvalidRequest,
            "Sluice has no broker loggers to configure: its log filter is SLUICE_LOG",
        )),
        RESOURCE_CLIENT_METRICS => Err(Refusal::new(
            KafkaCode::InvalidRequest,
            "Sluice keeps no client metrics subscriptions",
        )),
        other => Err(Refusal::new(
            KafkaCode::InvalidRequest,
            format!("Unsupported resource type: {other}"),
        )),
    }
}

/// [`target`], for a caller who may perform `operation` (DESCRIBE_CONFIGS or ALTER_CONFIGS)
/// on the resource: a topic's or a group's own, the cluster's for the broker-side types.
pub fn authorized_target(
    ctx: &RequestContext<'_>,
    resource_type: i8,
    name: &str,
    operation: Operation,
) -> Result<ConfigTarget, Refusal> {
    let (kind, resource, code, message) = match resource_type {
        RESOURCE_TOPIC => (
            ResourceType::Topic,
            name,
            KafkaCode::TopicAuthorizationFailed,
            "Topic authorization failed.",
        ),
        RESOURCE_GROUP => (
            ResourceType::Group,
            name,
            KafkaCode::GroupAuthorizationFailed,
            "Group authorization failed.",
        ),
        _ => (
            ResourceType::Cluster,
            crate::acl::CLUSTER_NAME,
            KafkaCode::ClusterAuthorizationFailed,
            "Cluster authorization failed.",
        ),
    };
    if !ctx.allows(operation, kind, resource) {
        return Err(Refusal::new(code, message));
    }
    target(ctx.shard, resource_type, name)
}

/// The node id a BROKER resource names, when it is this broker.
fn this_broker(shard: &Rc<Shard>, name: &str) -> Result<i32, Refusal> {
    let node = name.parse::<i32>().map_err(|_| {
        Refusal::new(
            KafkaCode::InvalidRequest,
            format!("Broker id must be an integer, but it is: {name}"),
        )
    })?;
    let own = shard.identity.node_id.0;
    if node != own {
        return Err(Refusal::new(
            KafkaCode::InvalidRequest,
            format!("Unexpected broker id, expected {own} or empty string, but received {name}"),
        ));
    }
    Ok(node)
}
