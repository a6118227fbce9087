//! `sluice cluster`: the brokers, the active controller and the controller quorum, and the
//! partitions that are under-replicated or offline, over the Kafka protocol (DescribeCluster,
//! DescribeQuorum, Metadata).

use clap::Args;
use kafka_protocol::messages::describe_quorum_request::{PartitionData, TopicData};
use kafka_protocol::messages::{DescribeClusterRequest, DescribeQuorumRequest, TopicName};
use kafka_protocol::protocol::StrBytes;

use crate::cli::client::{self, Client};
use crate::cli::topic::ids;

#[derive(Args, Debug)]
pub struct ClusterArgs {
    /// A broker to start from.
    #[arg(long, short = 'b', default_value = "127.0.0.1:9092", value_name = "HOST:PORT")]
    bootstrap: String,
}

pub fn run(args: ClusterArgs) -> anyhow::Result<()> {
    let mut client = Client::connect(&args.bootstrap)?;
    let cluster = client.call(0, &DescribeClusterRequest::default())?;
    client::check(cluster.error_code, cluster.error_message.as_ref(), "DescribeCluster")?;
    let controller = cluster.controller_id.0;
    println!(
        "cluster {}: {} brokers, active controller {}",
        cluster.cluster_id.as_str(),
        cluster.brokers.len(),
        if controller >= 0 {
            controller.to_string()
        } else {
            "none".into()
        }
    );
    println!("{:>7} {:<32}", "BROKER", "ADDRESS");
    for broker in &cluster.brokers {
        let role = if broker.broker_id.0 == controller {
            "  (controller)"
        } else {
            ""
        };
        println!(
            "{:>7} {:<32}{role}",
            broker.broker_id.0,
            format!("{}:{}", broker.host.as_str(), broker.port)
        );
    }

    // The quorum, where the broker answers DescribeQuorum.
    let quorum = DescribeQuorumRequest::default().with_topics(vec![TopicData::default()
        .with_topic_name(TopicName(StrBytes::from_static_str("__cluster_metadata")))
        .with_partitions(vec![PartitionData::default().with_partition_index(0)])]);
    if let Ok(answer) = client.call(1, &quorum) {
        if let Some(partition) = answer.topics.first().and_then(|t| t.partitions.first()) {
            let voters: Vec<String> = partition
                .current_voters
                .iter()
                .map(|v| format!("{} at {}", v.replica_id.0, v.log_end_offset))
                .collect();
            println!(
                "quorum: leader {}, epoch {}, committed {}; voters {}",
                partition.leader_id.0,
                partition.leader_epoch,
                partition.high_watermark,
                voters.join(", ")
            );
        }
    }

    let topics = client::metadata(&mut client, None, false)?;
    let mut under = Vec::new();
    let mut offline = Vec::new();
    for topic in &topics {
        for p in &topic.partitions {
            if p.leader < 0 {
                offline.push((topic.name.as_str(), p));
            } else if p.isr.len() < p.replicas.len() {
                under.push((topic.name.as_str(), p));
            }
        }
    }
    for (title, list) in [("under-replicated", &under), ("offline", &offline)] {
        println!("{title} partitions: {}", list.len());
        if list.is_empty() {
            continue;
        }
        println!(
            "{:<40} {:>9} {:>7} {:<16} {:<16}",
            "TOPIC", "PARTITION", "LEADER", "REPLICAS", "ISR"
        );
        for (topic, p) in list.iter() {
            let leader = if p.leader >= 0 {
                p.leader.to_string()
            } else {
                "-".into()
            };
            println!(
                "{topic:<40} {:>9} {leader:>7} {:<16} {:<16}",
                p.index,
                ids(&p.replicas),
                ids(&p.isr)
            );
        }
    }
    Ok(())
}
