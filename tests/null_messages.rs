//! Responses that succeed carry a null error message, as Kafka's do (the codec's default is
//! the empty string, which clients print as an error text); refusals carry a real one.

mod common;

use common::raw::call;
use common::Broker;
use kafka_protocol::messages::alter_configs_request::{AlterConfigsResource, AlterableConfig};
use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::incremental_alter_configs_request::{
    AlterConfigsResource as IncrementalResource, AlterableConfig as IncrementalConfig,
};
use kafka_protocol::messages::{
    AlterConfigsRequest, AlterConfigsResponse, ApiKey, CreateTopicsRequest, CreateTopicsResponse,
    DescribeConfigsRequest, DescribeConfigsResponse, IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse,
    TopicName,
};
use kafka_protocol::protocol::StrBytes;

const RESOURCE_TOPIC: i8 = 2;

fn name(text: &str) -> StrBytes {
    StrBytes::from_string(text.to_string())
}

#[test]
fn successes_carry_null_messages_and_refusals_real_ones() {
    let broker = Broker::start();
    let create = CreateTopicsRequest::default().with_timeout_ms(10_000).with_topics(vec![
        CreatableTopic::default()
            .with_name(TopicName(name("fresh")))
            .with_num_partitions(1)
            .with_replication_factor(1),
        CreatableTopic::default()
            .with_name(TopicName(name("bad name!")))
            .with_num_partitions(1)
            .with_replication_factor(1),
    ]);
    let created: CreateTopicsResponse = call(&broker, ApiKey::CreateTopics, 5, &create);
    assert_eq!(created.topics[0].error_code, 0);
    assert_eq!(created.topics[0].error_message, None, "success: null message");
    assert_ne!(created.topics[1].error_code, 0);
    assert!(created.topics[1].error_message.as_ref().is_some_and(|m| !m.is_empty()));

    let describe = DescribeConfigsRequest::default().with_resources(vec![DescribeConfigsResource::default()
        .with_resource_type(RESOURCE_TOPIC)
        .with_resource_name(name("fresh"))
        .with_configuration_keys(None)]);
    let described: DescribeConfigsResponse = call(&broker, ApiKey::DescribeConfigs, 4, &describe);
    assert_eq!(described.results[0].error_code, 0);
    assert_eq!(described.results[0].error_message, None);

    let alter = AlterConfigsRequest::default().with_resources(vec![AlterConfigsResource::default()
        .with_resource_type(RESOURCE_TOPIC)
        .with_resource_name(name("fresh"))
        .with_configs(vec![AlterableConfig::default()
            .with_name(name("retention.ms"))
            .with_value(Some(name("60000")))])]);
    let altered: AlterConfigsResponse = call(&broker, ApiKey::AlterConfigs, 2, &alter);
    assert_eq!(altered.responses[0].error_code, 0);
    assert_eq!(altered.responses[0].error_message, None);

    let incremental = IncrementalAlterConfigsRequest::default().with_resources(vec![IncrementalResource::default()
        .with_resource_type(RESOURCE_TOPIC)
        .with_resource_name(name("fresh"))
        .with_configs(vec![IncrementalConfig::default()
            .with_name(name("retention.ms"))
            .with_config_operation(0)
            .with_value(Some(name("120000")))])]);
    let changed: IncrementalAlterConfigsResponse = call(&broker, ApiKey::IncrementalAlterConfigs, 1, &incremental);
    assert_eq!(changed.responses[0].error_code, 0);
    assert_eq!(changed.responses[0].error_message, None);
}
