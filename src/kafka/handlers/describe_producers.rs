//! DescribeProducers: the idempotent and transactional producers each asked-for partition
//! remembers, from its owner shard, with the first offset of a producer's open transaction.

use kafka_protocol::messages::describe_producers_request::DescribeProducersRequest;
use kafka_protocol::messages::describe_producers_response::{
    DescribeProducersResponse, PartitionResponse, ProducerState, TopicResponse,
};
use kafka_protocol::messages::ApiKey;
use kafka_protocol::messages::ProducerId;

use crate::acl::{Operation, ResourceType};
use crate::error::KafkaCode;
use crate::ids::PartitionId;
use crate::kafka::context::RequestContext;
use crate::kafka::handlers::{fan_out_slots, Api};
use crate::storage::producers::ActiveProducer;

/// The versions served.
pub const API: Api = Api::new(ApiKey::DescribeProducers, 0, 0);

pub async fn handle(ctx: &RequestContext<'_>, request: DescribeProducersRequest) -> DescribeProducersResponse {
    let shard = ctx.shard;
    let snapshot = shard.metadata();
    let access = ctx.access();
    let denied: Vec<bool> = request
        .topics
        .iter()
        .map(|t| !access.allows(Operation::Read, ResourceType::Topic, &t.name.0))
        .collect();
    let slots = request
        .topics
        .iter()
        .zip(&denied)
        .flat_map(|(t, denied)| {
            t.partition_indexes
                .iter()
                .map(move |&p| (t.name.0.to_string(), p, *denied))
        })
        .map(|(name, p, denied)| {
            if denied {
                return None;
            }
            let owner = snapshot.topic(&name).and_then(|t| t.owner(PartitionId(p)))?;
            Some((owner, (name, PartitionId(p))))
        })
        .collect();
    let answers = fan_out_slots(
        shard,
        slots,
        |target, (name, partition): (String, PartitionId)| async move {
            target.log_for(&name, partition).map(|log| log.active_producers())
        },
        || Err(KafkaCode::NotLeaderOrFollower),
        || Err(KafkaCode::UnknownTopicOrPartition),
    )
    .await;
    let mut answers = answers.into_iter();
    let topics = request
        .topics
        .into_iter()
        .zip(denied)
        .map(|(topic, denied)| {
            let partitions = topic
                .partition_indexes
                .iter()
                .map(|&p| {
                    let answer = answers.next().expect("one answer per partition");
                    let answer = if denied {
                        Err(KafkaCode::TopicAuthorizationFailed)
                    } else {
                        answer
                    };
                    let entry = PartitionResponse::default()
                        .with_partition_index(p)
                        .with_error_message(None);
                    match answer {
                        Ok(producers) => entry.with_active_producers(producers.iter().map(state).collect()),
                        Err(code) => entry.with_error_code(code.code()),
                    }
                })
                .collect();
            TopicResponse::default()
                .with_name(topic.name)
                .with_partitions(partitions)
        })
        .collect();
    DescribeProducersResponse::default().with_topics(topics)
}

fn state(producer: &ActiveProducer) -> ProducerState {
    ProducerState::default()
        .with_producer_id(ProducerId(producer.producer_id))
        .with_producer_epoch(i32::from(producer.epoch))
        .with_last_sequence(producer.last_sequence)
        .with_last_timestamp(producer.last_append_ms)
        .with_coordinator_epoch(-1)
        .with_current_txn_start_offset(producer.txn_start_offset.map_or(-1, |o| o.0))
}
