//! DescribeCluster: this broker, the cluster id, and the controller (this broker).

use std::rc::Rc;

use kafka_protocol::messages::describe_cluster_request::DescribeClusterRequest;
use kafka_protocol::messages::describe_cluster_response::{DescribeClusterBroker, DescribeClusterResponse};
use kafka_protocol::messages::BrokerId;

use crate::kafka::authorized;
use crate::kafka::handlers::str_bytes;
use crate::shard::Shard;

pub fn handle(shard: &Rc<Shard>, request: DescribeClusterRequest) -> DescribeClusterResponse {
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
