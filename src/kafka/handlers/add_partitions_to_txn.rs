//! AddPartitionsToTxn: partitions join a producer's ongoing transaction (v0-3: one
//! transaction; v4+: several, as a broker asks, with `verify_only` asking whether they are
//! already in it; v5 without `verify_only` is a partition leader adding them for a
//! transaction-version-2 producer, KIP-890's implicit add). A partition that does not exist fails with UNKNOWN_TOPIC_OR_PARTITION and
//! the rest of its transaction with OPERATION_NOT_ATTEMPTED, as in Kafka.

use std::rc::Rc;

use kafka_protocol::messages::add_partitions_to_txn_request::{AddPartitionsToTxnRequest, AddPartitionsToTxnTopic};
use kafka_protocol::messages::add_partitions_to_txn_response::{
    AddPartitionsToTxnPartitionResult, AddPartitionsToTxnResponse, AddPartitionsToTxnResult,
    AddPartitionsToTxnTopicResult,
};
use kafka_protocol::messages::{ApiKey, TopicName, TransactionalId};

use crate::acl::{Operation, ResourceType};
use crate::error::KafkaCode;
use crate::ids::PartitionId;
use crate::kafka::context::RequestContext;
use crate::kafka::handlers::{error_code, Api};
use crate::node::Shard;

/// The versions served.
pub const API: Api = Api::new(ApiKey::AddPartitionsToTxn, 0, 5);

/// One transaction's partitions and their answers.
type Answers = Vec<((String, i32), Option<KafkaCode>)>;

pub async fn handle(ctx: &RequestContext<'_>, request: AddPartitionsToTxnRequest) -> AddPartitionsToTxnResponse {
    let version = ctx.api_version;
    if version <= 3 {
        let refused = client_refusal(
            ctx,
            &request.v3_and_below_transactional_id.0,
            &request.v3_and_below_topics,
        );
        if let Some(answers) = refused {
            return AddPartitionsToTxnResponse::default()
                .with_results_by_topic_v3_and_below(topic_results(answers, version));
        }
        let answers = add(
            ctx.shard,
            request.v3_and_below_transactional_id.0.to_string(),
            request.v3_and_below_producer_id.0,
            request.v3_and_below_producer_epoch,
            &request.v3_and_below_topics,
            false,
            false,
        )
        .await;
        return AddPartitionsToTxnResponse::default()
            .with_results_by_topic_v3_and_below(topic_results(answers, version));
    }
    // From v4 only brokers send it, acting for the cluster.
    let broker_denied = !ctx.allows_cluster(Operation::ClusterAction);
    let mut results = Vec::with_capacity(request.transactions.len());
    for txn in &request.transactions {
        if broker_denied {
            let answers = partitions_of(&txn.topics)
                .into_iter()
                .map(|p| (p, Some(KafkaCode::ClusterAuthorizationFailed)))
                .collect();
            results.push(
                AddPartitionsToTxnResult::default()
                    .with_transactional_id(TransactionalId(txn.transactional_id.0.clone()))
                    .with_topic_results(topic_results(answers, version)),
            );
            continue;
        }
        let answers = add(
            ctx.shard,
            txn.transactional_id.0.to_string(),
            txn.producer_id.0,
            txn.producer_epoch,
            &txn.topics,
            txn.verify_only,
            version >= crate::node::transactions::ADD_FOR_PRODUCER_VERSION,
        )
        .await;
        results.push(
            AddPartitionsToTxnResult::default()
                .with_transactional_id(TransactionalId(txn.transactional_id.0.clone()))
                .with_topic_results(topic_results(answers, version)),
        );
    }
    AddPartitionsToTxnResponse::default().with_results_by_transaction(results)
}

fn partitions_of(topics: &[AddPartitionsToTxnTopic]) -> Vec<(String, i32)> {
    topics
        .iter()
        .flat_map(|t| t.partitions.iter().map(|p| (t.name.0.to_string(), *p)))
        .collect()
}

