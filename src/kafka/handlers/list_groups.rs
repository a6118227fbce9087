//! ListGroups: every group on every shard, classic and consumer-protocol, optionally filtered
//! by state (v4+) and type (v5+).

use kafka_protocol::messages::list_groups_request::ListGroupsRequest;
use kafka_protocol::messages::list_groups_response::{ListGroupsResponse, ListedGroup};
use kafka_protocol::messages::ApiKey;
use kafka_protocol::messages::GroupId;

use crate::acl::{Operation, ResourceType};
use crate::kafka::context::RequestContext;
use crate::kafka::handlers::{str_bytes, Api};

const CLASSIC: &str = "classic";
const CONSUMER: &str = "consumer";

/// The versions served.
pub const API: Api = Api::new(ApiKey::ListGroups, 0, 5);

pub async fn handle(ctx: &RequestContext<'_>, request: ListGroupsRequest) -> ListGroupsResponse {
    let shard = ctx.shard;
    let access = ctx.access();
    // The cluster's describers see every group; anyone else the groups they may describe.
    let all = access.sees(Operation::Describe, ResourceType::Cluster, crate::acl::CLUSTER_NAME);
    let states: Vec<String> = request.states_filter.iter().map(|s| s.to_lowercase()).collect();
    let types: Vec<String> = request.types_filter.iter().map(|s| s.to_lowercase()).collect();
    let per_shard = shard
        .invoke_on_all(|shard| async move {
            let classic = shard
                .groups
                .list()
                .into_iter()
                .map(|(id, protocol_type, state)| (id, protocol_type, state.name().to_string(), CLASSIC));
            let consumer = shard
                .groups
                .list_consumer()
                .into_iter()
                .map(|(id, state)| (id, CONSUMER.to_string(), state.to_string(), CONSUMER));
            classic.chain(consumer).collect::<Vec<_>>()
        })
        .await;
    let mut groups: Vec<ListedGroup> = per_shard
        .into_iter()
        .flat_map(|listed| listed.unwrap_or_default())
        .filter(|(_, _, state, _)| states.is_empty() || states.contains(&state.to_lowercase()))
        .filter(|(_, _, _, kind)| types.is_empty() || types.iter().any(|t| t == kind))
        .filter(|(id, _, _, _)| all || access.sees(Operation::Describe, ResourceType::Group, id))
        .map(|(id, protocol_type, state, kind)| {
            ListedGroup::default()
                .with_group_id(GroupId(str_bytes(id)))
                .with_protocol_type(str_bytes(protocol_type))
                .with_group_state(str_bytes(state))
                .with_group_type(str_bytes(kind))
        })
        .collect();
    groups.sort_by(|a, b| a.group_id.0.cmp(&b.group_id.0));
    ListGroupsResponse::default().with_groups(groups)
}
