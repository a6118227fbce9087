//! JoinGroup: a member (re)joins a classic group; answered when the rebalance completes, or at
//! once when the member keeps its place in the current generation.

use std::time::{Duration, Instant};

use kafka_protocol::messages::join_group_request::JoinGroupRequest;
use kafka_protocol::messages::join_group_response::{JoinGroupResponse, JoinGroupResponseMember};
use kafka_protocol::messages::ApiKey;

use crate::acl::{Operation, ResourceType};
use crate::error::KafkaCode;
use crate::group::classic::{self, JoinOutcome, Reply};
use crate::group::on_coordinator;
use crate::kafka::context::RequestContext;
use crate::kafka::handlers::{error_code, str_bytes, Api};
use crate::storage::segment::now_ms;

/// The versions served.
pub const API: Api = Api::new(ApiKey::JoinGroup, 0, 9);

pub async fn handle(ctx: &RequestContext<'_>, request: JoinGroupRequest) -> JoinGroupResponse {
    let shard = ctx.shard;
    let version = ctx.api_version;
    let client_id = ctx.client_id.to_string();
    let client_host = ctx.client_host();
    let group_id = request.group_id.0.to_string();
    if !ctx.allows(Operation::Read, ResourceType::Group, &group_id) {
        return JoinGroupResponse::default().with_error_code(KafkaCode::GroupAuthorizationFailed.code());
    }
    let member_id = request.member_id.to_string();
    let outcome = on_coordinator(shard, &group_id.clone(), move |shard| async move {
        let join = classic::JoinRequest {
            member_id: request.member_id.to_string(),
            instance_id: request.group_instance_id.map(|s| s.to_string()),
            client_id,
            client_host,
            session_timeout: Duration::from_millis(request.session_timeout_ms.max(0) as u64),
            // v0 has no rebalance timeout: Kafka uses the session timeout.
            rebalance_timeout: Duration::from_millis(if version >= 1 {
                request.rebalance_timeout_ms.max(0) as u64
            } else {
                request.session_timeout_ms.max(0) as u64
            }),
            protocol_type: request.protocol_type.to_string(),
            protocols: request
                .protocols
                .into_iter()
                .map(|p| (p.name.to_string(), p.metadata))
                .collect(),
            require_known_member_id: version >= 4,
            supports_skip_assignment: version >= 9,
        };
        let group = shard.groups.get_or_create(&shard, &group_id);
        let reply = group
            .borrow_mut()
            .join(join, Instant::now(), now_ms(), &shard.groups.limits);
        shard.groups.rearm(&group_id);
        match reply {
            Reply::Now(outcome) => outcome,
            Reply::Later(answer) => answer
                .await
                .unwrap_or_else(|_| JoinOutcome::failed(KafkaCode::UnknownMemberId, "")),
        }
    })
    .await
    .unwrap_or_else(|code| JoinOutcome::failed(code, &member_id));

    let members = outcome
        .members
        .into_iter()
        .map(|(id, instance, metadata)| {
            JoinGroupResponseMember::default()
                .with_member_id(str_bytes(id))
                .with_group_instance_id(instance.map(str_bytes))
                .with_metadata(metadata)
        })
        .collect();
    JoinGroupResponse::default()
        .with_error_code(error_code(outcome.error))
        .with_generation_id(outcome.generation)
        .with_protocol_type(outcome.protocol_type.map(str_bytes))
        .with_protocol_name(outcome.protocol.map(str_bytes))
        .with_leader(str_bytes(outcome.leader))
        .with_member_id(str_bytes(outcome.member_id))
        .with_skip_assignment(outcome.skip_assignment)
        .with_members(members)
}
