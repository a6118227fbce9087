//! EndTxn: commit or abort the producer's ongoing transaction. The coordinator persists the
//! decision (PrepareCommit / PrepareAbort) and answers; the markers follow in the background,
//! and until they are all written the id answers CONCURRENT_TRANSACTIONS. From v5
//! (transaction version 2, KIP-890) every ending bumps the producer's epoch and the answer
//! carries the producer id and epoch to go on with.

use std::rc::Rc;

use kafka_protocol::messages::end_txn_request::EndTxnRequest;
use kafka_protocol::messages::end_txn_response::EndTxnResponse;
use kafka_protocol::messages::{ApiKey, ProducerId};

use crate::acl::{Operation, ResourceType};
use crate::error::KafkaCode;
use crate::kafka::context::RequestContext;
use crate::kafka::handlers::{error_code, Api};
use crate::node::Shard;

/// The versions served.
pub const API: Api = Api::new(ApiKey::EndTxn, 0, 5);

/// The first version that ends with an epoch bump.
const EPOCH_BUMP_VERSION: i16 = 5;

pub async fn handle(ctx: &RequestContext<'_>, request: EndTxnRequest) -> EndTxnResponse {
    let id = request.transactional_id.0.to_string();
    if !ctx.allows(Operation::Write, ResourceType::TransactionalId, &id) {
        return EndTxnResponse::default()
            .with_error_code(KafkaCode::TransactionalIdAuthorizationFailed.code())
            .with_producer_id(ProducerId(-1))
            .with_producer_epoch(-1);
    }
    let (producer_id, epoch, commit) = (request.producer_id.0, request.producer_epoch, request.committed);
    let tv2 = ctx.api_version >= EPOCH_BUMP_VERSION && ctx.shard.config.transaction_version >= 2;
    let ended = crate::txn::on_coordinator(ctx.shard, &id.clone(), move |host: Rc<Shard>| async move {
        host.transactions
            .end_txn(&host, &id, producer_id, epoch, commit, tv2)
            .await
    })
    .await
    .and_then(|ended| ended);
    let (next_id, next_epoch) = ended.unwrap_or((-1, -1));
    EndTxnResponse::default()
        .with_error_code(error_code(
            ended.err().map(|c| crate::txn::fenced_code(c, ctx.api_version, 2)),
        ))
        .with_producer_id(ProducerId(next_id))
        .with_producer_epoch(next_epoch)
}
