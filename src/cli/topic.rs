//! `sluice topic create|list|describe|alter|delete`: topic administration over the Kafka
//! protocol (CreateTopics, Metadata, ListOffsets, DescribeConfigs, IncrementalAlterConfigs,
//! DeleteTopics), so it works against any Kafka-compatible broker. A refusal prints the
//! broker's error code name and message and the command exits non-zero.

use anyhow::Context;
use clap::{Args, Subcommand};
use kafka_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
use kafka_protocol::messages::delete_topics_request::DeleteTopicState;
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::incremental_alter_configs_request::{AlterConfigsResource, AlterableConfig};
use kafka_protocol::messages::{
    CreateTopicsRequest, DeleteTopicsRequest, DescribeConfigsRequest, IncrementalAlterConfigsRequest,
};
use kafka_protocol::protocol::StrBytes;

use crate::cli::client::{self, check, list_offsets, topic_name, Brokers, Client, TopicInfo};
use crate::cli::key_value;

const CREATE_TOPICS_VERSION: i16 = 7;
const DELETE_TOPICS_VERSION: i16 = 6;
const DESCRIBE_CONFIGS_VERSION: i16 = 4;
const INCREMENTAL_ALTER_CONFIGS_VERSION: i16 = 1;
/// How long the broker may take to create or delete a topic.
const ADMIN_TIMEOUT_MS: i32 = 30_000;
/// The resource type of a topic in DescribeConfigs and IncrementalAlterConfigs.
const RESOURCE_TOPIC: i8 = 2;
/// IncrementalAlterConfigs operations.
const OPERATION_SET: i8 = 0;
const OPERATION_DELETE: i8 = 1;

#[derive(Args, Debug)]
pub struct TopicArgs {
    /// A broker to start from.
    #[arg(
        long,
        short = 'b',
        global = true,
        default_value = "127.0.0.1:9092",
        value_name = "HOST:PORT"
    )]
    bootstrap: String,
    #[command(subcommand)]
    command: TopicCommand,
}

#[derive(Subcommand, Debug)]
enum TopicCommand {
    /// Create a topic.
    Create {
        name: String,
        /// Partitions (default: the broker's num.partitions).
        #[arg(long, default_value_t = -1, allow_hyphen_values = true)]
        partitions: i32,
        /// Replicas of each partition (default: the broker's default.replication.factor).
        #[arg(long, default_value_t = -1, allow_hyphen_values = true)]
        replication_factor: i16,
        /// A topic config, e.g. `--config retention.ms=3600000`; may be repeated.
        #[arg(long = "config", value_name = "KEY=VALUE", value_parser = key_value)]
        configs: Vec<(String, String)>,
    },
    /// Every topic with its partition count.
    List,
    /// Per partition: leader, replicas, in-sync replicas, log start and end offsets; then the
    /// topic's configs.
    Describe { name: String },
    /// Set (`--config`) or remove (`--delete-config`) topic configs, leaving the others as
    /// they are (IncrementalAlterConfigs).
    Alter {
        name: String,
        #[arg(long = "config", value_name = "KEY=VALUE", value_parser = key_value)]
        configs: Vec<(String, String)>,
        /// A config to return to its default; may be repeated.
        #[arg(long = "delete-config", value_name = "KEY")]
        deletes: Vec<String>,
    },
    /// Delete a topic and its records.
    Delete { name: String },
}

pub fn run(args: TopicArgs) -> anyhow::Result<()> {
    let mut client = Client::connect(&args.bootstrap)?;
    match args.command {
        TopicCommand::Create {
            name,
            partitions,
            replication_factor,
            configs,
        } => create(&mut client, &name, partitions, replication_factor, &configs),
        TopicCommand::List => list(&mut client),
        TopicCommand::Describe { name } => describe(&mut client, &name),
        TopicCommand::Alter { name, configs, deletes } => alter(&mut client, &name, &configs, &deletes),
        TopicCommand::Delete { name } => delete(&mut client, &name),
    }
}

fn str_bytes(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_string())
}

fn create(
    client: &mut Client,
    name: &str,
    partitions: i32,
    replication_factor: i16,
    configs: &[(String, String)],
) -> anyhow::Result<()> {
    let request = CreateTopicsRequest::default()
        .with_timeout_ms(ADMIN_TIMEOUT_MS)
        .with_topics(vec![CreatableTopic::default()
            .with_name(topic_name(name))
            .with_num_partitions(partitions)
            .with_replication_factor(replication_factor)
            .with_configs(
                configs
                    .iter()
                    .map(|(key, value)| {
                        CreatableTopicConfig::default()
                            .with_name(str_bytes(key))
                            .with_value(Some(str_bytes(value)))
                    })
                    .collect(),
            )]);
    let response = client.call(CREATE_TOPICS_VERSION, &request)?;
    let result = response
        .topics
        .into_iter()
        .next()
        .context("CreateTopics answered no topic")?;
    check(
        result.error_code,
        result.error_message.as_ref(),
        format_args!("creating topic {name}"),
    )?;
    println!(
        "created topic {name}: {} partitions, replication factor {}",
        result.num_partitions, result.replication_factor
    );
    Ok(())
}

fn list(client: &mut Client) -> anyhow::Result<()> {
    let mut topics = client::metadata(client, None, false)?;
    topics.sort_by(|a, b| a.name.cmp(&b.name));
    println!("{:<50} {:>10}", "TOPIC", "PARTITIONS");
    for topic in topics {
        let internal = if topic.internal { "  (internal)" } else { "" };
        println!("{:<50} {:>10}{internal}", topic.name, topic.partitions.len());
    }
    Ok(())
}

