//! ListTransactions: the transactional ids this broker coordinates (every shard's), filtered
//! by state, producer id, how long they have run (v1+, KIP-994) and an id pattern (v2+).
//! Unknown state names are echoed back in `unknown_state_filters`, as Kafka does.

use kafka_protocol::messages::list_transactions_request::ListTransactionsRequest;
use kafka_protocol::messages::list_transactions_response::{ListTransactionsResponse, TransactionState};
use kafka_protocol::messages::{ApiKey, ProducerId, TransactionalId};

use crate::acl::{Operation, ResourceType};
use crate::error::KafkaCode;
use crate::kafka::context::RequestContext;
use crate::kafka::handlers::{error_code, str_bytes, Api};
use crate::storage::segment::now_ms;
use crate::txn::state::TxnStatus;

/// The versions served.
pub const API: Api = Api::new(ApiKey::ListTransactions, 0, 2);

const STATES: [TxnStatus; 8] = [
    TxnStatus::Empty,
    TxnStatus::Ongoing,
    TxnStatus::PrepareCommit,
    TxnStatus::PrepareAbort,
    TxnStatus::CompleteCommit,
    TxnStatus::CompleteAbort,
    TxnStatus::Dead,
    TxnStatus::PrepareEpochFence,
];

pub async fn handle(ctx: &RequestContext<'_>, request: ListTransactionsRequest) -> ListTransactionsResponse {
    let wanted: Vec<String> = request.state_filters.iter().map(|s| s.to_string()).collect();
    let unknown: Vec<String> = wanted
        .iter()
        .filter(|w| !STATES.iter().any(|s| s.name() == w.as_str()))
        .cloned()
        .collect();
    let pattern = match request.transactional_id_pattern.as_ref().filter(|p| !p.is_empty()) {
        Some(pattern) => match regex::Regex::new(&format!("^(?:{pattern})$")) {
            Ok(re) => Some(re),
            Err(_) => {
                return ListTransactionsResponse::default()
                    .with_error_code(error_code(Some(KafkaCode::InvalidRegularExpression)))
            }
        },
        None => None,
    };
    let producers: Vec<i64> = request.producer_id_filters.iter().map(|p| p.0).collect();
    let min_duration_ms = request.duration_filter;
    let now = now_ms();
    let access = ctx.access();
    let per_shard = ctx
        .shard
        .invoke_on_all(|shard| async move { shard.transactions.list() })
        .await;
    let mut states: Vec<TransactionState> = per_shard
        .into_iter()
        .flat_map(|listed| listed.unwrap_or_default())
        .filter(|t| wanted.is_empty() || wanted.iter().any(|w| w == t.status.name()))
        .filter(|t| producers.is_empty() || producers.contains(&t.producer_id))
        .filter(|t| min_duration_ms < 0 || (t.start_ms >= 0 && now - t.start_ms >= min_duration_ms))
        .filter(|t| pattern.as_ref().is_none_or(|re| re.is_match(&t.id)))
        .filter(|t| access.sees(Operation::Describe, ResourceType::TransactionalId, &t.id))
        .map(|t| {
            TransactionState::default()
                .with_transactional_id(TransactionalId(str_bytes(t.id)))
                .with_producer_id(ProducerId(t.producer_id))
                .with_transaction_state(str_bytes(t.status.name()))
        })
        .collect();
    states.sort_by(|a, b| a.transactional_id.0.cmp(&b.transactional_id.0));
    ListTransactionsResponse::default()
        .with_unknown_state_filters(unknown.into_iter().map(str_bytes).collect())
        .with_transaction_states(states)
}
