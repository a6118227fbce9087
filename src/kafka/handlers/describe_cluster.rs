//! DescribeCluster: this broker, the cluster id, and the controller (this broker).

use kafka_protocol::messages::describe_cluster_request::DescribeClusterRequest;
use kafka_protocol::messages::describe_cluster_response::{DescribeClusterBroker, DescribeClusterResponse};
use kafka_protocol::messages::ApiKey;
use kafka_protocol::messages::BrokerId;

use crate::kafka::authorized;
use crate::kafka::context::RequestContext;
use crate::kafka::handlers::{str_bytes, Api};

/// The versions served.
pub const API: Api = Api::new(ApiKey::DescribeCluster, 0, 1);

pub async fn handle(ctx: &RequestContext<'_>, request: DescribeClusterRequest) -> DescribeClusterResponse {
    let shard = ctx.shard;
    let node = BrokerId(shard.identity.node_id.0);
    DescribeClusterResponse::default()
        .with_cluster_authorized_operations(authorized::when_asked(
            request.include_cluster_authorized_operations,
            authorized::CLUSTER_ALL,
        ))
        .with_cluster_id(str_bytes(shard.metadata().cluster_id.clone()))
        .with_controller_id(node)
        .with_brokers(vec![DescribeClusterBroker::default()
            .with_broker_id(node)
            .with_host(str_bytes(shard.identity.host.clone()))
            .with_port(i32::from(shard.identity.port))])
}
