//! APIs a single node serves for admin tools: DescribeTopicPartitions (paged, KIP-966),
//! DescribeLogDirs, DescribeProducers, ListConfigResources, and authorized-operations fields
//! in Metadata, DescribeCluster and DescribeGroups (everything allowed until ACLs exist).

mod common;

use common::raw::call;
use common::{Broker, WAIT};
use kafka_protocol::messages::describe_log_dirs_request::DescribableLogDirTopic;
use kafka_protocol::messages::describe_producers_request::TopicRequest as ProducersTopic;
use kafka_protocol::messages::describe_topic_partitions_request::{Cursor, TopicRequest};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::{
    ApiKey, DescribeClusterRequest, DescribeClusterResponse, DescribeGroupsRequest, DescribeGroupsResponse,
    DescribeLogDirsRequest, DescribeLogDirsResponse, DescribeProducersRequest, DescribeProducersResponse,
    DescribeTopicPartitionsRequest, DescribeTopicPartitionsResponse, GroupId, ListConfigResourcesRequest,
    ListConfigResourcesResponse, MetadataRequest, MetadataResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use rdkafka::consumer::{CommitMode, Consumer};
use rdkafka::producer::{BaseRecord, Producer};
use rdkafka::TopicPartitionList;

fn topic(name: &str) -> TopicName {
    TopicName(StrBytes::from_string(name.to_string()))
}

/// A topic and partition, or where a cursor points.
type At = (String, i32);

/// (topic, partition) pairs of a page, and its cursor.
fn page(answer: &DescribeTopicPartitionsResponse) -> (Vec<At>, Option<At>) {
    let listed = answer
        .topics
        .iter()
        .flat_map(|t| {
            let name = t.name.as_ref().map(|n| n.0.to_string()).unwrap_or_default();
            t.partitions.iter().map(move |p| (name.clone(), p.partition_index))
        })
        .collect();
    let cursor = answer
        .next_cursor
        .as_ref()
        .map(|c| (c.topic_name.0.to_string(), c.partition_index));
    (listed, cursor)
}

#[test]
fn describe_topic_partitions_pages_with_a_cursor() {
    let broker = Broker::start();
    broker.create_topic("pa", 3);
    broker.create_topic("pb", 2);
    broker.create_topic("pc", 1);
    let request = |cursor: Option<(&str, i32)>| {
        DescribeTopicPartitionsRequest::default()
            .with_topics(
                ["pc", "pa", "pb", "missing"]
                    .iter()
                    .map(|n| TopicRequest::default().with_name(topic(n)))
                    .collect(),
            )
            .with_response_partition_limit(4)
            .with_cursor(cursor.map(|(t, p)| Cursor::default().with_topic_name(topic(t)).with_partition_index(p)))
    };
    let first: DescribeTopicPartitionsResponse = call(&broker, ApiKey::DescribeTopicPartitions, 0, &request(None));
    let (listed, cursor) = page(&first);
    assert_eq!(
        listed,
        vec![("pa".into(), 0), ("pa".into(), 1), ("pa".into(), 2), ("pb".into(), 0)]
    );
    assert_eq!(cursor, Some(("pb".to_string(), 1)));
    assert!(first
        .topics
        .iter()
        .filter(|t| t.error_code == 0)
        .all(|t| t.topic_authorized_operations == 3576));
    // Names sort: the unknown one comes first, answered with its error.
    let missing = &first.topics[0];
    assert_eq!(missing.name.as_ref().map(|n| n.0.as_str()), Some("missing"));
    assert_eq!(missing.error_code, 3, "UNKNOWN_TOPIC_OR_PARTITION");
    let second: DescribeTopicPartitionsResponse =
        call(&broker, ApiKey::DescribeTopicPartitions, 0, &request(Some(("pb", 1))));
    let (listed, cursor) = page(&second);
    assert_eq!(listed, vec![("pb".into(), 1), ("pc".into(), 0)]);
    assert_eq!(cursor, None);
    let leader = &second.topics[0].partitions[0];
    assert_eq!((leader.leader_id.0, leader.isr_nodes.len()), (0, 1));
}

#[test]
fn log_dirs_producers_config_resources_and_authorized_operations() {
    let broker = Broker::start();
    broker.create_topic("sized", 2);
    let producer = broker.producer(&[("enable.idempotence", "true"), ("acks", "all")]);
    for i in 0..100 {
        let value = format!("value-{i}");
        common::send(
            &producer,
            BaseRecord::to("sized")
                .partition(0)
                .payload(value.as_bytes())
                .key(&[][..]),
        );
    }
    producer.flush(WAIT).unwrap();

    // DescribeLogDirs v4: the data dir, partition 0 holding the records, the filesystem size.
    let dirs = DescribeLogDirsRequest::default().with_topics(Some(vec![DescribableLogDirTopic::default()
        .with_topic(topic("sized"))
        .with_partitions(vec![0, 1])]));
    let dirs: DescribeLogDirsResponse = call(&broker, ApiKey::DescribeLogDirs, 4, &dirs);
    let dir = &dirs.results[0];
    assert_eq!(dir.error_code, 0);
    assert!(dir
        .log_dir
        .contains(broker.data_dir().file_name().unwrap().to_str().unwrap()));
    assert!(dir.total_bytes > 0 && dir.usable_bytes > 0 && dir.usable_bytes <= dir.total_bytes);
    let partitions = &dir.topics[0].partitions;
    let size = |p: i32| {
        partitions
            .iter()
            .find(|x| x.partition_index == p)
            .unwrap()
            .partition_size
    };
    assert!(size(0) > 100 * 7, "partition 0 holds the records: {}", size(0));
    assert_eq!(size(1), 0);

    // DescribeProducers: the idempotent producer, its epoch and last sequence.
    let producers = DescribeProducersRequest::default().with_topics(vec![
        ProducersTopic::default()
            .with_name(topic("sized"))
            .with_partition_indexes(vec![0, 1]),
        ProducersTopic::default()
            .with_name(topic("missing"))
            .with_partition_indexes(vec![0]),
    ]);
    let producers: DescribeProducersResponse = call(&broker, ApiKey::DescribeProducers, 0, &producers);
    let p0 = &producers.topics[0].partitions[0];
    assert_eq!(p0.error_code, 0);
    assert_eq!(p0.active_producers.len(), 1);
    assert_eq!(p0.active_producers[0].last_sequence, 99);
    assert!(p0.active_producers[0].producer_id.0 >= 0);
    assert!(producers.topics[0].partitions[1].active_producers.is_empty());
    assert_eq!(producers.topics[1].partitions[0].error_code, 3);

    // ListConfigResources v1: topics, and the broker.
    let list = |types: Vec<i8>| {
        let answer: ListConfigResourcesResponse = call(
            &broker,
            ApiKey::ListConfigResources,
            1,
            &ListConfigResourcesRequest::default().with_resource_types(types),
        );
        assert_eq!(answer.error_code, 0);
        answer
            .config_resources
            .iter()
            .map(|r| (r.resource_type, r.resource_name.to_string()))
            .collect::<Vec<_>>()
    };
    assert!(list(vec![2]).contains(&(2, "sized".to_string())));
    assert_eq!(list(vec![4]), vec![(4, "0".to_string())]);

    // Authorized operations, when asked for and only then.
    let metadata = |asked: bool| {
        let request = MetadataRequest::default()
            .with_topics(Some(vec![
                MetadataRequestTopic::default().with_name(Some(topic("sized")))
            ]))
            .with_include_topic_authorized_operations(asked);
        let answer: MetadataResponse = call(&broker, ApiKey::Metadata, 12, &request);
        answer.topics[0].topic_authorized_operations
    };
    assert_eq!(metadata(true), 3576);
    assert_eq!(metadata(false), i32::MIN);
    let cluster: DescribeClusterResponse = call(
        &broker,
        ApiKey::DescribeCluster,
        1,
        &DescribeClusterRequest::default().with_include_cluster_authorized_operations(true),
    );
    assert_eq!(cluster.cluster_authorized_operations, 8096);
    let consumer = broker.consumer(&[("group.id", "described")]);
    let mut offsets = TopicPartitionList::new();
    offsets
        .add_partition_offset("sized", 0, rdkafka::Offset::Offset(5))
        .unwrap();
    consumer.commit(&offsets, CommitMode::Sync).unwrap();
    let groups: DescribeGroupsResponse = call(
        &broker,
        ApiKey::DescribeGroups,
        5,
        &DescribeGroupsRequest::default()
            .with_groups(vec![GroupId(StrBytes::from_static_str("described"))])
            .with_include_authorized_operations(true),
    );
    assert_eq!(groups.groups[0].authorized_operations, 328);
}
