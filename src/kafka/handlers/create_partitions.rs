//! CreatePartitions: grow a topic; existing partitions never move.

use std::rc::Rc;

use kafka_protocol::messages::create_partitions_request::CreatePartitionsRequest;
use kafka_protocol::messages::create_partitions_response::{CreatePartitionsResponse, CreatePartitionsTopicResult};

use crate::kafka::handlers::str_bytes;
use crate::metadata::authority;
use crate::shard::Shard;

pub async fn handle(shard: &Rc<Shard>, request: CreatePartitionsRequest) -> CreatePartitionsResponse {
    let mut results = Vec::with_capacity(request.topics.len());
    for topic in request.topics {
        let name = topic.name.0.to_string();
        let outcome = authority::create_partitions(shard, name.clone(), topic.count, request.validate_only).await;
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
