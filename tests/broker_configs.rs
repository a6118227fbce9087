//! Broker and group configs (issue 10, point 6): the broker's configs under Kafka's names
//! with sources and read-only flags; dynamic topic defaults, per broker and for every broker,
//! applied to running topics at once and kept across a restart; group configs reaching the
//! consumer-protocol heartbeat; `min.insync.replicas` enforced. librdkafka and kafka-python
//! drive it; the raw protocol shows what librdkafka's admin API cannot address (the resource
//! named "" and the heartbeat's interval).

mod common;

use std::time::Duration;

use common::{block_on, raw, Broker};
use kafka_protocol::messages::consumer_group_heartbeat_request::ConsumerGroupHeartbeatRequest;
use kafka_protocol::messages::consumer_group_heartbeat_response::ConsumerGroupHeartbeatResponse;
use kafka_protocol::messages::describe_configs_request::{DescribeConfigsRequest, DescribeConfigsResource};
use kafka_protocol::messages::describe_configs_response::DescribeConfigsResponse;
use kafka_protocol::messages::incremental_alter_configs_request::{
    AlterConfigsResource, AlterableConfig, IncrementalAlterConfigsRequest,
};
use kafka_protocol::messages::incremental_alter_configs_response::IncrementalAlterConfigsResponse;
use kafka_protocol::messages::{ApiKey, GroupId, TopicName};
use kafka_protocol::protocol::StrBytes;
use rdkafka::admin::{AdminOptions, AlterConfig, ConfigSource, ResourceSpecifier};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{FutureProducer, FutureRecord};

const BROKER: i8 = 4;
const GROUP: i8 = 32;
const SET: i8 = 0;

fn future_producer(broker: &Broker, extra: &[(&str, &str)]) -> FutureProducer {
    let mut config = broker.client_config();
    config.set("linger.ms", "0").set("message.timeout.ms", "10000");
    for (key, value) in extra {
        config.set(*key, *value);
    }
    config.create().expect("producer")
}

/// Produces one record of `bytes` bytes; the broker's error code when it is refused.
fn produce(producer: &FutureProducer, topic: &str, bytes: usize) -> Result<(), RDKafkaErrorCode> {
    let payload = vec![b'x'; bytes];
    block_on(producer.send(FutureRecord::<(), _>::to(topic).payload(&payload), Duration::ZERO))
        .map(|_| ())
        .map_err(|(error, _)| match error {
            KafkaError::MessageProduction(code) => code,
            other => panic!("unexpected produce error {other}"),
        })
}

/// Every entry librdkafka's DescribeConfigs returns for `resource`, by name.
fn describe(
    broker: &Broker,
    resource: ResourceSpecifier<'_>,
) -> std::collections::HashMap<String, rdkafka::admin::ConfigEntry> {
    let results = block_on(broker.admin().describe_configs([&resource], &AdminOptions::new())).expect("describe");
    let described = results.into_iter().next().unwrap().expect("resource described");
    described.entries.into_iter().map(|e| (e.name.clone(), e)).collect()
}

fn incremental(broker: &Broker, resource_type: i8, name: &str, key: &str, value: &str) -> (i16, Option<String>) {
    let request = IncrementalAlterConfigsRequest::default().with_resources(vec![AlterConfigsResource::default()
        .with_resource_type(resource_type)
        .with_resource_name(StrBytes::from_string(name.to_string()))
        .with_configs(vec![AlterableConfig::default()
            .with_name(StrBytes::from_string(key.to_string()))
            .with_config_operation(SET)
            .with_value(Some(StrBytes::from_string(value.to_string())))])]);
    let answer: IncrementalAlterConfigsResponse = raw::call(broker, ApiKey::IncrementalAlterConfigs, 1, &request);
    let result = &answer.responses[0];
    (result.error_code, result.error_message.as_ref().map(|m| m.to_string()))
}

