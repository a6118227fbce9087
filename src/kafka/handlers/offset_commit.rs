//! OffsetCommit: a group's consumed positions, durable in `__consumer_offsets` before the
//! answer. Members of a live group must name their current generation; a commit with
//! generation -1 (simple consumers, admin tools) is accepted only for a group with no members.

use std::rc::Rc;

use kafka_protocol::messages::offset_commit_request::OffsetCommitRequest;
use kafka_protocol::messages::offset_commit_response::{
    OffsetCommitResponse, OffsetCommitResponsePartition, OffsetCommitResponseTopic,
};
use kafka_protocol::messages::ApiKey;

use crate::acl::{Operation, ResourceType};
use crate::error::KafkaCode;
use crate::group::records::OffsetValue;
use crate::group::{coordinator, on_coordinator};
use crate::ids::PartitionId;
use crate::kafka::context::RequestContext;
use crate::kafka::handlers::{error_code, Api};
use crate::node::Shard;
use crate::storage::segment::now_ms;

/// The versions served.
pub const API: Api = Api::new(ApiKey::OffsetCommit, 2, 10);

pub async fn handle(ctx: &RequestContext<'_>, request: OffsetCommitRequest) -> OffsetCommitResponse {
    let shard = ctx.shard;
    let group_id = request.group_id.0.to_string();
    let access = ctx.access();
    if !access.allows(Operation::Read, ResourceType::Group, &group_id) {
        return every_partition(&request, KafkaCode::GroupAuthorizationFailed);
    }
    let denied: Vec<bool> = request
        .topics
        .iter()
        .map(|t| !access.allows(Operation::Read, ResourceType::Topic, &t.name.0))
        .collect();
    let refused = denied.clone();
    let shape: Vec<(kafka_protocol::messages::TopicName, Vec<i32>)> = request
        .topics
        .iter()
        .map(|t| (t.name.clone(), t.partitions.iter().map(|p| p.partition_index).collect()))
        .collect();
    let codes: Vec<Vec<Option<KafkaCode>>> = on_coordinator(shard, &group_id.clone(), move |shard| async move {
        commit(&shard, &group_id, request, &refused).await
    })
    .await
    .unwrap_or_else(|code| {
        shape
            .iter()
            .map(|(_, ps)| ps.iter().map(|_| Some(code)).collect())
            .collect()
    });
    let topics = shape
        .into_iter()
        .zip(codes)
        .zip(denied)
        .map(|(((name, partitions), codes), denied)| {
            let partitions = partitions
                .into_iter()
                .zip(codes)
                .map(|(p, code)| {
                    let code = if denied {
                        Some(KafkaCode::TopicAuthorizationFailed)
                    } else {
                        code
                    };
                    OffsetCommitResponsePartition::default()
                        .with_partition_index(p)
                        .with_error_code(error_code(code))
                })
                .collect();
            OffsetCommitResponseTopic::default()
                .with_name(name)
                .with_partitions(partitions)
        })
        .collect();
    OffsetCommitResponse::default().with_topics(topics)
}

/// The answer of a request refused as a whole: `code` for every partition.
fn every_partition(request: &OffsetCommitRequest, code: KafkaCode) -> OffsetCommitResponse {
    let topics = request
        .topics
        .iter()
        .map(|t| {
            OffsetCommitResponseTopic::default()
                .with_name(t.name.clone())
                .with_partitions(
                    t.partitions
                        .iter()
                        .map(|p| {
                            OffsetCommitResponsePartition::default()
                                .with_partition_index(p.partition_index)
                                .with_error_code(code.code())
                        })
                        .collect(),
                )
        })
        .collect();
    OffsetCommitResponse::default().with_topics(topics)
}

/// Runs on the coordinator: one error code per partition, in request order; the partitions
/// of `denied` topics are not committed.
async fn commit(
    shard: &Rc<Shard>,
    group_id: &str,
    request: OffsetCommitRequest,
    denied: &[bool],
) -> Vec<Vec<Option<KafkaCode>>> {
    let every = |code: KafkaCode| -> Vec<Vec<Option<KafkaCode>>> {
        request
            .topics
            .iter()
            .map(|t| t.partitions.iter().map(|_| Some(code)).collect())
            .collect()
    };
    let generation = request.generation_id_or_member_epoch;
    let member = request.member_id.to_string();
    let instance = request.group_instance_id.as_ref().map(|s| s.to_string());
    if let Some(code) = shard
        .groups
        .commit_error(group_id, &member, instance.as_deref(), generation)
    {
        return every(code);
    }
    let snapshot = shard.metadata();
    let now = now_ms();
    let mut records = Vec::new();
    let mut accepted = Vec::new();
    let codes: Vec<Vec<Option<KafkaCode>>> = request
        .topics
        .iter()
        .zip(denied)
        .map(|(topic, denied)| {
            let found = snapshot.topic(&topic.name.0);
            topic
                .partitions
                .iter()
                .map(|p| {
                    if *denied {
                        return Some(KafkaCode::TopicAuthorizationFailed);
                    }
                    if found.and_then(|t| t.owner(PartitionId(p.partition_index))).is_none() {
                        return Some(KafkaCode::UnknownTopicOrPartition);
                    }
                    let metadata = p.committed_metadata.as_ref().map(|m| m.to_string()).unwrap_or_default();
                    if metadata.len() > shard.config.offset_metadata_max_bytes {
                        return Some(KafkaCode::OffsetMetadataTooLarge);
                    }
                    let value = OffsetValue {
                        offset: p.committed_offset,
                        leader_epoch: p.committed_leader_epoch,
                        metadata,
                        commit_timestamp_ms: now,
                    };
                    records.push(coordinator::offset_record(
                        group_id,
                        &topic.name.0,
                        p.partition_index,
                        &value,
                    ));
                    accepted.push(((topic.name.0.to_string(), p.partition_index), value));
                    None
                })
                .collect()
        })
        .collect();
    if records.is_empty() {
        return codes;
    }
    if let Err(code) = crate::group::OFFSETS.persist(shard, group_id, records).await {
        return every(code);
    }
    let group = shard.groups.get_or_create(shard, group_id);
    group.borrow_mut().offsets.extend(accepted);
    codes
}
