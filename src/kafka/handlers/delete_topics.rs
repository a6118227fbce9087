//! DeleteTopics: by name (all versions) or by topic id (v6+).

use kafka_protocol::messages::delete_topics_request::DeleteTopicsRequest;
use kafka_protocol::messages::delete_topics_response::{DeletableTopicResult, DeleteTopicsResponse};
use kafka_protocol::messages::ApiKey;
use kafka_protocol::messages::TopicName;

use crate::acl::{Operation, ResourceType};
use crate::error::KafkaCode;
use crate::kafka::context::RequestContext;
use crate::kafka::handlers::{str_bytes, Api};
use crate::node::authority;

/// The versions served.
pub const API: Api = Api::new(ApiKey::DeleteTopics, 1, 6);

pub async fn handle(ctx: &RequestContext<'_>, request: DeleteTopicsRequest) -> DeleteTopicsResponse {
    let shard = ctx.shard;
    let version = ctx.api_version;
    let targets: Vec<(Option<String>, uuid::Uuid)> = if version >= 6 {
        request
            .topics
            .into_iter()
            .map(|t| (t.name.map(|n| n.0.to_string()), t.topic_id))
            .collect()
    } else {
        request
            .topic_names
            .into_iter()
            .map(|n| (Some(n.0.to_string()), uuid::Uuid::nil()))
            .collect()
    };
    let mut responses = Vec::with_capacity(targets.len());
    let access = ctx.access();
    let cluster_delete = access.sees(Operation::Delete, ResourceType::Cluster, crate::acl::CLUSTER_NAME);
    // Kafka's order: a topic the caller may not describe is refused whether or not it
    // exists; one it may describe but not delete is refused too.
    let authorized = |name: &str| {
        cluster_delete
            || (access.allows(Operation::Describe, ResourceType::Topic, name)
                && access.allows(Operation::Delete, ResourceType::Topic, name))
    };
    for (name, id) in targets {
        let resolved = match &name {
            Some(name) => Ok(name.clone()),
            None => shard
                .metadata()
                .topic_by_id(id)
                .map(|t| t.meta.name.clone())
                .ok_or(KafkaCode::UnknownTopicId),
        };
        let resolved = match resolved {
            Ok(name) if !authorized(&name) => Err(KafkaCode::TopicAuthorizationFailed),
            other => other,
        };
        let result = match resolved {
            Ok(resolved) => authority::delete_topic(shard, resolved.clone())
                .await
                .map(|meta| (resolved, meta.id))
                .map_err(|r| (r.code, Some(r.message))),
            Err(code) => Err((code, None)),
        };
        let entry = DeletableTopicResult::default().with_name(name.clone().map(|n| TopicName(str_bytes(n))));
        responses.push(match result {
            Ok((resolved, id)) => {
                tracing::info!("deleted topic {resolved}");
                entry.with_topic_id(id).with_name(Some(TopicName(str_bytes(resolved))))
            }
            Err((code, message)) => entry
                .with_topic_id(id)
                .with_error_code(code.code())
                .with_error_message(message.map(str_bytes)),
        });
    }
    DeleteTopicsResponse::default().with_responses(responses)
}