/// librdkafka: the broker's configs under Kafka's names; `message.max.bytes` changed on the
/// broker reaches a running topic at once (a larger record is refused), spares a topic that
/// sets its own, and is still in force after a restart.
#[test]
fn broker_configs_describe_and_dynamic_defaults_apply_live_and_persist() {
    let mut broker = Broker::start_with_config("\"num.partitions\" = 3\n");
    broker.create_topic("plain", 1);
    broker.create_topic_with("own-limit", 1, &[("max.message.bytes", "100000")]);

    let configs = describe(&broker, ResourceSpecifier::Broker(0));
    for name in [
        "advertised.listeners",
        "listeners",
        "node.id",
        "num.partitions",
        "log.retention.ms",
        "log.segment.bytes",
        "auto.create.topics.enable",
        "message.max.bytes",
    ] {
        assert!(configs.contains_key(name), "{name} not described: {:?}", configs.keys());
    }
    assert_eq!(
        configs["advertised.listeners"].value.as_deref(),
        Some(format!("PLAINTEXT://{}", broker.addr).as_str())
    );
    let partitions = &configs["num.partitions"];
    assert_eq!(partitions.value.as_deref(), Some("3"));
    assert!(partitions.is_read_only);
    assert!(
        matches!(partitions.source, ConfigSource::StaticBroker),
        "{partitions:?}"
    );
    let max = &configs["message.max.bytes"];
    assert!(!max.is_read_only);
    assert!(matches!(max.source, ConfigSource::Default), "{max:?}");

    let producer = future_producer(&broker, &[]);
    assert_eq!(produce(&producer, "plain", 2000), Ok(()));
    let alter = AlterConfig::new(ResourceSpecifier::Broker(0)).set("message.max.bytes", "1000");
    let altered = block_on(broker.admin().alter_configs([&alter], &AdminOptions::new())).expect("alter");
    assert!(altered[0].is_ok(), "{altered:?}");
    assert_eq!(
        produce(&producer, "plain", 2000),
        Err(RDKafkaErrorCode::MessageSizeTooLarge)
    );
    assert_eq!(produce(&producer, "plain", 500), Ok(()));
    assert_eq!(
        produce(&producer, "own-limit", 2000),
        Ok(()),
        "a topic's own value wins"
    );
    let topic = describe(&broker, ResourceSpecifier::Topic("plain"));
    assert_eq!(topic["max.message.bytes"].value.as_deref(), Some("1000"));
    assert!(
        matches!(topic["max.message.bytes"].source, ConfigSource::DynamicBroker),
        "{:?}",
        topic["max.message.bytes"]
    );
    drop(producer);

    broker.restart();
    let configs = describe(&broker, ResourceSpecifier::Broker(0));
    assert_eq!(configs["message.max.bytes"].value.as_deref(), Some("1000"));
    assert!(matches!(
        configs["message.max.bytes"].source,
        ConfigSource::DynamicBroker
    ));
    let producer = future_producer(&broker, &[]);
    assert_eq!(
        produce(&producer, "plain", 2000),
        Err(RDKafkaErrorCode::MessageSizeTooLarge)
    );
}

