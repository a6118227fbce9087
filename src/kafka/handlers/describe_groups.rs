//! DescribeGroups: state, protocol and members of each group, from its coordinator. A group
//! nobody knows is described as Dead (Kafka's answer at these versions).

use std::rc::Rc;

use kafka_protocol::messages::describe_groups_request::DescribeGroupsRequest;
use kafka_protocol::messages::describe_groups_response::{
    DescribeGroupsResponse, DescribedGroup, DescribedGroupMember,
};
use kafka_protocol::messages::ApiKey;
use kafka_protocol::messages::GroupId;

use bytes::{BufMut, Bytes, BytesMut};

use crate::acl::{Operation, ResourceType};
use crate::error::KafkaCode;
use crate::group::assignor::Assignment;
use crate::group::classic::GroupState;
use crate::group::consumer::ConsumerGroup;
use crate::group::on_coordinator;
use crate::kafka::authorized;
use crate::kafka::context::RequestContext;
use crate::kafka::handlers::{error_code, str_bytes, Api};
use crate::metadata::MetadataSnapshot;
use crate::node::Shard;

/// The versions served.
pub const API: Api = Api::new(ApiKey::DescribeGroups, 0, 6);

pub async fn handle(ctx: &RequestContext<'_>, request: DescribeGroupsRequest) -> DescribeGroupsResponse {
    let shard = ctx.shard;
    let version = ctx.api_version;
    let access = ctx.access();
    let mut groups = Vec::with_capacity(request.groups.len());
    for id in request.groups {
        let group_id = id.0.to_string();
        if !access.allows(Operation::Describe, ResourceType::Group, &group_id) {
            groups.push(
                DescribedGroup::default()
                    .with_group_id(id)
                    .with_error_code(KafkaCode::GroupAuthorizationFailed.code()),
            );
            continue;
        }
        let operations = authorized::when_asked(
            request.include_authorized_operations,
            &access,
            ResourceType::Group,
            &group_id,
        );
        let described = on_coordinator(shard, &group_id.clone(), move |shard| async move {
            describe(&shard, &group_id)
        })
        .await
        .unwrap_or_else(|code| DescribedGroup::default().with_error_code(error_code(Some(code))));
        let unknown = described.error_code == 0 && described.group_state.as_str() == GroupState::Dead.name();
        let described = if version >= 6 && unknown {
            // From v6 (KIP-1043) a group nobody knows is an error, not a Dead group.
            DescribedGroup::default()
                .with_error_code(KafkaCode::GroupIdNotFound.code())
                .with_error_message(Some(str_bytes(format!("Group {} not found.", id.0))))
        } else if described.error_code == 0 {
            described.with_authorized_operations(operations)
        } else {
            described
        };
        groups.push(described.with_group_id(GroupId(str_bytes(id.0.to_string()))));
    }
    DescribeGroupsResponse::default().with_groups(groups)
}

/// Runs on the coordinator.
fn describe(shard: &Rc<Shard>, group_id: &str) -> DescribedGroup {
    if let Some(group) = shard.groups.consumer_group(group_id) {
        return describe_consumer(shard, &group.borrow());
    }
    let Some(group) = shard.groups.get(group_id) else {
        return DescribedGroup::default().with_group_state(str_bytes(GroupState::Dead.name()));
    };
    let group = group.borrow();
    let protocol = group.protocol.clone().unwrap_or_default();
    let members = group
        .members
        .values()
        .map(|m| {
            let stable = group.state == GroupState::Stable;
            DescribedGroupMember::default()
                .with_member_id(str_bytes(m.id.clone()))
                .with_group_instance_id(m.instance_id.clone().map(str_bytes))
                .with_client_id(str_bytes(m.client_id.clone()))
                .with_client_host(str_bytes(m.client_host.clone()))
                .with_member_metadata(m.metadata(&protocol))
                .with_member_assignment(if stable {
                    m.assignment.clone()
                } else {
                    Default::default()
                })
        })
        .collect();
    DescribedGroup::default()
        .with_group_state(str_bytes(group.state.name()))
        .with_protocol_type(str_bytes(group.protocol_type.clone().unwrap_or_default()))
        .with_protocol_data(str_bytes(protocol))
        .with_members(members)
}

/// A consumer-protocol group through the classic API, as Kafka shows one: protocol type
/// "consumer", the assignor as the protocol, and each member's assignment encoded as a
/// ConsumerProtocolAssignment so existing tools can read it.
fn describe_consumer(shard: &Rc<Shard>, group: &ConsumerGroup) -> DescribedGroup {
    let snapshot = shard.metadata();
    let members = group
        .members
        .values()
        .map(|m| {
            DescribedGroupMember::default()
                .with_member_id(str_bytes(m.id.clone()))
                .with_group_instance_id(m.instance_id.clone().map(str_bytes))
                .with_client_id(str_bytes(m.client_id.clone()))
                .with_client_host(str_bytes(m.client_host.clone()))
                .with_member_assignment(consumer_protocol_assignment(&snapshot, &m.assigned))
        })
        .collect();
    let assignor = group
        .members
        .values()
        .find_map(|m| m.assignor.clone())
        .unwrap_or_else(|| crate::group::assignor::UNIFORM.to_string());
    DescribedGroup::default()
        .with_group_state(str_bytes(group.state()))
        .with_protocol_type(str_bytes("consumer"))
        .with_protocol_data(str_bytes(assignor))
        .with_members(members)
}

/// ConsumerProtocolAssignment v0: topics with their partitions, no user data.
fn consumer_protocol_assignment(snapshot: &MetadataSnapshot, assigned: &Assignment) -> Bytes {
    let mut out = BytesMut::new();
    out.put_i16(0);
    out.put_i32(assigned.len() as i32);
    for (topic, partitions) in assigned {
        let name = snapshot
            .topic_by_id(*topic)
            .map(|t| t.meta.name.clone())
            .unwrap_or_default();
        out.put_i16(name.len() as i16);
        out.put_slice(name.as_bytes());
        out.put_i32(partitions.len() as i32);
        for p in partitions {
            out.put_i32(*p);
        }
    }
    out.put_i32(-1);
    out.freeze()
}
