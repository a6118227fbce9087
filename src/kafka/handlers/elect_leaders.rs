//! ElectLeaders: a preferred election moves leadership back to each partition's first
//! replica when it is live and in sync; an unclean one gives a leaderless partition any live
//! replica (records only its old ISR held may be lost). Each election is a change the
//! controller commits; on a single node every partition is led by its only replica already.

use kafka_protocol::messages::elect_leaders_request::ElectLeadersRequest;
use kafka_protocol::messages::elect_leaders_response::{ElectLeadersResponse, PartitionResult, ReplicaElectionResult};
use kafka_protocol::messages::{ApiKey, TopicName};

use crate::acl::Operation;
use crate::error::KafkaCode;
use crate::kafka::context::RequestContext;
use crate::kafka::handlers::{str_bytes, Api};
use crate::metadata::Refusal;

/// The versions served.
pub const API: Api = Api::new(ApiKey::ElectLeaders, 0, 2);

/// Kafka's election types (v1+; v0 is always preferred).
const PREFERRED: i8 = 0;
const UNCLEAN: i8 = 1;

pub async fn handle(ctx: &RequestContext<'_>, request: ElectLeadersRequest) -> ElectLeadersResponse {
    if !ctx.allows_cluster(Operation::Alter) {
        return ElectLeadersResponse::default().with_error_code(KafkaCode::ClusterAuthorizationFailed.code());
    }
    let shard = ctx.shard;
    let unclean = match request.election_type {
        PREFERRED => false,
        UNCLEAN => true,
        _ => return ElectLeadersResponse::default().with_error_code(KafkaCode::InvalidRequest.code()),
    };
    let snapshot = shard.metadata();
    // Null asks for every partition; then only those an election changed are reported.
    let everything = request.topic_partitions.is_none();
    let wanted: Vec<(TopicName, Vec<i32>)> = match request.topic_partitions {
        Some(topics) => topics.into_iter().map(|t| (t.topic, t.partitions)).collect(),
        None => snapshot
            .topics
            .values()
            .map(|t| {
                (
                    TopicName(str_bytes(t.meta.name.clone())),
                    (0..t.partition_count()).collect(),
                )
            })
            .collect(),
    };
    let mut results = Vec::with_capacity(wanted.len());
    for (topic, partitions) in wanted {
        let mut partition_results = Vec::with_capacity(partitions.len());
        for partition in partitions {
            let outcome = elect(ctx, &topic.0, partition, unclean).await;
            if everything && matches!(&outcome, Err(r) if r.code == KafkaCode::ElectionNotNeeded) {
                continue;
            }
            partition_results.push(match outcome {
                Ok(()) => PartitionResult::default()
                    .with_partition_id(partition)
                    .with_error_message(None),
                Err(refusal) => PartitionResult::default()
                    .with_partition_id(partition)
                    .with_error_code(refusal.code.code())
                    .with_error_message(Some(str_bytes(refusal.message))),
            });
        }
        if !partition_results.is_empty() || !everything {
            results.push(
                ReplicaElectionResult::default()
                    .with_topic(topic)
                    .with_partition_result(partition_results),
            );
        }
    }
    ElectLeadersResponse::default().with_replica_election_results(results)
}

async fn elect(ctx: &RequestContext<'_>, topic: &str, partition: i32, unclean: bool) -> Result<(), Refusal> {
    let shard = ctx.shard;
    let snapshot = shard.metadata();
    let Some(state) = snapshot
        .topic(topic)
        .and_then(|t| t.partition(crate::ids::PartitionId(partition)))
    else {
        return Err(Refusal::new(
            KafkaCode::UnknownTopicOrPartition,
            format!("{topic}-{partition} does not exist"),
        ));
    };
    if shard.cluster.is_none() {
        return Err(Refusal::new(
            KafkaCode::ElectionNotNeeded,
            "a single node leads every partition it holds",
        ));
    }
    // What this broker's view already answers costs the controller's log nothing (the
    // controller checks again, against the latest image).
    let not_needed = if unclean {
        state.leader.is_some()
    } else {
        state.leader.is_some() && state.leader == state.replicas.first().copied()
    };
    if not_needed {
        return Err(Refusal::new(
            KafkaCode::ElectionNotNeeded,
            if unclean {
                "the partition has a leader"
            } else {
                "the preferred replica leads already"
            },
        ));
    }
    let leader = crate::node::cluster_authority::elect_leader(shard, topic.to_string(), partition, unclean).await?;
    tracing::info!(
        "{topic}-{partition}: {} election made broker {leader} the leader",
        if unclean { "an unclean" } else { "a preferred" }
    );
    Ok(())
}
