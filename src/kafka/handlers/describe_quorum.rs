//! DescribeQuorum: the controller quorum as the active controller sees it (Kafka's
//! `__cluster_metadata` partition 0): its leader and term, the committed log index, and how
//! far each voter has replicated. A single node is a quorum of itself.

use kafka_protocol::messages::describe_quorum_request::DescribeQuorumRequest;
use kafka_protocol::messages::describe_quorum_response::{
    DescribeQuorumResponse, Listener, Node, PartitionData, ReplicaState, TopicData,
};
use kafka_protocol::messages::{ApiKey, BrokerId, TopicName};

use crate::acl::Operation;
use crate::error::KafkaCode;
use crate::kafka::context::RequestContext;
use crate::kafka::handlers::{str_bytes, Api};

/// The versions served.
pub const API: Api = Api::new(ApiKey::DescribeQuorum, 0, 2);

/// Kafka's name for the metadata log; the only topic DescribeQuorum knows.
const METADATA_TOPIC: &str = "__cluster_metadata";

/// Longest the active controller may take to answer.
const QUORUM_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

pub async fn handle(ctx: &RequestContext<'_>, request: DescribeQuorumRequest) -> DescribeQuorumResponse {
    if !ctx.allows_cluster(Operation::Describe) {
        return DescribeQuorumResponse::default()
            .with_error_code(KafkaCode::ClusterAuthorizationFailed.code())
            .with_error_message(Some(crate::kafka::handlers::str_bytes("Cluster authorization failed.")));
    }
    let shard = ctx.shard;
    let asked_for_it = request
        .topics
        .iter()
        .any(|t| t.topic_name.0.as_str() == METADATA_TOPIC && t.partitions.iter().any(|p| p.partition_index == 0));
    if !asked_for_it {
        return refused(
            ctx,
            KafkaCode::UnknownTopicOrPartition,
            format!("only {METADATA_TOPIC}-0 has a quorum"),
        );
    }
    let voter = |id: i32, end: i64| {
        ReplicaState::default()
            .with_replica_id(BrokerId(id))
            .with_log_end_offset(end)
            .with_last_fetch_timestamp(-1)
            .with_last_caught_up_timestamp(-1)
    };
    let (leader, epoch, high_watermark, voters, nodes) = match &shard.cluster {
        None => {
            let me = shard.identity.node_id.0;
            let version = shard.metadata().version as i64;
            (me, 1, version, vec![voter(me, version)], Vec::new())
        }
        Some(cluster) => match cluster.quorum(QUORUM_TIMEOUT).await {
            Ok(state) => {
                let leader = state.leader.map_or(-1, |l| l as i32);
                let configured = shard.config.cluster.voters().unwrap_or_default();
                let voters = configured
                    .iter()
                    .map(|v| {
                        let matched = state
                            .voters
                            .iter()
                            .find(|(id, _)| *id as i32 == v.id)
                            .and_then(|(_, m)| *m);
                        let end = match matched {
                            Some(index) => index as i64,
                            None if v.id == leader => state.last_log_index as i64,
                            None => -1,
                        };
                        voter(v.id, end)
                    })
                    .collect();
                let nodes = configured
                    .into_iter()
                    .filter_map(|v| {
                        let (host, port) = v.address.rsplit_once(':')?;
                        Some(
                            Node::default()
                                .with_node_id(BrokerId(v.id))
                                .with_listeners(vec![Listener::default()
                                    .with_name(str_bytes("CONTROLLER".to_string()))
                                    .with_host(str_bytes(host.to_string()))
                                    .with_port(port.parse().ok()?)]),
                        )
                    })
                    .collect();
                (leader, state.term as i32, state.applied as i64, voters, nodes)
            }
            Err(e) => return refused(ctx, KafkaCode::CoordinatorNotAvailable, e.to_string()),
        },
    };
    // v2 added the messages (null when there is no error) and the voters' endpoints.
    let v2 = ctx.api_version >= 2;
    let partition = PartitionData::default()
        .with_partition_index(0)
        .with_leader_id(BrokerId(leader))
        .with_leader_epoch(epoch)
        .with_high_watermark(high_watermark)
        .with_current_voters(voters);
    let partition = if v2 {
        partition.with_error_message(None)
    } else {
        partition
    };
    let response = DescribeQuorumResponse::default().with_topics(vec![TopicData::default()
        .with_topic_name(TopicName(str_bytes(METADATA_TOPIC.to_string())))
        .with_partitions(vec![partition])]);
    if v2 {
        response.with_error_message(None).with_nodes(nodes)
    } else {
        response
    }
}

/// An error answer; its message only where the version has one (v2).
fn refused(ctx: &RequestContext<'_>, code: KafkaCode, message: String) -> DescribeQuorumResponse {
    let response = DescribeQuorumResponse::default().with_error_code(code.code());
    if ctx.api_version >= 2 {
        response.with_error_message(Some(str_bytes(message)))
    } else {
        tracing::debug!("DescribeQuorum: {message}");
        response
    }
}
