//! FindCoordinator: on a single node every group's coordinator is this broker. Batched keys
//! (v4+) get one answer each. Transaction coordinators are not offered: transactions are
//! not served, so those keys get COORDINATOR_NOT_AVAILABLE.
//!
//! librdkafka also reads this API's presence as "the broker supports LZ4", so it must be
//! served for LZ4-compressed produce to happen at all.

use kafka_protocol::messages::find_coordinator_request::FindCoordinatorRequest;
use kafka_protocol::messages::find_coordinator_response::{Coordinator, FindCoordinatorResponse};
use kafka_protocol::messages::ApiKey;
use kafka_protocol::messages::BrokerId;

use crate::error::KafkaCode;
use crate::kafka::context::RequestContext;
use crate::kafka::handlers::{error_code, str_bytes, Api};

const KEY_TYPE_GROUP: i8 = 0;

/// The versions served.
pub const API: Api = Api::new(ApiKey::FindCoordinator, 0, 6);

pub async fn handle(ctx: &RequestContext<'_>, request: FindCoordinatorRequest) -> FindCoordinatorResponse {
    let shard = ctx.shard;
    let version = ctx.api_version;
    let node = BrokerId(shard.identity.node_id.0);
    let host = str_bytes(shard.identity.host.clone());
    let port = i32::from(shard.identity.port);
    let error = (request.key_type != KEY_TYPE_GROUP).then_some(KafkaCode::CoordinatorNotAvailable);
    let message = error.map(|_| str_bytes("Only group coordinators are served by Sluice."));
    if version >= 4 {
        let coordinators = request
            .coordinator_keys
            .into_iter()
            .map(|key| {
                let found = Coordinator::default()
                    .with_key(key)
                    .with_error_code(error_code(error))
                    .with_error_message(message.clone());
                match error {
                    None => found.with_node_id(node).with_host(host.clone()).with_port(port),
                    Some(_) => found.with_node_id(BrokerId(-1)),
                }
            })
            .collect();
        return FindCoordinatorResponse::default().with_coordinators(coordinators);
    }
    let response = FindCoordinatorResponse::default().with_error_code(error_code(error));
    let response = if version >= 1 {
        response.with_error_message(message)
    } else {
        response
    };
    match error {
        None => response.with_node_id(node).with_host(host).with_port(port),
        Some(_) => response.with_node_id(BrokerId(-1)),
    }
}
