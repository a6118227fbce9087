//! OffsetDelete: drops a group's committed offsets for some partitions, unless a live member
//! is still subscribed to the topic (GROUP_SUBSCRIBED_TO_TOPIC).

use kafka_protocol::messages::offset_delete_request::OffsetDeleteRequest;
use kafka_protocol::messages::offset_delete_response::{
    OffsetDeleteResponse, OffsetDeleteResponsePartition, OffsetDeleteResponseTopic,
};
use kafka_protocol::messages::ApiKey;

use crate::acl::{Operation, ResourceType};
use crate::error::KafkaCode;
use crate::group::on_coordinator;
use crate::kafka::context::RequestContext;
use crate::kafka::handlers::{error_code, Api};

/// The versions served.
pub const API: Api = Api::new(ApiKey::OffsetDelete, 0, 0);

pub async fn handle(ctx: &RequestContext<'_>, request: OffsetDeleteRequest) -> OffsetDeleteResponse {
    let shard = ctx.shard;
    let group_id = request.group_id.0.to_string();
    let access = ctx.access();
    if !access.allows(Operation::Delete, ResourceType::Group, &group_id) {
        return OffsetDeleteResponse::default().with_error_code(KafkaCode::GroupAuthorizationFailed.code());
    }
    // Topics the caller may not read keep their offsets and answer TOPIC_AUTHORIZATION_FAILED.
    let denied: Vec<bool> = request
        .topics
        .iter()
        .map(|t| !access.allows(Operation::Read, ResourceType::Topic, &t.name.0))
        .collect();
    let wanted: Vec<(String, Vec<i32>)> = request
        .topics
        .iter()
        .zip(&denied)
        .filter(|(_, denied)| !**denied)
        .map(|(t, _)| {
            (
                t.name.0.to_string(),
                t.partitions.iter().map(|p| p.partition_index).collect(),
            )
        })
        .collect();
    let work = wanted.clone();
    let outcome = on_coordinator(shard, &group_id.clone(), move |shard| async move {
        shard.groups.delete_offsets(&shard, &group_id, &work).await
    })
    .await
    .unwrap_or_else(Err);
    match outcome {
        Err(code) => OffsetDeleteResponse::default().with_error_code(code.code()),
        Ok(codes) => {
            let mut codes = codes.into_iter();
            let topics = request
                .topics
                .into_iter()
                .zip(denied)
                .map(|(topic, denied)| {
                    let codes = if denied {
                        vec![Some(KafkaCode::TopicAuthorizationFailed); topic.partitions.len()]
                    } else {
                        codes.next().expect("one answer per topic asked")
                    };
                    let partitions = topic
                        .partitions
                        .iter()
                        .zip(codes)
                        .map(|(p, code)| {
                            OffsetDeleteResponsePartition::default()
                                .with_partition_index(p.partition_index)
                                .with_error_code(error_code(code))
                        })
                        .collect();
                    OffsetDeleteResponseTopic::default()
                        .with_name(topic.name)
                        .with_partitions(partitions)
                })
                .collect();
            OffsetDeleteResponse::default().with_topics(topics)
        }
    }
}
