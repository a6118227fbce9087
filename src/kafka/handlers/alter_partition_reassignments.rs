//! AlterPartitionReassignments: moves partitions to new replicas. The controller adds the
//! new replicas at once; they fetch from the leader, join the ISR when caught up, and only
//! then do the old replicas leave (and the lead move, if it was on one of them). A null
//! replica list cancels the reassignment in progress.

use kafka_protocol::messages::alter_partition_reassignments_request::AlterPartitionReassignmentsRequest;
use kafka_protocol::messages::alter_partition_reassignments_response::{
    AlterPartitionReassignmentsResponse, ReassignablePartitionResponse, ReassignableTopicResponse,
};
use kafka_protocol::messages::ApiKey;

use crate::acl::Operation;
use crate::error::KafkaCode;
use crate::kafka::context::RequestContext;
use crate::kafka::handlers::{str_bytes, Api};
use crate::metadata::Refusal;

/// The versions served.
pub const API: Api = Api::new(ApiKey::AlterPartitionReassignments, 0, 1);

pub async fn handle(
    ctx: &RequestContext<'_>,
    request: AlterPartitionReassignmentsRequest,
) -> AlterPartitionReassignmentsResponse {
    if !ctx.allows_cluster(Operation::Alter) {
        return AlterPartitionReassignmentsResponse::default()
            .with_error_code(KafkaCode::ClusterAuthorizationFailed.code())
            .with_error_message(Some(crate::kafka::handlers::str_bytes("Cluster authorization failed.")));
    }
    let shard = ctx.shard;
    // v0 has no such field: the replication factor may change.
    let keep_factor = ctx.api_version >= 1 && !request.allow_replication_factor_change;
    let mut responses = Vec::with_capacity(request.topics.len());
    for topic in request.topics {
        let mut partitions = Vec::with_capacity(topic.partitions.len());
        for partition in topic.partitions {
            let target = partition.replicas.map(|r| r.into_iter().map(|b| b.0).collect());
            let outcome = match &shard.cluster {
                None => Err(Refusal::new(
                    KafkaCode::InvalidReplicaAssignment,
                    "a single node holds every replica; reassignments need a cluster",
                )),
                Some(_) => {
                    crate::node::cluster_authority::reassign(
                        shard,
                        topic.name.0.to_string(),
                        partition.partition_index,
                        target,
                        keep_factor,
                    )
                    .await
                }
            };
            let response = ReassignablePartitionResponse::default()
                .with_partition_index(partition.partition_index)
                .with_error_message(None);
            partitions.push(match outcome {
                Ok(()) => response,
                Err(refusal) => response
                    .with_error_code(refusal.code.code())
                    .with_error_message(Some(str_bytes(refusal.message))),
            });
        }
        responses.push(
            ReassignableTopicResponse::default()
                .with_name(topic.name)
                .with_partitions(partitions),
        );
    }
    let response = AlterPartitionReassignmentsResponse::default()
        .with_error_message(None)
        .with_responses(responses);
    if ctx.api_version >= 1 {
        response.with_allow_replication_factor_change(!keep_factor)
    } else {
        response
    }
}
