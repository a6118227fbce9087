//! DeleteRecords: moves partitions' log start offsets forward; what lies below is no longer
//! readable (OFFSET_OUT_OF_RANGE) and whole segments below it are deleted.

use std::rc::Rc;

use kafka_protocol::messages::delete_records_request::DeleteRecordsRequest;
use kafka_protocol::messages::delete_records_response::{
    DeleteRecordsPartitionResult, DeleteRecordsResponse, DeleteRecordsTopicResult,
};
use kafka_protocol::messages::ApiKey;

use crate::acl::{Operation, ResourceType};
use crate::error::KafkaCode;
use crate::ids::PartitionId;
use crate::kafka::context::RequestContext;
use crate::kafka::handlers::{error_code, fan_out_slots, Api};
use crate::node::Shard;
use crate::storage::log::ReadError;

/// (error, low watermark) of one partition.
type Answer = (Option<KafkaCode>, i64);

/// The versions served.
pub const API: Api = Api::new(ApiKey::DeleteRecords, 0, 2);

pub async fn handle(ctx: &RequestContext<'_>, request: DeleteRecordsRequest) -> DeleteRecordsResponse {
    let shard = ctx.shard;
    let snapshot = shard.metadata();
    let access = ctx.access();
    let denied: Vec<bool> = request
        .topics
        .iter()
        .map(|topic| !access.allows(Operation::Delete, ResourceType::Topic, &topic.name.0))
        .collect();
    let slots = request
        .topics
        .iter()
        .zip(&denied)
        .flat_map(|(topic, denied)| {
            // Internal topics cannot be trimmed by clients; denied ones are answered here.
            let found = snapshot.topic(&topic.name.0).filter(|t| !t.meta.internal && !denied);
            topic.partitions.iter().map(move |p| {
                let partition = PartitionId(p.partition_index);
                found
                    .and_then(|t| t.owner(partition))
                    .map(|owner| (owner, (topic.name.0.to_string(), partition, p.offset)))
            })
        })
        .collect();
    let mut answers = fan_out_slots(
        shard,
        slots,
        delete,
        || (Some(KafkaCode::NotLeaderOrFollower), -1),
        || (Some(KafkaCode::UnknownTopicOrPartition), -1),
    )
    .await
    .into_iter();
    let topics = request
        .topics
        .into_iter()
        .zip(denied)
        .map(|(topic, denied)| {
            let partitions = topic
                .partitions
                .iter()
                .map(|p| {
                    let (error, low) = answers.next().expect("one answer per partition");
                    let error = if denied {
                        Some(KafkaCode::TopicAuthorizationFailed)
                    } else {
                        error
                    };
                    DeleteRecordsPartitionResult::default()
                        .with_partition_index(p.partition_index)
                        .with_error_code(error_code(error))
                        .with_low_watermark(low)
                })
                .collect();
            DeleteRecordsTopicResult::default()
                .with_name(topic.name)
                .with_partitions(partitions)
        })
        .collect();
    DeleteRecordsResponse::default().with_topics(topics)
}

/// Runs on the partition's owner shard.
async fn delete(shard: Rc<Shard>, (topic, partition, offset): (String, PartitionId, i64)) -> Answer {
    let log = match shard.log_for(&topic, partition) {
        Ok(log) => log,
        Err(code) => return (Some(code), -1),
    };
    match log.delete_records(offset).await {
        Ok(low) => (None, low.0),
        Err(ReadError::OutOfRange { .. }) => (Some(KafkaCode::OffsetOutOfRange), -1),
        Err(ReadError::Storage(e)) => {
            tracing::error!("{topic}-{partition}: delete records: {e}");
            (Some(e.kafka_code()), -1)
        }
    }
}
