//! OffsetFetch: committed offsets of one group (v0-v7) or several (v8+). A partition with no
//! commit answers offset -1.

use kafka_protocol::messages::offset_fetch_request::OffsetFetchRequest;
use kafka_protocol::messages::offset_fetch_response::{
    OffsetFetchResponse, OffsetFetchResponseGroup, OffsetFetchResponsePartition, OffsetFetchResponsePartitions,
    OffsetFetchResponseTopic, OffsetFetchResponseTopics,
};
use kafka_protocol::messages::ApiKey;
use kafka_protocol::messages::{GroupId, TopicName};

use crate::acl::{Operation, ResourceType};
use crate::error::KafkaCode;
use crate::group::on_coordinator;
use crate::kafka::context::RequestContext;
use crate::kafka::handlers::{error_code, str_bytes, Api};

/// (offset, leader epoch, metadata) of one partition.
/// (offset, leader epoch, metadata, error): the error is UNSTABLE_OFFSET_COMMIT for a
/// partition an unfinished transaction has committed an offset of, when asked for stable ones.
type Committed = (i64, i32, Option<String>, Option<KafkaCode>);
/// Per topic, per partition: what is committed.
type GroupOffsets = Vec<(String, Vec<(i32, Committed)>)>;

/// The versions served.
pub const API: Api = Api::new(ApiKey::OffsetFetch, 1, 10);

pub async fn handle(ctx: &RequestContext<'_>, request: OffsetFetchRequest) -> OffsetFetchResponse {
    let version = ctx.api_version;
    if version < 8 {
        let wanted = request.topics.map(|topics| {
            topics
                .into_iter()
                .map(|t| (t.name.0.to_string(), t.partition_indexes))
                .collect()
        });
        let stable = version >= 7 && request.require_stable;
        let (error, offsets) = fetch(ctx, request.group_id.0.to_string(), wanted, stable).await;
        let topics = build(
            offsets,
            |p, (offset, epoch, metadata, error)| {
                OffsetFetchResponsePartition::default()
                    .with_partition_index(p)
                    .with_error_code(error_code(error))
                    .with_committed_offset(offset)
                    .with_committed_leader_epoch(epoch)
                    .with_metadata(metadata.map(str_bytes))
            },
            |name, partitions| {
                OffsetFetchResponseTopic::default()
                    .with_name(name)
                    .with_partitions(partitions)
            },
        );
        return OffsetFetchResponse::default()
            .with_error_code(error_code(error))
            .with_topics(topics);
    }
    let mut groups = Vec::with_capacity(request.groups.len());
    for group in request.groups {
        let wanted = group.topics.map(|topics| {
            topics
                .into_iter()
                .map(|t| (t.name.0.to_string(), t.partition_indexes))
                .collect()
        });
        let (error, offsets) = fetch(ctx, group.group_id.0.to_string(), wanted, request.require_stable).await;
        let topics = build(
            offsets,
            |p, (offset, epoch, metadata, error)| {
                OffsetFetchResponsePartitions::default()
                    .with_partition_index(p)
                    .with_error_code(error_code(error))
                    .with_committed_offset(offset)
                    .with_committed_leader_epoch(epoch)
                    .with_metadata(metadata.map(str_bytes))
            },
            |name, partitions| {
                OffsetFetchResponseTopics::default()
                    .with_name(name)
                    .with_partitions(partitions)
            },
        );
        groups.push(
            OffsetFetchResponseGroup::default()
                .with_group_id(GroupId(str_bytes(group.group_id.0.to_string())))
                .with_error_code(error_code(error))
                .with_topics(topics),
        );
    }
    OffsetFetchResponse::default().with_groups(groups)
}

/// Builds the response topics; v0-v7 and v8+ have distinct (but parallel) types.
fn build<T, P>(
    offsets: GroupOffsets,
    partition: impl Fn(i32, Committed) -> P,
    topic: impl Fn(TopicName, Vec<P>) -> T,
) -> Vec<T> {
    offsets
        .into_iter()
        .map(|(name, partitions)| {
            let partitions = partitions
                .into_iter()
                .map(|(p, committed)| partition(p, committed))
                .collect();
            topic(TopicName(str_bytes(name)), partitions)
        })
        .collect()
}

/// The group's committed offsets for `wanted` (every committed partition when None), as the
/// caller may see them: a group it may not describe is refused, a named topic it may not
/// describe answers TOPIC_AUTHORIZATION_FAILED, and a listing leaves such topics out.
async fn fetch(
    ctx: &RequestContext<'_>,
    group_id: String,
    wanted: Option<Vec<(String, Vec<i32>)>>,
    stable: bool,
) -> (Option<KafkaCode>, GroupOffsets) {
    let shard = ctx.shard;
    let access = ctx.access();
    if !access.allows(Operation::Describe, ResourceType::Group, &group_id) {
        return (Some(KafkaCode::GroupAuthorizationFailed), Vec::new());
    }
    let named = wanted.is_some();
    let outcome = on_coordinator(shard, &group_id.clone(), move |shard| async move {
        let group = shard.groups.get(&group_id);
        let committed = |topic: &str, p: i32| -> Committed {
            if stable && shard.groups.has_pending_offset(&group_id, topic, p) {
                return (-1, -1, Some(String::new()), Some(KafkaCode::UnstableOffsetCommit));
            }
            group
                .as_ref()
                .and_then(|g| {
                    g.borrow()
                        .offsets
                        .get(&(topic.to_string(), p))
                        .map(|v| (v.offset, v.leader_epoch, Some(v.metadata.clone()), None))
                })
                .unwrap_or((-1, -1, Some(String::new()), None))
        };
        match wanted {
            Some(wanted) => wanted
                .into_iter()
                .map(|(topic, partitions)| {
                    let values = partitions.into_iter().map(|p| (p, committed(&topic, p))).collect();
                    (topic, values)
                })
                .collect(),
            None => {
                let mut by_topic: std::collections::BTreeMap<String, Vec<(i32, Committed)>> = Default::default();
                if let Some(group) = &group {
                    for ((topic, p), v) in &group.borrow().offsets {
                        by_topic
                            .entry(topic.clone())
                            .or_default()
                            .push((*p, (v.offset, v.leader_epoch, Some(v.metadata.clone()), None)));
                    }
                }
                by_topic
                    .into_iter()
                    .map(|(topic, mut partitions)| {
                        partitions.sort_by_key(|(p, _)| *p);
                        (topic, partitions)
                    })
                    .collect::<GroupOffsets>()
            }
        }
    })
    .await;
    // A listing leaves such topics out silently; a named one is refused (and counted).
    let visible = |(topic, partitions): (String, Vec<(i32, Committed)>)| {
        let seen = if named {
            access.allows(Operation::Describe, ResourceType::Topic, &topic)
        } else {
            access.sees(Operation::Describe, ResourceType::Topic, &topic)
        };
        if seen {
            return Some((topic, partitions));
        }
        if !named {
            return None;
        }
        let refused = partitions
            .into_iter()
            .map(|(p, _)| {
                (
                    p,
                    (-1, -1, Some(String::new()), Some(KafkaCode::TopicAuthorizationFailed)),
                )
            })
            .collect();
        Some((topic, refused))
    };
    match outcome {
        Ok(offsets) => (None, offsets.into_iter().filter_map(visible).collect()),
        Err(code) => (Some(code), Vec::new()),
    }
}
