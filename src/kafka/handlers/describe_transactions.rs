//! DescribeTransactions: each asked-for transactional id's state, from its coordinator:
//! TRANSACTIONAL_ID_NOT_FOUND for one it does not know, NOT_COORDINATOR when this broker
//! does not coordinate it.

use std::collections::BTreeMap;
use std::rc::Rc;

use kafka_protocol::messages::describe_transactions_request::DescribeTransactionsRequest;
use kafka_protocol::messages::describe_transactions_response::{
    DescribeTransactionsResponse, TopicData, TransactionState,
};
use kafka_protocol::messages::{ApiKey, ProducerId, TopicName, TransactionalId};

use crate::acl::{Operation, ResourceType};
use crate::error::KafkaCode;
use crate::kafka::context::RequestContext;
use crate::kafka::handlers::{error_code, str_bytes, Api};
use crate::node::Shard;

/// The versions served.
pub const API: Api = Api::new(ApiKey::DescribeTransactions, 0, 0);

pub async fn handle(ctx: &RequestContext<'_>, request: DescribeTransactionsRequest) -> DescribeTransactionsResponse {
    let access = ctx.access();
    let mut states = Vec::with_capacity(request.transactional_ids.len());
    for id in request.transactional_ids {
        let key = id.0.to_string();
        if !access.allows(Operation::Describe, ResourceType::TransactionalId, &key) {
            states.push(
                TransactionState::default()
                    .with_transactional_id(TransactionalId(id.0.clone()))
                    .with_error_code(KafkaCode::TransactionalIdAuthorizationFailed.code()),
            );
            continue;
        }
        let found = crate::txn::on_coordinator(ctx.shard, &key.clone(), move |host: Rc<Shard>| async move {
            host.transactions.get(&key)
        })
        .await
        .and_then(|txn| txn.ok_or(KafkaCode::TransactionalIdNotFound));
        let state = TransactionState::default().with_transactional_id(TransactionalId(id.0.clone()));
        states.push(match found {
            Ok(txn) => {
                let mut topics: BTreeMap<String, Vec<i32>> = BTreeMap::new();
                for (topic, partition) in &txn.partitions {
                    topics.entry(topic.clone()).or_default().push(*partition);
                }
                state
                    .with_transaction_state(str_bytes(txn.status.name()))
                    .with_transaction_timeout_ms(txn.timeout_ms)
                    .with_transaction_start_time_ms(txn.start_ms)
                    .with_producer_id(ProducerId(txn.producer_id))
                    .with_producer_epoch(txn.epoch)
                    .with_topics(
                        topics
                            .into_iter()
                            .map(|(topic, partitions)| {
                                TopicData::default()
                                    .with_topic(TopicName(str_bytes(topic)))
                                    .with_partitions(partitions)
                            })
                            .collect(),
                    )
            }
            Err(code) => state
                .with_error_code(error_code(Some(code)))
                .with_transaction_state(str_bytes(""))
                .with_producer_id(ProducerId(-1))
                .with_producer_epoch(-1),
        });
    }
    DescribeTransactionsResponse::default().with_transaction_states(states)
}
