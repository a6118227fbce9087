//! CreatePartitions: grow a topic; existing partitions never move.

use kafka_protocol::messages::create_partitions_request::CreatePartitionsRequest;
use kafka_protocol::messages::create_partitions_response::{CreatePartitionsResponse, CreatePartitionsTopicResult};
use kafka_protocol::messages::ApiKey;

use crate::acl::{Operation, ResourceType};
use crate::error::KafkaCode;
use crate::kafka::context::RequestContext;
use crate::kafka::handlers::{str_bytes, Api};
use crate::node::authority;

/// The versions served.
pub const API: Api = Api::new(ApiKey::CreatePartitions, 0, 3);

pub async fn handle(ctx: &RequestContext<'_>, request: CreatePartitionsRequest) -> CreatePartitionsResponse {
    let shard = ctx.shard;
    let mut results = Vec::with_capacity(request.topics.len());
    for topic in request.topics {
        let name = topic.name.0.to_string();
        if !ctx.allows(Operation::Alter, ResourceType::Topic, &name) {
            results.push(
                CreatePartitionsTopicResult::default()
                    .with_name(topic.name)
                    .with_error_code(KafkaCode::TopicAuthorizationFailed.code())
                    .with_error_message(None),
            );
            continue;
        }
        let assignment = topic.assignments.map(|assignments| {
            assignments
                .into_iter()
                .map(|a| a.broker_ids.into_iter().map(|b| b.0).collect())
                .collect()
        });
        let outcome =
            authority::create_partitions(shard, name.clone(), topic.count, request.validate_only, assignment).await;
        let result = CreatePartitionsTopicResult::default().with_name(topic.name);
        results.push(match outcome {
            Ok(()) => {
                tracing::info!("topic {name} now has {} partitions", topic.count);
                result
            }
            Err(refusal) => result
                .with_error_code(refusal.code.code())
                .with_error_message(Some(str_bytes(refusal.message))),
        });
    }
    CreatePartitionsResponse::default().with_results(results)
}
