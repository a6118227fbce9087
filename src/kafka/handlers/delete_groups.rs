//! DeleteGroups: removes groups without members, and their committed offsets (tombstones).

use kafka_protocol::messages::delete_groups_request::DeleteGroupsRequest;
use kafka_protocol::messages::delete_groups_response::{DeletableGroupResult, DeleteGroupsResponse};
use kafka_protocol::messages::ApiKey;

use crate::error::KafkaCode;
use crate::group::{coordinator, on_coordinator};
use crate::kafka::context::RequestContext;
use crate::kafka::handlers::{error_code, Api};

/// The versions served.
pub const API: Api = Api::new(ApiKey::DeleteGroups, 0, 2);

pub async fn handle(ctx: &RequestContext<'_>, request: DeleteGroupsRequest) -> DeleteGroupsResponse {
    let shard = ctx.shard;
    let mut results = Vec::with_capacity(request.groups_names.len());
    for id in request.groups_names {
        let group_id = id.0.to_string();
        let error = on_coordinator(shard, &group_id.clone(), move |shard| async move {
            let Some(group) = shard.groups.get(&group_id) else {
                return Some(KafkaCode::GroupIdNotFound);
            };
            if !group.borrow().is_empty() {
                return Some(KafkaCode::NonEmptyGroup);
            }
            let tombstones = coordinator::deletion_records(&group.borrow());
            if let Err(code) = coordinator::persist(&shard, &group_id, tombstones).await {
                return Some(code);
            }
            shard.groups.remove(&group_id);
            None
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
