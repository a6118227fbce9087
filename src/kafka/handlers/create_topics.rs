//! CreateTopics: validate each topic, create it on the metadata authority, and report its
//! id, partition count and effective configs.

use std::collections::BTreeMap;
use std::rc::Rc;

use kafka_protocol::messages::create_topics_request::{CreatableTopic, CreateTopicsRequest};
use kafka_protocol::messages::create_topics_response::{
    CreatableTopicConfigs, CreatableTopicResult, CreateTopicsResponse,
};
use kafka_protocol::messages::ApiKey;

use crate::acl::{Operation, ResourceType};
use crate::error::KafkaCode;
use crate::kafka::context::RequestContext;
use crate::kafka::handlers::{describe_configs, str_bytes, Api};
use crate::metadata::{Refusal, TopicMeta};
use crate::node::authority::{self, Replicas};
use crate::node::Shard;

/// The versions served.
pub const API: Api = Api::new(ApiKey::CreateTopics, 2, 7);

pub async fn handle(ctx: &RequestContext<'_>, request: CreateTopicsRequest) -> CreateTopicsResponse {
    let shard = ctx.shard;
    let version = ctx.api_version;
    let mut results = Vec::with_capacity(request.topics.len());
    let mut seen = std::collections::HashSet::new();
    let access = ctx.access();
    let cluster_create = access.sees(Operation::Create, ResourceType::Cluster, crate::acl::CLUSTER_NAME);
    for topic in request.topics {
        let name = topic.name.0.to_string();
        let result = if !seen.insert(name.clone()) {
            Err(Refusal::new(
                KafkaCode::InvalidRequest,
                format!("Topic '{name}' is listed more than once."),
            ))
        } else if !cluster_create && !access.allows(Operation::Create, ResourceType::Topic, &name) {
            Err(Refusal::new(
                KafkaCode::TopicAuthorizationFailed,
                "Authorization failed.",
            ))
        } else {
            create_one(shard, topic, request.validate_only).await
        };
        results.push(match result {
            Ok((meta, partitions, replication)) => {
                // The configs are shown only to who may describe them.
                let configs_visible = access.sees(Operation::DescribeConfigs, ResourceType::Topic, &name);
                let result = success(shard, version, meta, partitions, replication);
                if configs_visible || version < 5 {
                    result
                } else {
                    result
                        .with_configs(None)
                        .with_topic_config_error_code(KafkaCode::TopicAuthorizationFailed.code())
                }
            }
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

/// The topic created (or that would be), its partition count and replication factor.
async fn create_one(
    shard: &Rc<Shard>,
    topic: CreatableTopic,
    validate_only: bool,
) -> Result<(TopicMeta, i32, i16), Refusal> {
    let name = topic.name.0.to_string();
    let (partitions, replicas) = if !topic.assignments.is_empty() {
        if topic.num_partitions != -1 || topic.replication_factor != -1 {
            return Err(Refusal::new(
                KafkaCode::InvalidRequest,
                "Both numPartitions or replicationFactor and replicasAssignments were set.",
            ));
        }
        let mut assignment: Vec<(i32, Vec<i32>)> = topic
            .assignments
            .iter()
            .map(|a| (a.partition_index, a.broker_ids.iter().map(|b| b.0).collect()))
            .collect();
        assignment.sort_by_key(|(partition, _)| *partition);
        if assignment
            .iter()
            .enumerate()
            .any(|(i, (partition, _))| *partition != i as i32)
        {
            return Err(Refusal::new(
                KafkaCode::InvalidReplicaAssignment,
                "Partitions should be numbered consecutively from 0.",
            ));
        }
        let count = assignment.len() as i32;
        (
            count,
            Replicas::Assigned(assignment.into_iter().map(|(_, brokers)| brokers).collect()),
        )
    } else {
        let partitions = if topic.num_partitions == -1 {
            shard.config.num_partitions
        } else {
            topic.num_partitions
        };
        let factor = (topic.replication_factor != -1).then_some(topic.replication_factor);
        (partitions, Replicas::Factor(factor))
    };
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
    let replication = match &replicas {
        Replicas::Assigned(assignment) => assignment[0].len() as i16,
        Replicas::Factor(Some(factor)) => *factor,
        Replicas::Factor(None) if shard.cluster.is_some() => shard.config.cluster.default_replication_factor,
        Replicas::Factor(None) => 1,
    };
    let meta = if validate_only {
        authority::validate_topic(shard, name, partitions, replicas, overrides).await?
    } else {
        authority::create_topic(shard, name, partitions, replicas, overrides).await?
    };
    Ok((meta, partitions, replication))
}

fn success(
    shard: &Rc<Shard>,
    version: i16,
    meta: TopicMeta,
    partitions: i32,
    replication: i16,
) -> CreatableTopicResult {
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
        .with_num_partitions(partitions)
        .with_replication_factor(replication)
        .with_configs(configs)
}
