//! DeleteGroups: removes groups without members, and their committed offsets (tombstones).

use kafka_protocol::messages::delete_groups_request::DeleteGroupsRequest;
use kafka_protocol::messages::delete_groups_response::{DeletableGroupResult, DeleteGroupsResponse};
use kafka_protocol::messages::ApiKey;

use crate::acl::{Operation, ResourceType};
use crate::error::KafkaCode;
use crate::group::on_coordinator;
use crate::kafka::context::RequestContext;
use crate::kafka::handlers::{error_code, Api};

/// The versions served.
pub const API: Api = Api::new(ApiKey::DeleteGroups, 0, 2);

pub async fn handle(ctx: &RequestContext<'_>, request: DeleteGroupsRequest) -> DeleteGroupsResponse {
    let shard = ctx.shard;
    let mut results = Vec::with_capacity(request.groups_names.len());
    for id in request.groups_names {
        let group_id = id.0.to_string();
        if !ctx.allows(Operation::Delete, ResourceType::Group, &group_id) {
            results.push(
                DeletableGroupResult::default()
                    .with_group_id(id)
                    .with_error_code(KafkaCode::GroupAuthorizationFailed.code()),
            );
            continue;
        }
        let error = on_coordinator(shard, &group_id.clone(), move |shard| async move {
            shard.groups.delete_group(&shard, &group_id).await.err()
        })
        .await
        .unwrap_or_else(Some);
        results.push(
            DeletableGroupResult::default()
                .with_group_id(id)
                .with_error_code(error_code(error)),
        );
    }
    DeleteGroupsResponse::default().with_results(results)
}
