//! Heartbeat: keeps a member's session alive and tells it when to rejoin. Answered at once,
//! in every group state: nothing here waits on the rebalance.

use std::time::Instant;

use kafka_protocol::messages::heartbeat_request::HeartbeatRequest;
use kafka_protocol::messages::heartbeat_response::HeartbeatResponse;
use kafka_protocol::messages::ApiKey;

use crate::acl::{Operation, ResourceType};
use crate::error::KafkaCode;
use crate::group::on_coordinator;
use crate::kafka::context::RequestContext;
use crate::kafka::handlers::{error_code, Api};

/// The versions served.
pub const API: Api = Api::new(ApiKey::Heartbeat, 0, 4);

pub async fn handle(ctx: &RequestContext<'_>, request: HeartbeatRequest) -> HeartbeatResponse {
    let shard = ctx.shard;
    let group_id = request.group_id.0.to_string();
    if !ctx.allows(Operation::Read, ResourceType::Group, &group_id) {
        return HeartbeatResponse::default().with_error_code(KafkaCode::GroupAuthorizationFailed.code());
    }
    let error = on_coordinator(shard, &group_id.clone(), move |shard| async move {
        // A group this coordinator does not know has no members: the sender must rejoin.
        let Some(group) = shard.groups.get(&group_id) else {
            return Some(KafkaCode::UnknownMemberId);
        };
        let instance = request.group_instance_id.map(|s| s.to_string());
        let error = group.borrow_mut().heartbeat(
            &request.member_id,
            instance.as_deref(),
            request.generation_id,
            Instant::now(),
        );
        error
    })
    .await
    .unwrap_or_else(Some);
    HeartbeatResponse::default().with_error_code(error_code(error))
}