/// The resource named "" sets a default for every broker: it is what that resource
/// describes (and nothing else), a topic shows it as the dynamic default, and this broker's
/// own value wins over it.
#[test]
fn cluster_wide_defaults_sit_below_the_brokers_own() {
    let broker = Broker::start();
    broker.create_topic("t", 1);
    assert_eq!(
        incremental(&broker, BROKER, "", "log.retention.ms", "5000000"),
        (0, None)
    );
    let request = DescribeConfigsRequest::default()
        .with_include_synonyms(true)
        .with_resources(vec![DescribeConfigsResource::default()
            .with_resource_type(BROKER)
            .with_resource_name(StrBytes::from_static_str(""))
            .with_configuration_keys(None)]);
    let answer: DescribeConfigsResponse = raw::call(&broker, ApiKey::DescribeConfigs, 4, &request);
    let configs = &answer.results[0].configs;
    assert_eq!(configs.len(), 1, "{configs:?}");
    assert_eq!(configs[0].name.as_str(), "log.retention.ms");
    assert_eq!(configs[0].config_source, 3, "DYNAMIC_DEFAULT_BROKER_CONFIG");

    let topic = describe(&broker, ResourceSpecifier::Topic("t"));
    assert_eq!(topic["retention.ms"].value.as_deref(), Some("5000000"));
    assert!(matches!(
        topic["retention.ms"].source,
        ConfigSource::DynamicDefaultBroker
    ));
    assert_eq!(
        incremental(&broker, BROKER, "0", "log.retention.ms", "7000000"),
        (0, None)
    );
    let topic = describe(&broker, ResourceSpecifier::Topic("t"));
    assert_eq!(topic["retention.ms"].value.as_deref(), Some("7000000"));
    assert!(matches!(topic["retention.ms"].source, ConfigSource::DynamicBroker));

    let (code, message) = incremental(&broker, BROKER, "7", "log.retention.ms", "1");
    assert_eq!(code, 42, "another broker's id is INVALID_REQUEST");
    assert!(message.unwrap().contains("Unexpected broker id"));
    let (code, message) = incremental(&broker, BROKER, "", "listeners", "PLAINTEXT://0.0.0.0:1");
    assert_eq!(code, 42, "read-only is INVALID_REQUEST");
    assert!(message.unwrap().contains("listeners"));
}

/// A group's own `consumer.heartbeat.interval.ms` is what the consumer-protocol heartbeat
/// tells its members; another group keeps the broker's.
#[test]
fn group_configs_reach_the_consumer_heartbeat() {
    let broker = Broker::start();
    broker.create_topic("g-topic", 2);
    assert_eq!(
        incremental(&broker, GROUP, "tuned", "consumer.heartbeat.interval.ms", "7000"),
        (0, None)
    );
    let heartbeat = |group: &str| {
        let request = ConsumerGroupHeartbeatRequest::default()
            .with_group_id(GroupId(StrBytes::from_string(group.to_string())))
            .with_member_id(StrBytes::from_string(uuid::Uuid::new_v4().to_string()))
            .with_member_epoch(0)
            .with_rebalance_timeout_ms(30_000)
            .with_subscribed_topic_names(Some(vec![TopicName(StrBytes::from_static_str("g-topic"))]))
            .with_topic_partitions(Some(Vec::new()));
        let answer: ConsumerGroupHeartbeatResponse = raw::call(&broker, ApiKey::ConsumerGroupHeartbeat, 0, &request);
        assert_eq!(answer.error_code, 0, "{answer:?}");
        answer.heartbeat_interval_ms
    };
    assert_eq!(heartbeat("tuned"), 7000);
    assert_eq!(heartbeat("untuned"), 5000);
}

/// acks=all is refused with NOT_ENOUGH_REPLICAS on a topic asking for more in-sync replicas
/// than a single node has; acks=1 is not.
#[test]
fn min_insync_replicas_refuses_acks_all_beyond_one_node() {
    let broker = Broker::start();
    broker.create_topic_with("strict", 1, &[("min.insync.replicas", "2")]);
    let all = future_producer(
        &broker,
        &[("acks", "all"), ("retries", "0"), ("enable.idempotence", "false")],
    );
    assert_eq!(produce(&all, "strict", 10), Err(RDKafkaErrorCode::NotEnoughReplicas));
    let one = future_producer(&broker, &[("acks", "1")]);
    assert_eq!(produce(&one, "strict", 10), Ok(()));
}

/// kafka-python's config admin: describe with sources and synonyms, its dynamic filter,
/// incremental alters of broker, topic and group configs, refusals by name, every Kafka 4.2
/// topic config (tests/python/configs.py).
#[test]
fn kafka_python_config_admin() {
    let broker = Broker::start_with_config("\"num.partitions\" = 3\n");
    broker.create_topic("py-configs", 1);
    common::run_python("configs.py", &[broker.addr.as_str(), "py-configs", "py-group"]);
}
