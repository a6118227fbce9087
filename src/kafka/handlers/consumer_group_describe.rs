//! ConsumerGroupDescribe (KIP-848): epochs, assignor, and each member's current and target
//! assignment.

use std::rc::Rc;

use kafka_protocol::messages::consumer_group_describe_request::ConsumerGroupDescribeRequest;
use kafka_protocol::messages::consumer_group_describe_response::{
    Assignment, ConsumerGroupDescribeResponse, DescribedGroup, Member, TopicPartitions,
};
use kafka_protocol::messages::ApiKey;
use kafka_protocol::messages::{GroupId, TopicName};

use crate::acl::{Operation, ResourceType};
use crate::error::KafkaCode;
use crate::group::assignor;
use crate::group::on_coordinator;
use crate::kafka::context::RequestContext;
use crate::kafka::handlers::{error_code, str_bytes, Api};
use crate::metadata::MetadataSnapshot;
use crate::node::Shard;

/// The versions served.
pub const API: Api = Api::new(ApiKey::ConsumerGroupDescribe, 0, 1);

pub async fn handle(ctx: &RequestContext<'_>, request: ConsumerGroupDescribeRequest) -> ConsumerGroupDescribeResponse {
    let shard = ctx.shard;
    let access = ctx.access();
    let mut groups = Vec::with_capacity(request.group_ids.len());
    for id in request.group_ids {
        let group_id = id.0.to_string();
        if !access.allows(Operation::Describe, ResourceType::Group, &group_id) {
            groups.push(
                DescribedGroup::default()
                    .with_group_id(id)
                    .with_error_code(KafkaCode::GroupAuthorizationFailed.code()),
            );
            continue;
        }
        let operations = crate::kafka::authorized::when_asked(
            request.include_authorized_operations,
            &access,
            ResourceType::Group,
            &group_id,
        );
        let described = on_coordinator(shard, &group_id.clone(), move |shard| async move {
            describe(&shard, &group_id)
        })
        .await
        .unwrap_or_else(|code| DescribedGroup::default().with_error_code(code.code()));
        let described = if described.error_code == 0 {
            described.with_authorized_operations(operations)
        } else {
            described
        };
        groups.push(described.with_group_id(GroupId(str_bytes(id.0.to_string()))));
    }
    ConsumerGroupDescribeResponse::default().with_groups(groups)
}

fn describe(shard: &Rc<Shard>, group_id: &str) -> DescribedGroup {
    let Some(group) = shard.groups.consumer_group(group_id) else {
        return DescribedGroup::default()
            .with_error_code(error_code(Some(KafkaCode::GroupIdNotFound)))
            .with_error_message(Some(str_bytes(format!(
                "Group {group_id} is not a consumer-protocol group"
            ))));
    };
    let snapshot = shard.metadata();
    let group = group.borrow();
    let assignor_name = group
        .members
        .values()
        .find_map(|m| m.assignor.clone())
        .unwrap_or_else(|| assignor::UNIFORM.to_string());
    let members = group
        .members
        .values()
        .map(|m| {
            let target = group.target.get(&m.id).cloned().unwrap_or_default();
            Member::default()
                .with_member_id(str_bytes(m.id.clone()))
                .with_instance_id(m.instance_id.clone().map(str_bytes))
                .with_rack_id(m.rack_id.clone().map(str_bytes))
                .with_member_epoch(m.epoch)
                .with_client_id(str_bytes(m.client_id.clone()))
                .with_client_host(str_bytes(m.client_host.clone()))
                .with_subscribed_topic_names(m.subscribed.iter().map(|t| TopicName(str_bytes(t.clone()))).collect())
                .with_assignment(assignment(&snapshot, &m.assigned))
                .with_target_assignment(assignment(&snapshot, &target))
        })
        .collect();
    DescribedGroup::default()
        .with_group_state(str_bytes(group.state().to_lowercase()))
        .with_group_epoch(group.group_epoch)
        .with_assignment_epoch(group.assignment_epoch)
        .with_assignor_name(str_bytes(assignor_name))
        .with_members(members)
}

fn assignment(snapshot: &MetadataSnapshot, assigned: &assignor::Assignment) -> Assignment {
    Assignment::default().with_topic_partitions(
        assigned
            .iter()
            .map(|(topic, partitions)| {
                let name = snapshot
                    .topic_by_id(*topic)
                    .map(|t| t.meta.name.clone())
                    .unwrap_or_default();
                TopicPartitions::default()
                    .with_topic_id(*topic)
                    .with_topic_name(TopicName(str_bytes(name)))
                    .with_partitions(partitions.iter().copied().collect())
            })
            .collect(),
    )
}
