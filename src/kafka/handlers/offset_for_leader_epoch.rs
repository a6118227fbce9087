//! OffsetForLeaderEpoch: consumers validate their position after a leader change. A single
//! node has had one leader epoch since the log began, so its end offset is the log end, and
//! no epoch can be older than the current one (so nothing is fenced).

use kafka_protocol::messages::offset_for_leader_epoch_request::OffsetForLeaderEpochRequest;
use kafka_protocol::messages::offset_for_leader_epoch_response::{
    EpochEndOffset, OffsetForLeaderEpochResponse, OffsetForLeaderTopicResult,
};
use kafka_protocol::messages::ApiKey;

use crate::acl::{Operation, ResourceType};
use crate::error::KafkaCode;
use crate::ids::{LeaderEpoch, PartitionId};
use crate::kafka::context::RequestContext;
use crate::kafka::handlers::{fan_out, Api};

/// The versions served.
pub const API: Api = Api::new(ApiKey::OffsetForLeaderEpoch, 2, 4);

pub async fn handle(ctx: &RequestContext<'_>, request: OffsetForLeaderEpochRequest) -> OffsetForLeaderEpochResponse {
    let shard = ctx.shard;
    let snapshot = shard.metadata();
    let mut items = Vec::new();
    let mut answers: Vec<Vec<Option<EpochEndOffset>>> = Vec::new();
    // A follower acts for the cluster; anyone else describes each topic.
    let access = ctx.access();
    let cluster_action = access.sees(
        Operation::ClusterAction,
        ResourceType::Cluster,
        crate::acl::CLUSTER_NAME,
    );
    for topic in &request.topics {
        let denied = !cluster_action && !access.allows(Operation::Describe, ResourceType::Topic, &topic.topic.0);
        let mut row = Vec::new();
        for p in &topic.partitions {
            let partition = PartitionId(p.partition);
            let base = EpochEndOffset::default().with_partition(p.partition);
            let found = snapshot.topic(&topic.topic.0);
            let owner = found.and_then(|t| t.owner(partition));
            match owner {
                _ if denied => row.push(Some(base.with_error_code(KafkaCode::TopicAuthorizationFailed.code()))),
                None => row.push(Some(base.with_error_code(KafkaCode::UnknownTopicOrPartition.code()))),
                Some(_) if found.is_some_and(|t| p.current_leader_epoch > t.leader_epoch(partition).0) => {
                    row.push(Some(base.with_error_code(KafkaCode::UnknownLeaderEpoch.code())))
                }
                Some(owner) => {
                    items.push((owner, (topic.topic.0.to_string(), partition, p.leader_epoch)));
                    row.push(None);
                }
            }
        }
        answers.push(row);
    }
    let mut looked_up = fan_out(
        shard,
        items,
        |shard, (topic, partition, epoch): (String, PartitionId, i32)| async move {
            let base = EpochEndOffset::default().with_partition(partition.0);
            match shard.log_for(&topic, partition) {
                Err(code) => base.with_error_code(code.code()),
                Ok(log) => match log.end_offset_for_epoch(LeaderEpoch(epoch)) {
                    Some((epoch, end)) => base.with_leader_epoch(epoch.0).with_end_offset(end.0),
                    None => base.with_leader_epoch(-1).with_end_offset(-1),
                },
            }
        },
        || EpochEndOffset::default().with_error_code(KafkaCode::NotLeaderOrFollower.code()),
    )
    .await
    .into_iter();
    let topics = request
        .topics
        .into_iter()
        .zip(answers)
        .map(|(topic, row)| {
            let partitions = row
                .into_iter()
                .map(|answer| answer.unwrap_or_else(|| looked_up.next().expect("one answer per lookup")))
                .collect();
            OffsetForLeaderTopicResult::default()
                .with_topic(topic.topic)
                .with_partitions(partitions)
        })
        .collect();
    OffsetForLeaderEpochResponse::default().with_topics(topics)
}
