//! InitProducerId: a fresh producer id, epoch 0, for an idempotent producer. As in Kafka, a
//! producer without a transactional id that asks to bump its epoch (KIP-360, v3+) simply gets
//! a new id. Ids come in blocks from the metadata authority, persisted before use, so an id
//! is never handed out twice, even across restarts.
//!
//! With a transactional id, the request goes to the id's transaction coordinator, which
//! bumps the id's epoch (fencing any older producer with it) and aborts a transaction the
//! older one left open (CONCURRENT_TRANSACTIONS until that is done; the client retries).

use std::rc::Rc;

use kafka_protocol::messages::init_producer_id_request::InitProducerIdRequest;
use kafka_protocol::messages::init_producer_id_response::InitProducerIdResponse;
use kafka_protocol::messages::ApiKey;
use kafka_protocol::messages::ProducerId;

use crate::acl::{Operation, ResourceType};
use crate::error::KafkaCode;
use crate::kafka::context::RequestContext;
use crate::kafka::handlers::{error_code, Api};
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
    if let Some(id) = request.transactional_id.as_ref().filter(|id| !id.is_empty()) {
        let id = id.to_string();
        if !ctx.allows(Operation::Write, ResourceType::TransactionalId, &id) {
            return failed(KafkaCode::TransactionalIdAuthorizationFailed);
        }
        let timeout_ms = request.transaction_timeout_ms;
        // KIP-360 (v3+): a producer recovering names the id and epoch it had.
        let expected = (ctx.api_version >= 3 && request.producer_id.0 >= 0)
            .then_some((request.producer_id.0, request.producer_epoch));
        let answer = crate::txn::on_coordinator(shard, &id.clone(), move |host: Rc<Shard>| async move {
            host.transactions
                .init_producer_id(&host, &id, timeout_ms, expected)
                .await
        })
        .await
        .and_then(|answer| answer);
        return match answer {
            Ok((producer_id, epoch)) => InitProducerIdResponse::default()
                .with_producer_id(ProducerId(producer_id))
                .with_producer_epoch(epoch),
            Err(code) => failed(crate::txn::fenced_code(code, ctx.api_version, 4)),
        };
    }
    // An idempotent producer: IDEMPOTENT_WRITE on the cluster, or WRITE on some topic.
    let access = ctx.access();
    if !access.sees(
        Operation::IdempotentWrite,
        ResourceType::Cluster,
        crate::acl::CLUSTER_NAME,
    ) && !access.allows_some(Operation::Write, ResourceType::Topic)
    {
        return failed(KafkaCode::ClusterAuthorizationFailed);
    }
    match shard.next_producer_id().await {
        Ok(id) => InitProducerIdResponse::default()
            .with_producer_id(ProducerId(id))
            .with_producer_epoch(0),
        Err(code) => failed(code),
    }
}
