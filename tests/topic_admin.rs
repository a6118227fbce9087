//! Topic administration through librdkafka's admin API, including the error cases, and
//! topic auto-creation switched on and off in the broker's config file.

mod common;

use std::time::Duration;

use common::{block_on, Broker};
use rdkafka::admin::{
    AdminOptions, AlterConfig, ConfigSource, NewPartitions, NewTopic, ResourceSpecifier, TopicReplication,
};
use rdkafka::error::RDKafkaErrorCode;
use rdkafka::producer::Producer;

/// The outcome of the first (only) topic of an admin request.
fn first(results: Vec<rdkafka::admin::TopicResult>) -> Result<(), RDKafkaErrorCode> {
    let result = results.into_iter().next().expect("one result");
    result.map(|_| ()).map_err(|(_, code)| code)
}

fn create(broker: &Broker, topic: NewTopic<'_>) -> Result<(), RDKafkaErrorCode> {
    first(block_on(broker.admin().create_topics([&topic], &AdminOptions::new())).expect("request"))
}

fn partitions_of(broker: &Broker, topic: &str) -> usize {
    let producer = broker.producer(&[]);
    let metadata = producer
        .client()
        .fetch_metadata(Some(topic), common::WAIT)
        .expect("metadata");
    let found = &metadata.topics()[0];
    assert!(found.error().is_none(), "{topic}: {:?}", found.error());
    found.partitions().len()
}

/// The value of `key` and where it comes from, as librdkafka names the source.
fn config_value(broker: &Broker, topic: &str, key: &str) -> (Option<String>, String) {
    let results = block_on(
        broker
            .admin()
            .describe_configs([&ResourceSpecifier::Topic(topic)], &AdminOptions::new()),
    )
    .expect("describe");
    let resource = results.into_iter().next().unwrap().expect("topic described");
    let entry = resource.get(key).unwrap_or_else(|| panic!("{key} not described"));
    (entry.value.clone(), format!("{:?}", entry.source))
}

