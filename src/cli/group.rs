//! `sluice group list|describe`: consumer groups over the Kafka protocol.

use std::collections::BTreeMap;

use anyhow::{bail, Context};
use bytes::{Buf, Bytes};
use clap::{Args, Subcommand};
use kafka_protocol::messages::{
    list_offsets_request, offset_fetch_request, BrokerId, DescribeGroupsRequest, FindCoordinatorRequest, GroupId,
    ListGroupsRequest, ListOffsetsRequest, OffsetFetchRequest, TopicName,
};
use kafka_protocol::protocol::StrBytes;

use crate::cli::client::{self, Client};

#[derive(Args, Debug)]
pub struct GroupArgs {
    /// A broker to start from.
    #[arg(long, short = 'b', default_value = "127.0.0.1:9092", value_name = "HOST:PORT")]
    bootstrap: String,
    #[command(subcommand)]
    command: GroupCommand,
}

#[derive(Subcommand, Debug)]
enum GroupCommand {
    /// Every group with its state and protocol type.
    List,
    /// A group's state, members, and each partition's committed offset, end and lag.
    Describe { group: String },
}

pub fn run(args: GroupArgs) -> anyhow::Result<()> {
    let mut client = Client::connect(&args.bootstrap)?;
    match args.command {
        GroupCommand::List => list(&mut client),
        GroupCommand::Describe { group } => describe(&args.bootstrap, &mut client, &group),
    }
}

fn check(code: i16, what: &str) -> anyhow::Result<()> {
    client::check(code, None, what)
}

fn list(client: &mut Client) -> anyhow::Result<()> {
    let response = client.call(4, &ListGroupsRequest::default())?;
    check(response.error_code, "ListGroups")?;
    println!("{:<40} {:<20} PROTOCOL-TYPE", "GROUP", "STATE");
    for group in response.groups {
        println!(
            "{:<40} {:<20} {}",
            group.group_id.0.as_str(),
            group.group_state.as_str(),
            group.protocol_type.as_str()
        );
    }
    Ok(())
}

fn describe(bootstrap: &str, client: &mut Client, group: &str) -> anyhow::Result<()> {
    let found = client.call(
        3,
        &FindCoordinatorRequest::default().with_key(StrBytes::from_string(group.to_string())),
    )?;
    check(found.error_code, "FindCoordinator")?;
    let coordinator_address = format!("{}:{}", found.host.as_str(), found.port);
    let mut coordinator = if coordinator_address == bootstrap {
        Client::connect(bootstrap)?
    } else {
        Client::connect(&coordinator_address).with_context(|| format!("the coordinator of {group}"))?
    };

    let described = coordinator.call(
        5,
        &DescribeGroupsRequest::default().with_groups(vec![GroupId(StrBytes::from_string(group.to_string()))]),
    )?;
    let info = described
        .groups
        .into_iter()
        .next()
        .context("DescribeGroups answered no group")?;
    check(info.error_code, "DescribeGroups")?;
    let mut owners: BTreeMap<(String, i32), String> = BTreeMap::new();
    for member in &info.members {
        for (topic, partitions) in consumer_assignment(member.member_assignment.clone()) {
            for p in partitions {
                owners.insert(
                    (topic.clone(), p),
                    format!(
                        "{} {} {}",
                        member.member_id.as_str(),
                        member.client_host.as_str(),
                        member.client_id.as_str()
                    ),
                );
            }
        }
    }

    let offsets = coordinator.call(
        7,
        &OffsetFetchRequest::default()
            .with_group_id(GroupId(StrBytes::from_string(group.to_string())))
            .with_topics(None::<Vec<offset_fetch_request::OffsetFetchRequestTopic>>),
    )?;
    check(offsets.error_code, "OffsetFetch")?;
    let mut rows: BTreeMap<(String, i32), i64> = BTreeMap::new();
    for topic in offsets.topics {
        for p in topic.partitions {
            rows.insert((topic.name.0.to_string(), p.partition_index), p.committed_offset);
        }
    }
    // Kafka describes a group it does not know as Dead; one that only has offsets is shown.
    if info.group_state.as_str() == "Dead" && rows.is_empty() {
        bail!("group {group} does not exist");
    }
    println!(
        "group {group}: {} (protocol type {:?}, assignor {:?}, {} members)",
        info.group_state.as_str(),
        info.protocol_type.as_str(),
        info.protocol_data.as_str(),
        info.members.len()
    );
    for key in owners.keys() {
        rows.entry(key.clone()).or_insert(-1);
    }

    let mut by_topic: BTreeMap<String, Vec<i32>> = BTreeMap::new();
    for (topic, p) in rows.keys() {
        by_topic.entry(topic.clone()).or_default().push(*p);
    }
    let request = ListOffsetsRequest::default().with_replica_id(BrokerId(-1)).with_topics(
        by_topic
            .iter()
            .map(|(topic, partitions)| {
                list_offsets_request::ListOffsetsTopic::default()
                    .with_name(TopicName(StrBytes::from_string(topic.clone())))
                    .with_partitions(
                        partitions
                            .iter()
                            .map(|p| {
                                list_offsets_request::ListOffsetsPartition::default()
                                    .with_partition_index(*p)
                                    .with_timestamp(-1)
                            })
                            .collect(),
                    )
            })
            .collect(),
    );
    let ends = client.call(5, &request)?;
    let mut end_of: BTreeMap<(String, i32), i64> = BTreeMap::new();
    for topic in ends.topics {
        for p in topic.partitions {
            end_of.insert((topic.name.0.to_string(), p.partition_index), p.offset);
        }
    }

    println!(
        "{:<30} {:>9} {:>14} {:>14} {:>8}  CONSUMER-ID HOST CLIENT-ID",
        "TOPIC", "PARTITION", "CURRENT-OFFSET", "LOG-END-OFFSET", "LAG"
    );
    for ((topic, partition), committed) in rows {
        let end = end_of.get(&(topic.clone(), partition)).copied().unwrap_or(-1);
        let lag = if committed >= 0 && end >= 0 {
            (end - committed).to_string()
        } else {
            "-".into()
        };
        let current = if committed >= 0 {
            committed.to_string()
        } else {
            "-".into()
        };
        let owner = owners
            .get(&(topic.clone(), partition))
            .cloned()
            .unwrap_or_else(|| "-".into());
        println!("{topic:<30} {partition:>9} {current:>14} {end:>14} {lag:>8}  {owner}");
    }
    Ok(())
}

/// Topics and partitions of a consumer's assignment (ConsumerProtocolAssignment: version,
/// then an array of (topic, array of partitions)); empty for anything else.
fn consumer_assignment(mut bytes: Bytes) -> Vec<(String, Vec<i32>)> {
    let mut out = Vec::new();
    if bytes.remaining() < 6 {
        return out;
    }
    let _version = bytes.get_i16();
    let topics = bytes.get_i32();
    for _ in 0..topics.max(0) {
        if bytes.remaining() < 2 {
            break;
        }
        let length = bytes.get_i16();
        if length < 0 || bytes.remaining() < length as usize + 4 {
            break;
        }
        let topic = String::from_utf8_lossy(&bytes.split_to(length as usize)).into_owned();
        let count = bytes.get_i32();
        if count < 0 || bytes.remaining() < count as usize * 4 {
            break;
        }
        out.push((topic, (0..count).map(|_| bytes.get_i32()).collect()));
    }
    out
}
