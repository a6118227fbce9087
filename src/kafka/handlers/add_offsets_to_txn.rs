//! AddOffsetsToTxn: the group's `__consumer_offsets` partition joins the producer's
//! transaction, so its commit or abort marker reaches the offsets TxnOffsetCommit stages.

use std::rc::Rc;

use kafka_protocol::messages::add_offsets_to_txn_request::AddOffsetsToTxnRequest;
use kafka_protocol::messages::add_offsets_to_txn_response::AddOffsetsToTxnResponse;
use kafka_protocol::messages::ApiKey;

use crate::acl::{Operation, ResourceType};
use crate::error::KafkaCode;
use crate::kafka::context::RequestContext;
use crate::kafka::handlers::{error_code, Api};
use crate::node::Shard;

/// The versions served.
pub const API: Api = Api::new(ApiKey::AddOffsetsToTxn, 0, 4);

pub async fn handle(ctx: &RequestContext<'_>, request: AddOffsetsToTxnRequest) -> AddOffsetsToTxnResponse {
    let id = request.transactional_id.0.to_string();
    let group = request.group_id.0.to_string();
    let (producer_id, epoch) = (request.producer_id.0, request.producer_epoch);
    let access = ctx.access();
    if !access.allows(Operation::Write, ResourceType::TransactionalId, &id) {
        return AddOffsetsToTxnResponse::default()
            .with_error_code(KafkaCode::TransactionalIdAuthorizationFailed.code());
    }
    if !access.allows(Operation::Read, ResourceType::Group, &group) {
        return AddOffsetsToTxnResponse::default().with_error_code(KafkaCode::GroupAuthorizationFailed.code());
    }
    let partition = crate::group::OFFSETS
        .locate(&ctx.shard.metadata(), &group)
        .map(|(partition, _)| partition.0);
    let added = match partition {
        Err(code) => Err(code),
        Ok(partition) => crate::txn::on_coordinator(ctx.shard, &id.clone(), move |host: Rc<Shard>| async move {
            let offsets = [(crate::group::OFFSETS_TOPIC.to_string(), partition)];
            host.transactions
                .add_partitions(&host, &id, producer_id, epoch, &offsets, false)
                .await
        })
        .await
        .and_then(|added| added),
    };
    AddOffsetsToTxnResponse::default().with_error_code(error_code(
        added.err().map(|c| crate::txn::fenced_code(c, ctx.api_version, 2)),
    ))
}
