//! OffsetDelete: drops a group's committed offsets for some partitions, unless a live member
//! is still subscribed to the topic (GROUP_SUBSCRIBED_TO_TOPIC).

use bytes::{Buf, Bytes};
use kafka_protocol::messages::offset_delete_request::OffsetDeleteRequest;
use kafka_protocol::messages::offset_delete_response::{
    OffsetDeleteResponse, OffsetDeleteResponsePartition, OffsetDeleteResponseTopic,
};
use kafka_protocol::messages::ApiKey;

use crate::error::KafkaCode;
use crate::group::{coordinator, on_coordinator, records};
use crate::kafka::context::RequestContext;
use crate::kafka::handlers::{error_code, Api};

/// The versions served.
pub const API: Api = Api::new(ApiKey::OffsetDelete, 0, 0);

pub async fn handle(ctx: &RequestContext<'_>, request: OffsetDeleteRequest) -> OffsetDeleteResponse {
    let shard = ctx.shard;
    let group_id = request.group_id.0.to_string();
    let wanted: Vec<(String, Vec<i32>)> = request
        .topics
        .iter()
        .map(|t| {
            (
                t.name.0.to_string(),
                t.partitions.iter().map(|p| p.partition_index).collect(),
            )
        })
        .collect();
    let work = wanted.clone();
    let outcome = on_coordinator(shard, &group_id.clone(), move |shard| async move {
        let Some(group) = shard.groups.get(&group_id) else {
            return Err(KafkaCode::GroupIdNotFound);
        };
        let subscribed: Vec<String> = {
            let group = group.borrow();
            let protocol = group.protocol.clone().unwrap_or_default();
            group
                .members
                .values()
                .flat_map(|m| subscribed_topics(m.metadata(&protocol)))
                .collect()
        };
        let mut tombstones = Vec::new();
        let codes: Vec<Vec<Option<KafkaCode>>> = work
            .iter()
            .map(|(topic, partitions)| {
                partitions
                    .iter()
                    .map(|&p| {
                        if subscribed.contains(topic) {
                            return Some(KafkaCode::GroupSubscribedToTopic);
                        }
                        if group.borrow().offsets.contains_key(&(topic.clone(), p)) {
                            tombstones.push((records::offset_key(&group_id, topic, p), None));
                        }
                        None
                    })
                    .collect()
            })
            .collect();
        if !tombstones.is_empty() {
            coordinator::persist(&shard, &group_id, tombstones).await?;
            let mut group = group.borrow_mut();
            for ((topic, partitions), codes) in work.iter().zip(&codes) {
                for (p, code) in partitions.iter().zip(codes) {
                    if code.is_none() {
                        group.offsets.remove(&(topic.clone(), *p));
                    }
                }
            }
        }
        Ok(codes)
    })
    .await
    .unwrap_or_else(Err);
    match outcome {
        Err(code) => OffsetDeleteResponse::default().with_error_code(code.code()),
        Ok(codes) => {
            let topics = request
                .topics
                .into_iter()
                .zip(codes)
                .map(|(topic, codes)| {
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

/// Topics in a consumer's subscription (ConsumerProtocolSubscription: version, then an
/// array of topic strings); empty when the metadata is not a consumer subscription.
fn subscribed_topics(mut metadata: Bytes) -> Vec<String> {
    let mut topics = Vec::new();
    if metadata.remaining() < 6 {
        return topics;
    }
    let _version = metadata.get_i16();
    let count = metadata.get_i32();
    for _ in 0..count.max(0) {
        if metadata.remaining() < 2 {
            break;
        }
        let length = metadata.get_i16();
        if length < 0 || metadata.remaining() < length as usize {
            break;
        }
        match String::from_utf8(metadata.split_to(length as usize).to_vec()) {
            Ok(topic) => topics.push(topic),
            Err(_) => break,
        }
    }
    topics
}
