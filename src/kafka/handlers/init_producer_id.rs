//! InitProducerId: a fresh producer id, epoch 0, for an idempotent producer. As in Kafka, a
//! producer without a transactional id that asks to bump its epoch (KIP-360, v3+) simply gets
//! a new id. Ids come in blocks from the metadata authority, persisted before use, so an id
//! is never handed out twice, even across restarts.
//!
//! Transactions are not served: a transactional id gets COORDINATOR_NOT_AVAILABLE, as
//! FindCoordinator answers for transaction coordinators.

use std::rc::Rc;

use kafka_protocol::messages::init_producer_id_request::InitProducerIdRequest;
use kafka_protocol::messages::init_producer_id_response::InitProducerIdResponse;
use kafka_protocol::messages::ApiKey;
use kafka_protocol::messages::ProducerId;

use crate::error::KafkaCode;
use crate::kafka::context::RequestContext;
use crate::kafka::handlers::{error_code, Api};
use crate::node::authority;
use crate::node::Shard;

/// The versions served.
pub const API: Api = Api::new(ApiKey::InitProducerId, 0, 5);

pub async fn handle(ctx: &RequestContext<'_>, request: InitProducerIdRequest) -> InitProducerIdResponse {
    let shard = ctx.shard;
    let failed = |code: KafkaCode| {
        InitProducerIdResponse::default()
            .with_error_code(error_code(Some(code)))
            .with_producer_id(ProducerId(-1))
            .with_producer_epoch(-1)
    };
    if request.transactional_id.is_some() {
        return failed(KafkaCode::CoordinatorNotAvailable);
    }
    match next_producer_id(shard).await {
        Ok(id) => InitProducerIdResponse::default()
            .with_producer_id(ProducerId(id))
            .with_producer_epoch(0),
        Err(code) => failed(code),
    }
}

async fn next_producer_id(shard: &Rc<Shard>) -> Result<i64, KafkaCode> {
    if shard.producer_ids.borrow().is_empty() {
        let block = authority::allocate_producer_ids(shard).await.map_err(|refusal| {
            tracing::error!("allocating producer ids: {}", refusal.message);
            refusal.code
        })?;
        let mut ids = shard.producer_ids.borrow_mut();
        // A concurrent request may have refilled the range meanwhile; keep the later block.
        if ids.is_empty() {
            *ids = block;
        }
    }
    let id = shard
        .producer_ids
        .borrow_mut()
        .next()
        .expect("a fresh block is not empty");
    Ok(id)
}