/// A client's request (v0-3) the caller may not make: every partition TRANSACTIONAL_ID_
/// AUTHORIZATION_FAILED without WRITE on the transactional id; else, when some topic may not
/// be written, those TOPIC_AUTHORIZATION_FAILED and the rest OPERATION_NOT_ATTEMPTED.
fn client_refusal(ctx: &RequestContext<'_>, id: &str, topics: &[AddPartitionsToTxnTopic]) -> Option<Answers> {
    let access = ctx.access();
    let partitions = partitions_of(topics);
    if !access.allows(Operation::Write, ResourceType::TransactionalId, id) {
        let code = Some(KafkaCode::TransactionalIdAuthorizationFailed);
        return Some(partitions.into_iter().map(|p| (p, code)).collect());
    }
    let denied: Vec<&str> = topics
        .iter()
        .map(|t| t.name.0.as_str())
        .filter(|topic| !access.allows(Operation::Write, ResourceType::Topic, topic))
        .collect();
    if denied.is_empty() {
        return None;
    }
    let answers = partitions
        .into_iter()
        .map(|p| {
            let code = if denied.contains(&p.0.as_str()) {
                KafkaCode::TopicAuthorizationFailed
            } else {
                KafkaCode::OperationNotAttempted
            };
            (p, Some(code))
        })
        .collect();
    Some(answers)
}

fn topic_results(answers: Answers, version: i16) -> Vec<AddPartitionsToTxnTopicResult> {
    let mut topics: Vec<AddPartitionsToTxnTopicResult> = Vec::new();
    for ((topic, partition), code) in answers {
        let result = AddPartitionsToTxnPartitionResult::default()
            .with_partition_index(partition)
            .with_partition_error_code(error_code(code.map(|c| crate::txn::fenced_code(c, version, 2))));
        match topics.iter_mut().find(|t| t.name.0.as_str() == topic) {
            Some(t) => t.results_by_partition.push(result),
            None => topics.push(
                AddPartitionsToTxnTopicResult::default()
                    .with_name(TopicName(crate::kafka::handlers::str_bytes(topic)))
                    .with_results_by_partition(vec![result]),
            ),
        }
    }
    topics
}

async fn add(
    shard: &Rc<Shard>,
    id: String,
    producer_id: i64,
    epoch: i16,
    topics: &[AddPartitionsToTxnTopic],
    verify_only: bool,
    tv2: bool,
) -> Answers {
    let partitions = partitions_of(topics);
    let snapshot = shard.metadata();
    let unknown: Vec<bool> = partitions
        .iter()
        .map(|(topic, p)| {
            snapshot.topic(topic).is_none_or(|t| {
                (t.meta.internal && topic != crate::group::OFFSETS_TOPIC) || t.owner(PartitionId(*p)).is_none()
            })
        })
        .collect();
    if unknown.iter().any(|u| *u) {
        return partitions
            .into_iter()
            .zip(unknown)
            .map(|(p, unknown)| {
                let code = if unknown {
                    KafkaCode::UnknownTopicOrPartition
                } else {
                    KafkaCode::OperationNotAttempted
                };
                (p, Some(code))
            })
            .collect();
    }
    let wanted = partitions.clone();
    let answered = crate::txn::on_coordinator(shard, &id.clone(), move |host: Rc<Shard>| async move {
        if verify_only {
            return Ok(wanted
                .iter()
                .map(|p| (p.clone(), host.transactions.verify(&id, producer_id, epoch, p).err()))
                .collect());
        }
        host.transactions
            .add_partitions(&host, &id, producer_id, epoch, &wanted, tv2)
            .await
            .map(|()| wanted.iter().map(|p| (p.clone(), None)).collect::<Answers>())
    })
    .await
    .and_then(|answered| answered);
    answered.unwrap_or_else(|code| partitions.into_iter().map(|p| (p, Some(code))).collect())
}