#[test]
fn create_describe_alter_grow_and_delete_topics() {
    let broker = Broker::start();
    create(
        &broker,
        NewTopic::new("events", 2, TopicReplication::Fixed(1)).set("retention.ms", "60000"),
    )
    .unwrap();
    assert_eq!(partitions_of(&broker, "events"), 2);

    // Error cases of creation.
    let exists = create(&broker, NewTopic::new("events", 2, TopicReplication::Fixed(1)));
    assert_eq!(exists, Err(RDKafkaErrorCode::TopicAlreadyExists));
    let bad_name = create(&broker, NewTopic::new("bad name!", 1, TopicReplication::Fixed(1)));
    assert_eq!(bad_name, Err(RDKafkaErrorCode::InvalidTopic));
    let bad_partitions = create(&broker, NewTopic::new("zero", 0, TopicReplication::Fixed(1)));
    assert_eq!(bad_partitions, Err(RDKafkaErrorCode::InvalidPartitions));
    let bad_replication = create(&broker, NewTopic::new("replicated", 1, TopicReplication::Fixed(3)));
    assert_eq!(bad_replication, Err(RDKafkaErrorCode::InvalidReplicationFactor));
    let bad_config = create(
        &broker,
        NewTopic::new("configured", 1, TopicReplication::Fixed(1)).set("retention.ms", "soon"),
    );
    assert_eq!(bad_config, Err(RDKafkaErrorCode::InvalidConfig));
    let unknown_config = create(
        &broker,
        NewTopic::new("configured", 1, TopicReplication::Fixed(1)).set("no.such", "1"),
    );
    assert_eq!(unknown_config, Err(RDKafkaErrorCode::InvalidConfig));

    // Configs: the override is reported as set on the topic, the rest as defaults.
    let (value, source) = config_value(&broker, "events", "retention.ms");
    assert_eq!(
        (value.as_deref(), source),
        (Some("60000"), format!("{:?}", ConfigSource::DynamicTopic))
    );
    let (value, source) = config_value(&broker, "events", "segment.bytes");
    assert_eq!(
        (value.as_deref(), source),
        (Some("1073741824"), format!("{:?}", ConfigSource::Default))
    );
    let missing = block_on(
        broker
            .admin()
            .describe_configs([&ResourceSpecifier::Topic("missing")], &AdminOptions::new()),
    )
    .unwrap();
    // The rdkafka crate drops per-resource describe errors; the error code itself is checked
    // over the raw protocol in tests/raw_protocol.rs. Here: nothing is described.
    assert_eq!(
        missing[0].as_ref().map(|r| r.entries.len()),
        Ok(0),
        "a missing topic has no configs"
    );

    let alter = AlterConfig::new(ResourceSpecifier::Topic("events")).set("segment.bytes", "1048576");
    let altered = block_on(broker.admin().alter_configs([&alter], &AdminOptions::new())).unwrap();
    assert!(altered[0].is_ok(), "{altered:?}");
    assert_eq!(
        config_value(&broker, "events", "segment.bytes").0.as_deref(),
        Some("1048576")
    );
    // AlterConfigs replaces the whole set: retention.ms went back to its default.
    assert_eq!(
        config_value(&broker, "events", "retention.ms").1,
        format!("{:?}", ConfigSource::Default)
    );
    let bad_alter = AlterConfig::new(ResourceSpecifier::Topic("events")).set("segment.bytes", "12");
    block_on(broker.admin().alter_configs([&bad_alter], &AdminOptions::new())).unwrap();
    // The crate reports every alter as Ok; the refusal shows as the value left unchanged (the
    // INVALID_CONFIG code is checked in tests/raw_protocol.rs).
    assert_eq!(
        config_value(&broker, "events", "segment.bytes").0.as_deref(),
        Some("1048576")
    );

    // Growing partitions.
    let grow = |topic: &str, count: usize| {
        let request = NewPartitions::new(topic, count);
        first(block_on(broker.admin().create_partitions([&request], &AdminOptions::new())).unwrap())
    };
    grow("events", 4).unwrap();
    assert_eq!(partitions_of(&broker, "events"), 4);
    assert_eq!(grow("events", 3), Err(RDKafkaErrorCode::InvalidPartitions));
    assert_eq!(grow("missing", 3), Err(RDKafkaErrorCode::UnknownTopicOrPartition));

    // Deletion removes the data; the name can be used again.
    let deleted = block_on(
        broker
            .admin()
            .delete_topics(&["events", "missing"], &AdminOptions::new()),
    )
    .unwrap();
    assert!(deleted[0].is_ok(), "{deleted:?}");
    assert_eq!(
        deleted[1].as_ref().unwrap_err().1,
        RDKafkaErrorCode::UnknownTopicOrPartition
    );
    assert!(!broker.data_dir().join("events-0").exists(), "partition data removed");
    create(&broker, NewTopic::new("events", 1, TopicReplication::Fixed(1))).unwrap();
    assert_eq!(partitions_of(&broker, "events"), 1);
}

#[test]
fn auto_create_uses_num_partitions_when_enabled() {
    let broker = Broker::start_with_config("\"num.partitions\" = 3\n\"auto.create.topics.enable\" = true\n");
    assert_eq!(partitions_of(&broker, "created-on-demand"), 3);
    assert!(broker.data_dir().join("created-on-demand-2").exists());
}

#[test]
fn auto_create_off_reports_unknown_topic() {
    let broker = Broker::start_with_config("\"auto.create.topics.enable\" = false\n");
    let producer = broker.producer(&[]);
    let metadata = producer
        .client()
        .fetch_metadata(Some("not-there"), Duration::from_secs(10))
        .expect("metadata");
    assert_eq!(
        metadata.topics()[0].error().map(RDKafkaErrorCode::from),
        Some(RDKafkaErrorCode::UnknownTopicOrPartition)
    );
    assert!(!broker.data_dir().join("not-there-0").exists());
}
