//! DescribeCluster: the brokers clients may use, the cluster id, and the active controller.

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
    let access = ctx.access();
    let operations = authorized::cluster_when_asked(request.include_cluster_authorized_operations, &access);
    DescribeClusterResponse::default()
        .with_cluster_authorized_operations(operations)
        .with_cluster_id(str_bytes(shard.metadata().cluster_id.clone()))
        .with_controller_id(BrokerId(shard.controller_id().0))
        .with_brokers(
            shard
                .brokers_on(&ctx.session.listener)
                .into_iter()
                .map(|b| {
                    DescribeClusterBroker::default()
                        .with_broker_id(BrokerId(b.id.0))
                        .with_host(str_bytes(b.host))
                        .with_port(i32::from(b.port))
                })
                .collect(),
        )
}
