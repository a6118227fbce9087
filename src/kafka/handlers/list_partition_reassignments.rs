//! ListPartitionReassignments: the reassignments in progress (all, or of the partitions
//! asked for), with the replicas being added and removed.

use kafka_protocol::messages::list_partition_reassignments_request::ListPartitionReassignmentsRequest;
use kafka_protocol::messages::list_partition_reassignments_response::{
    ListPartitionReassignmentsResponse, OngoingPartitionReassignment, OngoingTopicReassignment,
};
use kafka_protocol::messages::{ApiKey, BrokerId, TopicName};

use crate::acl::Operation;
use crate::error::KafkaCode;
use crate::kafka::context::RequestContext;
use crate::kafka::handlers::{str_bytes, Api};

/// The versions served.
pub const API: Api = Api::new(ApiKey::ListPartitionReassignments, 0, 0);

pub async fn handle(
    ctx: &RequestContext<'_>,
    request: ListPartitionReassignmentsRequest,
) -> ListPartitionReassignmentsResponse {
    if !ctx.allows_cluster(Operation::Describe) {
        return ListPartitionReassignmentsResponse::default()
            .with_error_code(KafkaCode::ClusterAuthorizationFailed.code())
            .with_error_message(Some(crate::kafka::handlers::str_bytes("Cluster authorization failed.")));
    }
    let Some(cluster) = &ctx.shard.cluster else {
        // A single node never reassigns.
        return ListPartitionReassignmentsResponse::default().with_error_message(None);
    };
    let image = cluster.image.borrow().clone();
    let wanted: Option<Vec<(String, Vec<i32>)>> = request.topics.map(|topics| {
        topics
            .into_iter()
            .map(|t| (t.name.0.to_string(), t.partition_indexes))
            .collect()
    });
    let brokers = |ids: &[i32]| ids.iter().map(|id| BrokerId(*id)).collect::<Vec<_>>();
    let mut topics = Vec::new();
    for (name, record) in &image.topics {
        let asked: Option<&Vec<i32>> = match &wanted {
            Some(wanted) => match wanted.iter().find(|(n, _)| n == name) {
                Some((_, partitions)) => Some(partitions),
                None => continue,
            },
            None => None,
        };
        let partitions: Vec<OngoingPartitionReassignment> = record
            .partitions
            .iter()
            .enumerate()
            .filter(|(p, _)| asked.is_none_or(|asked| asked.contains(&(*p as i32))))
            .filter(|(_, p)| p.reassigning_to().is_some())
            .map(|(p, state)| {
                OngoingPartitionReassignment::default()
                    .with_partition_index(p as i32)
                    .with_replicas(brokers(&state.replicas))
                    .with_adding_replicas(brokers(&state.adding))
                    .with_removing_replicas(brokers(&state.removing))
            })
            .collect();
        if !partitions.is_empty() {
            topics.push(
                OngoingTopicReassignment::default()
                    .with_name(TopicName(str_bytes(name.clone())))
                    .with_partitions(partitions),
            );
        }
    }
    ListPartitionReassignmentsResponse::default()
        .with_error_message(None)
        .with_topics(topics)
}
