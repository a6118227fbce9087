//! DescribeTopicPartitions (KIP-966): topics and their partitions like Metadata, but paged:
//! topics in name order, at most `response_partition_limit` partitions per answer (capped at
//! Kafka's `max.request.partition.size.limit`, 2000), and a cursor naming where the next
//! page starts. An empty topic list means every topic.

use kafka_protocol::messages::describe_topic_partitions_request::DescribeTopicPartitionsRequest;
use kafka_protocol::messages::describe_topic_partitions_response::{
    Cursor, DescribeTopicPartitionsResponse, DescribeTopicPartitionsResponsePartition,
    DescribeTopicPartitionsResponseTopic,
};
use kafka_protocol::messages::ApiKey;
use kafka_protocol::messages::TopicName;

use crate::acl::{Operation, ResourceType};
use crate::error::KafkaCode;
use crate::ids::PartitionId;
use crate::kafka::context::RequestContext;
use crate::kafka::handlers::metadata::leadership;
use crate::kafka::handlers::{error_code, str_bytes, Api};

/// Kafka's `max.request.partition.size.limit`: partitions one answer may carry.
const PARTITIONS_PER_RESPONSE_MAX: i32 = 2000;

/// The versions served.
pub const API: Api = Api::new(ApiKey::DescribeTopicPartitions, 0, 0);

pub async fn handle(
    ctx: &RequestContext<'_>,
    request: DescribeTopicPartitionsRequest,
) -> DescribeTopicPartitionsResponse {
    let shard = ctx.shard;
    let snapshot = shard.metadata();
    let access = ctx.access();
    let listing = request.topics.is_empty();
    let mut names: Vec<String> = if listing {
        snapshot
            .topics
            .keys()
            .filter(|name| access.sees(Operation::Describe, ResourceType::Topic, name))
            .cloned()
            .collect()
    } else {
        request.topics.iter().map(|t| t.name.0.to_string()).collect()
    };
    names.sort();
    names.dedup();
    let (start_topic, mut start_partition) = match &request.cursor {
        Some(cursor) => (cursor.topic_name.0.to_string(), cursor.partition_index.max(0)),
        None => (String::new(), 0),
    };
    let mut left = request.response_partition_limit.clamp(1, PARTITIONS_PER_RESPONSE_MAX);
    let mut topics = Vec::new();
    let mut next_cursor = None;
    for name in names.into_iter().filter(|n| *n >= start_topic) {
        if name != start_topic {
            start_partition = 0;
        }
        if !listing && !access.allows(Operation::Describe, ResourceType::Topic, &name) {
            topics.push(
                DescribeTopicPartitionsResponseTopic::default()
                    .with_error_code(KafkaCode::TopicAuthorizationFailed.code())
                    .with_name(Some(TopicName(str_bytes(name)))),
            );
            continue;
        }
        let Some(topic) = snapshot.topic(&name) else {
            topics.push(
                DescribeTopicPartitionsResponseTopic::default()
                    .with_error_code(KafkaCode::UnknownTopicOrPartition.code())
                    .with_name(Some(TopicName(str_bytes(name)))),
            );
            continue;
        };
        if left == 0 {
            next_cursor = Some(
                Cursor::default()
                    .with_topic_name(TopicName(str_bytes(name)))
                    .with_partition_index(start_partition),
            );
            break;
        }
        let count = topic.partition_count();
        let end = count.min(start_partition + left);
        let partitions = (start_partition..end)
            .map(|p| {
                let led = leadership(shard, topic, PartitionId(p));
                DescribeTopicPartitionsResponsePartition::default()
                    .with_partition_index(p)
                    .with_error_code(error_code(led.error))
                    .with_leader_id(led.leader)
                    .with_leader_epoch(topic.leader_epoch(PartitionId(p)).0)
                    .with_replica_nodes(led.replicas)
                    .with_isr_nodes(led.isr)
                    .with_offline_replicas(led.offline)
                    .with_eligible_leader_replicas(Some(Vec::new()))
                    .with_last_known_elr(Some(Vec::new()))
            })
            .collect();
        left -= end - start_partition;
        topics.push(
            DescribeTopicPartitionsResponseTopic::default()
                .with_name(Some(TopicName(str_bytes(name.clone()))))
                .with_topic_id(topic.meta.id)
                .with_is_internal(topic.meta.internal)
                .with_partitions(partitions)
                .with_topic_authorized_operations(access.operations(ResourceType::Topic, &name)),
        );
        if end < count {
            next_cursor = Some(
                Cursor::default()
                    .with_topic_name(TopicName(str_bytes(name)))
                    .with_partition_index(end),
            );
            break;
        }
    }
    DescribeTopicPartitionsResponse::default()
        .with_topics(topics)
        .with_next_cursor(next_cursor)
}
