//! ListOffsets: earliest (-2), latest (-1), max timestamp (-3), earliest local (-4), or the
//! first offset at or after a timestamp, found through the time index.

use std::rc::Rc;

use kafka_protocol::messages::list_offsets_request::ListOffsetsRequest;
use kafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsResponse, ListOffsetsTopicResponse,
};

use crate::error::KafkaCode;
use crate::ids::PartitionId;
use crate::kafka::handlers::{error_code, fan_out_slots};
use crate::shard::Shard;
use crate::storage::log::LEADER_EPOCH;

const LATEST: i64 = -1;
const EARLIEST: i64 = -2;
const MAX_TIMESTAMP: i64 = -3;
const EARLIEST_LOCAL: i64 = -4;
/// The newest offset in tiered storage (v9+, KIP-1005); Sluice has none.
const LATEST_TIERED: i64 = -5;

/// (error, timestamp, offset) for one partition.
type Answer = (Option<KafkaCode>, i64, i64);

pub async fn handle(shard: &Rc<Shard>, version: i16, request: ListOffsetsRequest) -> ListOffsetsResponse {
    let snapshot = shard.metadata();
    let slots = request
        .topics
        .iter()
        .flat_map(|topic| {
            let found = snapshot.topic(&topic.name.0);
            topic.partitions.iter().map(move |p| {
                let partition = PartitionId(p.partition_index);
                found
                    .and_then(|t| t.owner(partition))
                    .map(|owner| (owner, (topic.name.0.to_string(), partition, p.timestamp)))
            })
        })
        .collect();
    let mut answers = fan_out_slots(
        shard,
        slots,
        lookup,
        || (Some(KafkaCode::NotLeaderOrFollower), -1, -1),
        || (Some(KafkaCode::UnknownTopicOrPartition), -1, -1),
    )
    .await
    .into_iter();
    let topics = request
        .topics
        .into_iter()
        .map(|topic| {
            let partitions = topic
                .partitions
                .iter()
                .map(|p| {
                    let (code, timestamp, offset) = answers.next().expect("one answer per partition");
                    let response = ListOffsetsPartitionResponse::default()
                        .with_partition_index(p.partition_index)
                        .with_error_code(error_code(code))
                        .with_timestamp(timestamp)
                        .with_offset(offset);
                    if version >= 4 && offset >= 0 {
                        response.with_leader_epoch(LEADER_EPOCH)
                    } else {
                        response
                    }
                })
                .collect();
            ListOffsetsTopicResponse::default()
                .with_name(topic.name)
                .with_partitions(partitions)
        })
        .collect();
    ListOffsetsResponse::default().with_topics(topics)
}

/// Runs on the partition's owner shard.
async fn lookup(shard: Rc<Shard>, (topic, partition, timestamp): (String, PartitionId, i64)) -> Answer {
    const OK: Option<KafkaCode> = None;
    let log = match shard.log_for(&topic, partition) {
        Ok(log) => log,
        Err(code) => return (Some(code), -1, -1),
    };
    match timestamp {
        LATEST => (OK, -1, log.high_watermark().0),
        EARLIEST | EARLIEST_LOCAL => (OK, -1, log.log_start_offset().0),
        // Kafka's answer when nothing is tiered: no offset.
        LATEST_TIERED => (OK, -1, -1),
        MAX_TIMESTAMP => match log.max_timestamp() {
            Some((timestamp, offset)) => (OK, timestamp, offset.0),
            None => (OK, -1, -1),
        },
        t if t < 0 => (Some(KafkaCode::InvalidRequest), -1, -1),
        t => match log.offset_for_timestamp(t).await {
            Ok(Some((offset, found))) => (OK, found, offset.0),
            Ok(None) => (OK, -1, -1),
            Err(e) => {
                tracing::error!("{topic}-{partition}: offset for timestamp {t}: {e}");
                (Some(e.kafka_code()), -1, -1)
            }
        },
    }
}
