//! WriteTxnMarkers: a transaction coordinator (on another broker) asks this broker, as the
//! leader of the partitions, to end a producer's transaction in them with a commit or abort
//! marker. Each partition answers once its marker is held by every in-sync replica.

use std::collections::BTreeMap;

use kafka_protocol::messages::write_txn_markers_request::WriteTxnMarkersRequest;
use kafka_protocol::messages::write_txn_markers_response::{
    WritableTxnMarkerPartitionResult, WritableTxnMarkerResult, WritableTxnMarkerTopicResult, WriteTxnMarkersResponse,
};
use kafka_protocol::messages::{ApiKey, TopicName};

use crate::acl::Operation;
use crate::error::KafkaCode;
use crate::kafka::context::RequestContext;
use crate::kafka::handlers::{error_code, str_bytes, Api};
use crate::txn::MarkerWork;

/// The versions served.
pub const API: Api = Api::new(ApiKey::WriteTxnMarkers, 1, 1);

pub async fn handle(ctx: &RequestContext<'_>, request: WriteTxnMarkersRequest) -> WriteTxnMarkersResponse {
    let access = ctx.access();
    let denied = !access.sees(
        Operation::Alter,
        crate::acl::ResourceType::Cluster,
        crate::acl::CLUSTER_NAME,
    ) && !access.allows_cluster(Operation::ClusterAction);
    let mut markers = Vec::with_capacity(request.markers.len());
    for marker in request.markers {
        let work = MarkerWork {
            producer_id: marker.producer_id.0,
            epoch: marker.producer_epoch,
            coordinator_epoch: marker.coordinator_epoch,
            commit: marker.transaction_result,
            partitions: marker
                .topics
                .iter()
                .flat_map(|t| t.partition_indexes.iter().map(|p| (t.name.0.to_string(), *p)))
                .collect(),
        };
        let results: BTreeMap<(String, i32), _> = if denied {
            let refused = Some(KafkaCode::ClusterAuthorizationFailed);
            work.partitions.into_iter().map(|p| (p, refused)).collect()
        } else {
            crate::node::transactions::write_local(ctx.shard, work)
                .await
                .into_iter()
                .collect()
        };
        let topics = marker
            .topics
            .iter()
            .map(|t| {
                let partitions = t
                    .partition_indexes
                    .iter()
                    .map(|p| {
                        let code = results.get(&(t.name.0.to_string(), *p)).copied().flatten();
                        WritableTxnMarkerPartitionResult::default()
                            .with_partition_index(*p)
                            .with_error_code(error_code(code))
                    })
                    .collect();
                WritableTxnMarkerTopicResult::default()
                    .with_name(TopicName(str_bytes(t.name.0.to_string())))
                    .with_partitions(partitions)
            })
            .collect();
        markers.push(
            WritableTxnMarkerResult::default()
                .with_producer_id(marker.producer_id)
                .with_topics(topics),
        );
    }
    WriteTxnMarkersResponse::default().with_markers(markers)
}
