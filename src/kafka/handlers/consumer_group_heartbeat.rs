//! ConsumerGroupHeartbeat (KIP-848): members report their subscription and owned partitions;
//! the coordinator answers with their epoch and, when it changed, their assignment.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use kafka_protocol::messages::consumer_group_heartbeat_request::ConsumerGroupHeartbeatRequest;
use kafka_protocol::messages::consumer_group_heartbeat_response::{
    Assignment, ConsumerGroupHeartbeatResponse, TopicPartitions,
};
use kafka_protocol::messages::ApiKey;

use crate::acl::{Operation, ResourceType};
use crate::error::KafkaCode;
use crate::group::consumer::{Heartbeat, HeartbeatAnswer};
use crate::group::on_coordinator;
use crate::kafka::context::RequestContext;
use crate::kafka::handlers::{error_code, str_bytes, Api};

/// The versions served.
pub const API: Api = Api::new(ApiKey::ConsumerGroupHeartbeat, 0, 1);

pub async fn handle(
    ctx: &RequestContext<'_>,
    request: ConsumerGroupHeartbeatRequest,
) -> ConsumerGroupHeartbeatResponse {
    let shard = ctx.shard;
    let client_id = ctx.client_id.to_string();
    let client_host = ctx.client_host();
    let group_id = request.group_id.0.to_string();
    let member_id = request.member_id.to_string();
    // The group's own configs (IncrementalAlterConfigs on the GROUP resource) or the broker's.
    let timing = shard.group_config(&group_id);
    if !ctx.allows(Operation::Read, ResourceType::Group, &group_id) {
        return failed(
            KafkaCode::GroupAuthorizationFailed,
            "Group authorization failed.",
            &member_id,
        );
    }
    let access = ctx.access();
    if let Some(topic) = request
        .subscribed_topic_names
        .iter()
        .flatten()
        .find(|topic| !access.allows(Operation::Describe, ResourceType::Topic, &topic.0))
    {
        return failed(
            KafkaCode::TopicAuthorizationFailed,
            &format!("Not authorized to describe topic {}", topic.0),
            &member_id,
        );
    }
    // Clients send an empty regex to mean "none".
    if request.subscribed_topic_regex.as_ref().is_some_and(|r| !r.is_empty()) {
        return failed(
            KafkaCode::InvalidRequest,
            "Regular-expression subscriptions are not supported",
            &member_id,
        );
    }
    let answer = on_coordinator(shard, &group_id.clone(), move |shard| async move {
        let classic_members = shard.groups.get(&group_id).is_some_and(|g| !g.borrow().is_empty());
        if classic_members {
            return HeartbeatAnswer {
                error: Some(KafkaCode::GroupIdNotFound),
                message: Some("The group has members on the classic protocol".into()),
                member_id: request.member_id.to_string(),
                epoch: -1,
                assignment: None,
            };
        }
        let heartbeat = Heartbeat {
            member_id: request.member_id.to_string(),
            epoch: request.member_epoch,
            instance_id: request.instance_id.map(|s| s.to_string()),
            rack_id: request.rack_id.map(|s| s.to_string()),
            client_id,
            client_host,
            rebalance_timeout: (request.rebalance_timeout_ms >= 0)
                .then(|| Duration::from_millis(request.rebalance_timeout_ms as u64)),
            subscribed: request
                .subscribed_topic_names
                .map(|names| names.into_iter().map(|n| n.0.to_string()).collect::<BTreeSet<_>>()),
            assignor: request.server_assignor.map(|s| s.to_string()),
            owned: request.topic_partitions.map(|owned| {
                owned
                    .into_iter()
                    .map(|t| (t.topic_id, t.partitions.into_iter().collect()))
                    .collect()
            }),
        };
        let snapshot = shard.metadata();
        let topics = |name: &str| snapshot.topic(name).map(|t| (t.meta.id, t.partition_count()));
        let group = shard.groups.consumer_group_or_create(&group_id);
        let summary = format!(
            "member {:?} epoch {} owned {:?}",
            heartbeat.member_id,
            heartbeat.epoch,
            heartbeat
                .owned
                .as_ref()
                .map(|o| o.values().map(|p| p.len()).sum::<usize>())
        );
        let answer = group.borrow_mut().heartbeat(
            heartbeat,
            Duration::from_millis(timing.session_timeout_ms),
            Instant::now(),
            &topics,
        );
        tracing::debug!(
            target: "sluice::group",
            "group {group_id}: heartbeat {summary} -> epoch {} {:?} assignment {:?}",
            answer.epoch,
            answer.error,
            answer.assignment.as_ref().map(|a| a.values().map(|p| p.len()).sum::<usize>())
        );
        shard.groups.rearm_consumer(&group_id);
        answer
    })
    .await
    .unwrap_or_else(|code| HeartbeatAnswer {
        error: Some(code),
        member_id: member_id.clone(),
        epoch: -1,
        ..HeartbeatAnswer::default()
    });

    let assignment = answer.assignment.map(|assigned| {
        Assignment::default().with_topic_partitions(
            assigned
                .into_iter()
                .map(|(topic, partitions)| {
                    TopicPartitions::default()
                        .with_topic_id(topic)
                        .with_partitions(partitions.into_iter().collect())
                })
                .collect(),
        )
    });
    ConsumerGroupHeartbeatResponse::default()
        .with_error_code(error_code(answer.error))
        .with_error_message(answer.message.map(str_bytes))
        .with_member_id(Some(str_bytes(answer.member_id)))
        .with_member_epoch(answer.epoch)
        .with_heartbeat_interval_ms(timing.heartbeat_interval_ms as i32)
        .with_assignment(assignment)
}

fn failed(code: KafkaCode, message: &str, member_id: &str) -> ConsumerGroupHeartbeatResponse {
    ConsumerGroupHeartbeatResponse::default()
        .with_error_code(code.code())
        .with_error_message(Some(str_bytes(message)))
        .with_member_id(Some(str_bytes(member_id)))
        .with_member_epoch(-1)
}
