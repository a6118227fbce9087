//! TxnOffsetCommit: offsets a transaction commits for a group, on the group's coordinator.
//! They are appended to the group's `__consumer_offsets` partition as the producer's
//! transactional batch and staged; they become the group's committed offsets when the
//! transaction's commit marker reaches that partition, and vanish at an abort. A member of a
//! live group (v3+, KIP-447) must name its current generation. From v5, with transaction
//! version 2 finalized, the group's partition joins the transaction here (KIP-890's implicit
//! add: such a producer sends no AddOffsetsToTxn).

use std::rc::Rc;

use kafka_protocol::messages::txn_offset_commit_request::TxnOffsetCommitRequest;
use kafka_protocol::messages::txn_offset_commit_response::{
    TxnOffsetCommitResponse, TxnOffsetCommitResponsePartition, TxnOffsetCommitResponseTopic,
};
use kafka_protocol::messages::ApiKey;

use crate::acl::{Operation, ResourceType};
use crate::error::KafkaCode;
use crate::group::coordinator::{self, PendingOffset};
use crate::group::records::OffsetValue;
use crate::group::{on_coordinator, OFFSETS};
use crate::ids::PartitionId;
use crate::kafka::context::RequestContext;
use crate::kafka::handlers::{error_code, Api};
use crate::node::Shard;
use crate::storage::segment::now_ms;

/// The versions served.
pub const API: Api = Api::new(ApiKey::TxnOffsetCommit, 0, 5);

/// The first version whose offsets partition joins the transaction implicitly.
const IMPLICIT_ADD_VERSION: i16 = 5;

pub async fn handle(ctx: &RequestContext<'_>, mut request: TxnOffsetCommitRequest) -> TxnOffsetCommitResponse {
    let shard = ctx.shard;
    let version = ctx.api_version;
    let group_id = request.group_id.0.to_string();
    let shape: Vec<(kafka_protocol::messages::TopicName, Vec<i32>)> = request
        .topics
        .iter()
        .map(|t| (t.name.clone(), t.partitions.iter().map(|p| p.partition_index).collect()))
        .collect();
    let access = ctx.access();
    let refused = if !access.allows(
        Operation::Write,
        ResourceType::TransactionalId,
        &request.transactional_id.0,
    ) {
        Some(KafkaCode::TransactionalIdAuthorizationFailed)
    } else if !access.allows(Operation::Read, ResourceType::Group, &group_id) {
        Some(KafkaCode::GroupAuthorizationFailed)
    } else {
        None
    };
    let every =
        |code: KafkaCode, shape: &[(kafka_protocol::messages::TopicName, Vec<i32>)]| -> Vec<Vec<Option<KafkaCode>>> {
            shape
                .iter()
                .map(|(_, ps)| ps.iter().map(|_| Some(code)).collect())
                .collect()
        };
    // Topics the caller may not read are answered here and never reach the coordinator.
    let denied: Vec<bool> = request
        .topics
        .iter()
        .map(|t| refused.is_none() && !access.allows(Operation::Read, ResourceType::Topic, &t.name.0))
        .collect();
    let mut keep = denied.iter().map(|d| !d);
    request.topics.retain(|_| keep.next().expect("one flag per topic"));
    let asked: Vec<_> = shape
        .iter()
        .zip(&denied)
        .filter(|(_, denied)| !**denied)
        .map(|(topic, _)| topic.clone())
        .collect();
    let implicit_add = version >= IMPLICIT_ADD_VERSION && shard.config.transaction_version >= 2;
    let codes = match refused {
        Some(code) => every(code, &shape),
        None => {
            let answered = on_coordinator(shard, &group_id.clone(), move |shard| async move {
                commit(&shard, &group_id, request, implicit_add).await
            })
            .await
            .unwrap_or_else(|code| every(code, &asked));
            let mut answered = answered.into_iter();
            shape
                .iter()
                .zip(&denied)
                .map(|((_, partitions), denied)| {
                    if *denied {
                        vec![Some(KafkaCode::TopicAuthorizationFailed); partitions.len()]
                    } else {
                        answered.next().expect("one answer per topic sent")
                    }
                })
                .collect()
        }
    };
    let topics = shape
        .into_iter()
        .zip(codes)
        .map(|((name, partitions), codes)| {
            let partitions = partitions
                .into_iter()
                .zip(codes)
                .map(|(p, code)| {
                    let code = code.map(|c| crate::txn::fenced_code(c, version, 3));
                    TxnOffsetCommitResponsePartition::default()
                        .with_partition_index(p)
                        .with_error_code(error_code(code))
                })
                .collect();
            TxnOffsetCommitResponseTopic::default()
                .with_name(name)
                .with_partitions(partitions)
        })
        .collect();
    TxnOffsetCommitResponse::default().with_topics(topics)
}

/// Runs on the group's coordinator: one code per partition, in request order.
async fn commit(
    shard: &Rc<Shard>,
    group_id: &str,
    request: TxnOffsetCommitRequest,
    implicit_add: bool,
) -> Vec<Vec<Option<KafkaCode>>> {
    let every = |code: KafkaCode| -> Vec<Vec<Option<KafkaCode>>> {
        request
            .topics
            .iter()
            .map(|t| t.partitions.iter().map(|_| Some(code)).collect())
            .collect()
    };
    let member = request.member_id.to_string();
    let instance = request.group_instance_id.as_ref().map(|s| s.to_string());
    if request.generation_id >= 0 || !member.is_empty() {
        if let Some(code) = shard
            .groups
            .commit_error(group_id, &member, instance.as_deref(), request.generation_id)
        {
            return every(code);
        }
    }
    let snapshot = shard.metadata();
    let now = now_ms();
    let mut records = Vec::new();
    let mut staged = Vec::new();
    let codes: Vec<Vec<Option<KafkaCode>>> = request
        .topics
        .iter()
        .map(|topic| {
            let found = snapshot.topic(&topic.name.0);
            topic
                .partitions
                .iter()
                .map(|p| {
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
                    staged.push(PendingOffset {
                        group: group_id.to_string(),
                        topic: topic.name.0.to_string(),
                        partition: p.partition_index,
                        value,
                    });
                    None
                })
                .collect()
        })
        .collect();
    if records.is_empty() {
        return codes;
    }
    let producer = (request.producer_id.0, request.producer_epoch);
    let partition = match OFFSETS.locate(&snapshot, group_id) {
        Ok((partition, _)) => partition,
        Err(code) => return every(code),
    };
    if implicit_add {
        let joined = shard
            .log_for(crate::group::OFFSETS_TOPIC, partition)
            .is_ok_and(|log| log.in_transaction_at(producer.0, producer.1));
        if !joined {
            let offsets = vec![(crate::group::OFFSETS_TOPIC.to_string(), partition.0)];
            let id = request.transactional_id.0.to_string();
            if let Err(code) =
                crate::node::transactions::add_for_producer(shard, &id, producer.0, producer.1, offsets).await
            {
                // What the client should retry after finding the coordinator again.
                let code = match code {
                    KafkaCode::ConcurrentTransactions
                    | KafkaCode::CoordinatorLoadInProgress
                    | KafkaCode::NotCoordinator
                    | KafkaCode::NetworkException => KafkaCode::CoordinatorNotAvailable,
                    other => other,
                };
                return every(code);
            }
        }
    }
    if let Err(code) = OFFSETS.persist_as(shard, group_id, records, Some(producer)).await {
        return every(code);
    }
    shard.groups.stage_txn_offsets(partition.0, producer.0, staged);
    codes
}