fn describe(client: &mut Client, name: &str) -> anyhow::Result<()> {
    let topic = described_topic(client, name)?;
    let internal = if topic.internal { ", internal" } else { "" };
    println!(
        "topic {name}: {} partitions, id {}{internal}",
        topic.partitions.len(),
        topic.id
    );

    let mut brokers = Brokers::default();
    let led: Vec<i32> = topic
        .partitions
        .iter()
        .filter(|p| topic.brokers.contains_key(&p.leader))
        .map(|p| p.index)
        .collect();
    let starts = list_offsets(&mut brokers, &topic, &led, -2)?;
    let ends = list_offsets(&mut brokers, &topic, &led, -1)?;
    println!(
        "{:>9} {:>7} {:<16} {:<16} {:>14} {:>14}",
        "PARTITION", "LEADER", "REPLICAS", "ISR", "LOG-START", "LOG-END"
    );
    let dash = || "-".to_string();
    for p in &topic.partitions {
        let leader = if p.leader >= 0 { p.leader.to_string() } else { dash() };
        let start = starts.get(&p.index).map_or_else(dash, i64::to_string);
        let end = ends.get(&p.index).map_or_else(dash, i64::to_string);
        println!(
            "{:>9} {leader:>7} {:<16} {:<16} {start:>14} {end:>14}",
            p.index,
            ids(&p.replicas),
            ids(&p.isr)
        );
    }

    let request = DescribeConfigsRequest::default()
        .with_include_synonyms(false)
        .with_include_documentation(false)
        .with_resources(vec![DescribeConfigsResource::default()
            .with_resource_type(RESOURCE_TOPIC)
            .with_resource_name(str_bytes(name))
            .with_configuration_keys(None)]);
    let response = client.call(DESCRIBE_CONFIGS_VERSION, &request)?;
    let result = response
        .results
        .into_iter()
        .next()
        .context("DescribeConfigs answered no resource")?;
    check(
        result.error_code,
        result.error_message.as_ref(),
        format_args!("describing the configs of {name}"),
    )?;
    println!("configs:");
    let mut configs = result.configs;
    configs.sort_by(|a, b| a.name.cmp(&b.name));
    for config in configs {
        let value = match (&config.value, config.is_sensitive) {
            (_, true) => "(sensitive)",
            (Some(value), false) => value.as_str(),
            (None, false) => "(null)",
        };
        println!(
            "  {}={value}  ({})",
            config.name.as_str(),
            source_name(config.config_source)
        );
    }
    Ok(())
}

/// The topic's metadata; an error if the broker does not know it.
fn described_topic(client: &mut Client, name: &str) -> anyhow::Result<TopicInfo> {
    let topic = client::metadata(client, Some(&[name]), false)?
        .pop()
        .with_context(|| format!("no metadata for topic {name}"))?;
    check(topic.error_code, None, format_args!("topic {name}"))?;
    Ok(topic)
}

/// Broker ids as `1,2,3`.
pub(super) fn ids(ids: &[i32]) -> String {
    let joined: Vec<String> = ids.iter().map(i32::to_string).collect();
    if joined.is_empty() {
        "-".into()
    } else {
        joined.join(",")
    }
}

/// Where a config's value comes from, as DescribeConfigs numbers it.
fn source_name(source: i8) -> &'static str {
    match source {
        1 => "topic",
        2 => "broker",
        3 => "broker default",
        4 => "broker config file",
        5 => "default",
        _ => "unknown source",
    }
}

fn alter(client: &mut Client, name: &str, configs: &[(String, String)], deletes: &[String]) -> anyhow::Result<()> {
    anyhow::ensure!(
        !configs.is_empty() || !deletes.is_empty(),
        "nothing to alter: give --config KEY=VALUE or --delete-config KEY"
    );
    let sets = configs.iter().map(|(key, value)| {
        AlterableConfig::default()
            .with_name(str_bytes(key))
            .with_config_operation(OPERATION_SET)
            .with_value(Some(str_bytes(value)))
    });
    let removals = deletes.iter().map(|key| {
        AlterableConfig::default()
            .with_name(str_bytes(key))
            .with_config_operation(OPERATION_DELETE)
            .with_value(None)
    });
    let request = IncrementalAlterConfigsRequest::default().with_resources(vec![AlterConfigsResource::default()
        .with_resource_type(RESOURCE_TOPIC)
        .with_resource_name(str_bytes(name))
        .with_configs(sets.chain(removals).collect())]);
    let response = client.call(INCREMENTAL_ALTER_CONFIGS_VERSION, &request)?;
    let result = response
        .responses
        .into_iter()
        .next()
        .context("IncrementalAlterConfigs answered no resource")?;
    check(
        result.error_code,
        result.error_message.as_ref(),
        format_args!("altering the configs of {name}"),
    )?;
    for (key, value) in configs {
        println!("{name}: {key}={value}");
    }
    for key in deletes {
        println!("{name}: {key} back to its default");
    }
    Ok(())
}

fn delete(client: &mut Client, name: &str) -> anyhow::Result<()> {
    let request = DeleteTopicsRequest::default()
        .with_timeout_ms(ADMIN_TIMEOUT_MS)
        .with_topics(vec![DeleteTopicState::default().with_name(Some(topic_name(name)))]);
    let response = client.call(DELETE_TOPICS_VERSION, &request)?;
    let result = response
        .responses
        .into_iter()
        .next()
        .context("DeleteTopics answered no topic")?;
    check(
        result.error_code,
        result.error_message.as_ref(),
        format_args!("deleting topic {name}"),
    )?;
    println!("deleted topic {name}");
    Ok(())
}
