//! ListOffsets: earliest (-2), latest (-1), max timestamp (-3), earliest local (-4), latest
//! tiered (-5), earliest pending upload (-6), or the first offset at or after a timestamp,
//! found through the time index. A sentinel older than the request's version is refused
//! with UNSUPPORTED_VERSION, as Kafka refuses it.

use std::rc::Rc;

use kafka_protocol::messages::list_offsets_request::ListOffsetsRequest;
use kafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsResponse, ListOffsetsTopicResponse,
};
use kafka_protocol::messages::ApiKey;

use crate::acl::{Operation, ResourceType};
use crate::error::KafkaCode;
use crate::ids::PartitionId;
use crate::kafka::context::RequestContext;
use crate::kafka::handlers::{error_code, fan_out_slots, Api};
use crate::node::Shard;

const LATEST: i64 = -1;
const EARLIEST: i64 = -2;
const MAX_TIMESTAMP: i64 = -3;
const EARLIEST_LOCAL: i64 = -4;
/// The newest offset in tiered storage (v9+, KIP-1005); Sluice has none.
const LATEST_TIERED: i64 = -5;
/// The oldest offset not yet uploaded to tiered storage (v11+, KIP-1023); Sluice has none.
const EARLIEST_PENDING_UPLOAD: i64 = -6;

/// The first ListOffsets version that may ask for `timestamp`.
fn first_version(timestamp: i64) -> i16 {
    match timestamp {
        MAX_TIMESTAMP => 7,
        EARLIEST_LOCAL => 8,
        LATEST_TIERED => 9,
        EARLIEST_PENDING_UPLOAD => 11,
        _ => 0,
    }
}

/// (error, timestamp, offset) for one partition.
type Answer = (Option<KafkaCode>, i64, i64);

/// The versions served.
pub const API: Api = Api::new(ApiKey::ListOffsets, 1, 11);

pub async fn handle(ctx: &RequestContext<'_>, request: ListOffsetsRequest) -> ListOffsetsResponse {
    let shard = ctx.shard;
    let version = ctx.api_version;
    let snapshot = shard.metadata();
    // isolation_level 1 (v2+): a read_committed consumer.
    let read_committed = request.isolation_level == 1;
    let access = ctx.access();
    let denied: Vec<bool> = request
        .topics
        .iter()
        .map(|topic| !access.allows(Operation::Describe, ResourceType::Topic, &topic.name.0))
        .collect();
    let slots = request
        .topics
        .iter()
        .zip(&denied)
        .flat_map(|(topic, denied)| {
            // A topic the caller may not describe is answered without a hop.
            let found = snapshot.topic(&topic.name.0).filter(|_| !denied);
            topic.partitions.iter().map(move |p| {
                let partition = PartitionId(p.partition_index);
                found.and_then(|t| t.owner(partition)).map(|owner| {
                    (
                        owner,
                        (
                            topic.name.0.to_string(),
                            partition,
                            p.timestamp,
                            version,
                            read_committed,
                        ),
                    )
                })
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
        .zip(denied)
        .map(|(topic, denied)| {
            let partitions = topic
                .partitions
                .iter()
                .map(|p| {
                    let (code, timestamp, offset) = answers.next().expect("one answer per partition");
                    let code = if denied {
                        Some(KafkaCode::TopicAuthorizationFailed)
                    } else {
                        code
                    };
                    let response = ListOffsetsPartitionResponse::default()
                        .with_partition_index(p.partition_index)
                        .with_error_code(error_code(code))
                        .with_timestamp(timestamp)
                        .with_offset(offset);
                    let epoch = snapshot
                        .topic(&topic.name.0)
                        .map(|t| t.leader_epoch(PartitionId(p.partition_index)));
                    if let (true, Some(epoch)) = (version >= 4 && offset >= 0, epoch) {
                        response.with_leader_epoch(epoch.0)
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

/// Runs on the partition's owner shard. A read_committed consumer's latest offset is the
/// last stable offset, and a timestamp lookup finds nothing at or past it (as in Kafka).
async fn lookup(
    shard: Rc<Shard>,
    (topic, partition, timestamp, version, read_committed): (String, PartitionId, i64, i16, bool),
) -> Answer {
    const OK: Option<KafkaCode> = None;
    if version < first_version(timestamp) {
        return (Some(KafkaCode::UnsupportedVersion), -1, -1);
    }
    let log = match shard.log_for(&topic, partition) {
        Ok(log) => log,
        Err(code) => return (Some(code), -1, -1),
    };
    match timestamp {
        LATEST if read_committed => (OK, -1, log.last_stable_offset().0),
        LATEST => (OK, -1, log.high_watermark().0),
        EARLIEST | EARLIEST_LOCAL => (OK, -1, log.log_start_offset().0),
        // Kafka's answer when nothing is tiered: no offset.
        LATEST_TIERED | EARLIEST_PENDING_UPLOAD => (OK, -1, -1),
        MAX_TIMESTAMP => match log.max_timestamp() {
            Some((timestamp, offset)) => (OK, timestamp, offset.0),
            None => (OK, -1, -1),
        },
        t if t < 0 => (Some(KafkaCode::InvalidRequest), -1, -1),
        t => match log.offset_for_timestamp(t).await {
            Ok(Some((offset, _))) if read_committed && offset >= log.last_stable_offset() => (OK, -1, -1),
            Ok(Some((offset, found))) => (OK, found, offset.0),
            Ok(None) => (OK, -1, -1),
            Err(e) => {
                tracing::error!("{topic}-{partition}: offset for timestamp {t}: {e}");
                (Some(e.kafka_code()), -1, -1)
            }
        },
    }
}
