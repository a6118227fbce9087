//! LeaveGroup: members leave (v3+: several at once, static members by instance id); the rest
//! rebalance.

use std::time::Instant;

use kafka_protocol::messages::leave_group_request::LeaveGroupRequest;
use kafka_protocol::messages::leave_group_response::{LeaveGroupResponse, MemberResponse};
use kafka_protocol::messages::ApiKey;

use crate::acl::{Operation, ResourceType};
use crate::error::KafkaCode;
use crate::group::on_coordinator;
use crate::kafka::context::RequestContext;
use crate::kafka::handlers::{error_code, str_bytes, Api};
use crate::storage::segment::now_ms;

/// The versions served.
pub const API: Api = Api::new(ApiKey::LeaveGroup, 0, 5);

pub async fn handle(ctx: &RequestContext<'_>, request: LeaveGroupRequest) -> LeaveGroupResponse {
    let shard = ctx.shard;
    let version = ctx.api_version;
    let group_id = request.group_id.0.to_string();
    if !ctx.allows(Operation::Read, ResourceType::Group, &group_id) {
        return LeaveGroupResponse::default().with_error_code(KafkaCode::GroupAuthorizationFailed.code());
    }
    let leaving: Vec<(String, Option<String>)> = if version >= 3 {
        request
            .members
            .iter()
            .map(|m| {
                (
                    m.member_id.to_string(),
                    m.group_instance_id.as_ref().map(|s| s.to_string()),
                )
            })
            .collect()
    } else {
        vec![(request.member_id.to_string(), None)]
    };
    let departures = leaving.clone();
    let errors: Vec<Option<KafkaCode>> = on_coordinator(shard, &group_id.clone(), move |shard| async move {
        let Some(group) = shard.groups.get(&group_id) else {
            return departures.iter().map(|_| Some(KafkaCode::UnknownMemberId)).collect();
        };
        let errors = departures
            .iter()
            .map(|(member, instance)| {
                group.borrow_mut().leave(
                    member,
                    instance.as_deref(),
                    Instant::now(),
                    now_ms(),
                    &shard.groups.limits,
                )
            })
            .collect();
        shard.groups.rearm(&group_id);
        errors
    })
    .await
    .unwrap_or_else(|code| leaving.iter().map(|_| Some(code)).collect());

    if version < 3 {
        return LeaveGroupResponse::default().with_error_code(error_code(errors[0]));
    }
    let members = leaving
        .into_iter()
        .zip(&errors)
        .map(|((member, instance), error)| {
            MemberResponse::default()
                .with_member_id(str_bytes(member))
                .with_group_instance_id(instance.map(str_bytes))
                .with_error_code(error_code(*error))
        })
        .collect();
    LeaveGroupResponse::default().with_members(members)
}
