//! SyncGroup: the leader hands in the assignment; every member gets its share once the
//! generation is durable.

use std::time::Instant;

use kafka_protocol::messages::sync_group_request::SyncGroupRequest;
use kafka_protocol::messages::sync_group_response::SyncGroupResponse;
use kafka_protocol::messages::ApiKey;

use crate::acl::{Operation, ResourceType};
use crate::error::KafkaCode;
use crate::group::classic::{Reply, SyncOutcome};
use crate::group::{coordinator, on_coordinator};
use crate::kafka::context::RequestContext;
use crate::kafka::handlers::{error_code, str_bytes, Api};
use crate::storage::segment::now_ms;

/// The versions served.
pub const API: Api = Api::new(ApiKey::SyncGroup, 0, 5);

pub async fn handle(ctx: &RequestContext<'_>, request: SyncGroupRequest) -> SyncGroupResponse {
    let shard = ctx.shard;
    let group_id = request.group_id.0.to_string();
    if !ctx.allows(Operation::Read, ResourceType::Group, &group_id) {
        return SyncGroupResponse::default().with_error_code(KafkaCode::GroupAuthorizationFailed.code());
    }
    let outcome = on_coordinator(shard, &group_id.clone(), move |shard| async move {
        let Some(group) = shard.groups.get(&group_id) else {
            return SyncOutcome::failed(KafkaCode::UnknownMemberId);
        };
        let assignments = request
            .assignments
            .into_iter()
            .map(|a| (a.member_id.to_string(), a.assignment))
            .collect();
        let instance = request.group_instance_id.map(|s| s.to_string());
        let (reply, assignment) = group.borrow_mut().sync(
            &request.member_id,
            instance.as_deref(),
            request.generation_id,
            assignments,
        );
        if let Some(assignment) = assignment {
            // The generation is durable before any member hears its assignment.
            let record = coordinator::group_record(&group.borrow());
            let persisted = crate::group::OFFSETS.persist(&shard, &group_id, vec![record]).await;
            let generation = assignment.generation;
            let took_effect = group.borrow_mut().assignment_persisted(
                assignment,
                persisted,
                Instant::now(),
                now_ms(),
                &shard.groups.limits,
            );
            shard.groups.rearm(&group_id);
            if took_effect {
                let members = group.borrow().members.len();
                tracing::info!(
                    target: "sluice::group",
                    "group {}: generation {generation} assigned to {members} members",
                    crate::text::escape(&group_id)
                );
            }
        }
        match reply {
            Reply::Now(outcome) => outcome,
            Reply::Later(answer) => answer
                .await
                .unwrap_or_else(|_| SyncOutcome::failed(KafkaCode::RebalanceInProgress)),
        }
    })
    .await
    .unwrap_or_else(SyncOutcome::failed);
    SyncGroupResponse::default()
        .with_error_code(error_code(outcome.error))
        .with_protocol_type(outcome.protocol_type.map(str_bytes))
        .with_protocol_name(outcome.protocol.map(str_bytes))
        .with_assignment(outcome.assignment)
}
