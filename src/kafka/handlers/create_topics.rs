//! CreateTopics: validate each topic, create it on the metadata authority, and report its
//! id, partition count and effective configs.

use std::collections::BTreeMap;
use std::rc::Rc;

use kafka_protocol::messages::create_topics_request::{CreatableTopic, CreateTopicsRequest};
use kafka_protocol::messages::create_topics_response::{
    CreatableTopicConfigs, CreatableTopicResult, CreateTopicsResponse,
};
use kafka_protocol::messages::ApiKey;

use crate::error::KafkaCode;
use crate::kafka::context::RequestContext;
use crate::kafka::handlers::{describe_configs, str_bytes, Api};
use crate::metadata::{Refusal, TopicMeta};
use crate::node::authority;
use crate::node::Shard;

/// The versions served.
pub const API: Api = Api::new(ApiKey::CreateTopics, 2, 7);

pub async fn handle(ctx: &RequestContext<'_>, request: CreateTopicsRequest) -> CreateTopicsResponse {
    let shard = ctx.shard;
    let version = ctx.api_version;
    let mut results = Vec::with_capacity(request.topics.len());
    let mut seen = std::collections::HashSet::new();
    for topic in request.topics {
        let name = topic.name.0.to_string();
        let result = if !seen.insert(name.clone()) {
            Err(Refusal::new(
                KafkaCode::InvalidRequest,
                format!("Topic '{name}' is listed more than once."),
            ))
        } else {
            create_one(shard, topic, request.validate_only).await
        };
        results.push(match result {
            Ok(meta) => success(shard, version, meta),
            Err(refusal) => CreatableTopicResult::default()
                .with_name(kafka_protocol::messages::TopicName(str_bytes(name)))
                .with_error_code(refusal.code.code())
                .with_error_message(Some(str_bytes(refusal.message)))
                .with_num_partitions(-1)
                .with_replication_factor(-1),
        });
    }
    CreateTopicsResponse::default().with_topics(results)
}

async fn create_one(shard: &Rc<Shard>, topic: CreatableTopic, validate_only: bool) -> Result<TopicMeta, Refusal> {
    let name = topic.name.0.to_string();
    let partitions = if !topic.assignments.is_empty() {
        if topic.num_partitions != -1 || topic.replication_factor != -1 {
            return Err(Refusal::new(
                KafkaCode::InvalidRequest,
                "Both numPartitions or replicationFactor and replicasAssignments were set.",
            ));
        }
        let node = shard.identity.node_id.0;
        for assignment in &topic.assignments {
            if assignment.broker_ids.iter().any(|b| b.0 != node) || assignment.broker_ids.len() != 1 {
                return Err(Refusal::new(
                    KafkaCode::InvalidReplicaAssignment,
                    format!("Replica assignments must name only broker {node} on this single-node broker."),
                ));
            }
        }
        topic.assignments.len() as i32
    } else if topic.num_partitions == -1 {
        shard.config.num_partitions
    } else {
        topic.num_partitions
    };
    if topic.replication_factor > 1 {
        return Err(Refusal::new(
            KafkaCode::InvalidReplicationFactor,
            format!(
                "Replication factor: {} larger than available brokers: 1.",
                topic.replication_factor
            ),
        ));
    }
    if topic.replication_factor == 0 || topic.replication_factor < -1 {
        return Err(Refusal::new(
            KafkaCode::InvalidReplicationFactor,
            "Replication factor must be larger than 0, or -1 to use the default value.",
        ));
    }
    let mut overrides = BTreeMap::new();
    for config in topic.configs {
        let key = config.name.to_string();
        let Some(value) = config.value else {
            return Err(Refusal::new(
                KafkaCode::InvalidConfig,
                format!("Null value not supported for topic config {key}"),
            ));
        };
        overrides.insert(key, value.to_string());
    }
    if validate_only {
        authority::validate_topic(shard, name, partitions, overrides).await
    } else {
        authority::create_topic(shard, name, partitions, overrides).await
    }
}

fn success(shard: &Rc<Shard>, version: i16, meta: TopicMeta) -> CreatableTopicResult {
    let configs = (version >= 5).then(|| {
        describe_configs::topic_sources(shard, &meta.overrides)
            .into_iter()
            .map(|(name, value, source)| {
                CreatableTopicConfigs::default()
                    .with_name(str_bytes(name))
                    .with_value(value.map(str_bytes))
                    .with_config_source(source)
            })
            .collect()
    });
    // The codec's default message is ""; Kafka answers success with a null one.
    CreatableTopicResult::default()
        .with_error_message(None)
        .with_name(kafka_protocol::messages::TopicName(str_bytes(meta.name)))
        .with_topic_id(meta.id)
        .with_num_partitions(meta.placement.len() as i32)
        .with_replication_factor(1)
        .with_configs(configs)
}
