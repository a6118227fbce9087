//! Metadata: brokers, topics with ids, partitions with their leader. Creates unknown topics
//! when both the broker (`auto.create.topics.enable`) and the request allow it.

use std::collections::BTreeMap;
use std::sync::Arc;

use kafka_protocol::messages::metadata_request::MetadataRequest;
use kafka_protocol::messages::metadata_response::{
    MetadataResponse, MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::ApiKey;
use kafka_protocol::messages::{BrokerId, TopicName};

use crate::acl::{Operation, ResourceType, CLUSTER_NAME};
use crate::error::KafkaCode;
use crate::ids::{NodeId, PartitionId};
use crate::kafka::authorized;
use crate::kafka::context::RequestContext;
use crate::kafka::handlers::{error_code, str_bytes, Api};
use crate::metadata::{topic_name, Topic};
use crate::node::authority;
use crate::node::Shard;

/// The versions served.
pub const API: Api = Api::new(ApiKey::Metadata, 0, 13);

pub async fn handle(ctx: &RequestContext<'_>, request: MetadataRequest) -> MetadataResponse {
    let shard = ctx.shard;
    let version = ctx.api_version;
    let access = ctx.access();
    let topic_operations_asked = version >= 8 && request.include_topic_authorized_operations;
    let cluster_operations = authorized::cluster_when_asked(
        (8..=10).contains(&version) && request.include_cluster_authorized_operations,
        &access,
    );
    let describes = |name: &str| access.allows(Operation::Describe, ResourceType::Topic, name);
    let mut snapshot = shard.metadata();
    let requested = match request.topics {
        None => None,
        Some(topics) if version == 0 && topics.is_empty() => None,
        Some(topics) => Some(topics),
    };
    let topics = match requested {
        None => snapshot
            .topics
            .values()
            .filter(|t| access.sees(Operation::Describe, ResourceType::Topic, &t.meta.name))
            .map(|t| topic_entry(shard, t))
            .collect(),
        Some(wanted) => {
            let auto_create =
                shard.config.auto_create_topics_enable && (version < 4 || request.allow_auto_topic_creation);
            let mut entries = Vec::with_capacity(wanted.len());
            for want in wanted {
                let Some(name) = want.name.as_ref().map(|n| n.0.to_string()) else {
                    entries.push(match snapshot.topic_by_id(want.topic_id) {
                        Some(topic) if !describes(&topic.meta.name) => {
                            error_entry(None, want.topic_id, KafkaCode::TopicAuthorizationFailed)
                        }
                        Some(topic) => topic_entry(shard, topic),
                        None => error_entry(None, want.topic_id, KafkaCode::UnknownTopicId),
                    });
                    continue;
                };
                if !describes(&name) {
                    entries.push(error_entry(
                        Some(name),
                        uuid::Uuid::nil(),
                        KafkaCode::TopicAuthorizationFailed,
                    ));
                    continue;
                }
                if let Some(topic) = snapshot.topic(&name) {
                    entries.push(topic_entry(shard, topic));
                    continue;
                }
                if topic_name::validate(&name).is_err() {
                    entries.push(error_entry(
                        Some(name),
                        uuid::Uuid::nil(),
                        KafkaCode::InvalidTopicException,
                    ));
                    continue;
                }
                if !auto_create {
                    entries.push(error_entry(
                        Some(name),
                        uuid::Uuid::nil(),
                        KafkaCode::UnknownTopicOrPartition,
                    ));
                    continue;
                }
                if !access.sees(Operation::Create, ResourceType::Cluster, CLUSTER_NAME)
                    && !access.allows(Operation::Create, ResourceType::Topic, &name)
                {
                    entries.push(error_entry(
                        Some(name),
                        uuid::Uuid::nil(),
                        KafkaCode::TopicAuthorizationFailed,
                    ));
                    continue;
                }
                let partitions = shard.config.num_partitions;
                match authority::create_topic(
                    shard,
                    name.clone(),
                    partitions,
                    authority::Replicas::Factor(None),
                    BTreeMap::new(),
                )
                .await
                {
                    Ok(_) => tracing::info!("auto-created topic {name} with {partitions} partitions"),
                    Err(refusal) if refusal.code == KafkaCode::TopicAlreadyExists => {}
                    Err(refusal) => {
                        entries.push(error_entry(Some(name), uuid::Uuid::nil(), refusal.code));
                        continue;
                    }
                }
                snapshot = shard.metadata();
                entries.push(match snapshot.topic(&name) {
                    Some(topic) => topic_entry(shard, topic),
                    None => error_entry(Some(name), uuid::Uuid::nil(), KafkaCode::LeaderNotAvailable),
                });
            }
            entries
        }
    };
    let topics = topics
        .into_iter()
        .map(|t: MetadataResponseTopic| {
            if t.error_code != 0 {
                return t;
            }
            let name = t.name.as_ref().map_or("", |n| n.0.as_str()).to_string();
            let operations = authorized::when_asked(topic_operations_asked, &access, ResourceType::Topic, &name);
            t.with_topic_authorized_operations(operations)
        })
        .collect();
    MetadataResponse::default()
        .with_cluster_authorized_operations(cluster_operations)
        .with_brokers(
            shard
                .brokers_on(&ctx.session.listener)
                .into_iter()
                .map(|b| {
                    MetadataResponseBroker::default()
                        .with_node_id(BrokerId(b.id.0))
                        .with_host(str_bytes(b.host))
                        .with_port(i32::from(b.port))
                })
                .collect(),
        )
        .with_cluster_id(Some(str_bytes(snapshot.cluster_id.clone())))
        .with_controller_id(BrokerId(shard.controller_id().0))
        .with_topics(topics)
}

/// Who leads a partition, as Metadata and DescribeTopicPartitions report it.
pub struct Leadership {
    pub error: Option<KafkaCode>,
    pub leader: BrokerId,
    pub replicas: Vec<BrokerId>,
    pub isr: Vec<BrokerId>,
    pub offline: Vec<BrokerId>,
}

/// Who leads `partition` and who holds it, from the metadata. A replica on a broker that is
/// down (fenced or unregistered) is offline, and so is this broker's own when its log was
/// refused as corrupt, as Kafka reports a failed log directory; a partition whose leader is
/// offline, or that has none, answers LEADER_NOT_AVAILABLE.
pub fn leadership(shard: &Shard, topic: &Topic, partition: PartitionId) -> Leadership {
    let me = shard.identity.node_id;
    let Some(state) = topic.partition(partition) else {
        return Leadership {
            error: Some(KafkaCode::UnknownTopicOrPartition),
            leader: BrokerId(-1),
            replicas: Vec::new(),
            isr: Vec::new(),
            offline: Vec::new(),
        };
    };
    let live: Vec<NodeId> = shard.brokers().into_iter().map(|b| b.id).collect();
    let refused_here = shard.is_offline_anywhere(&topic.meta.name, partition);
    let is_offline = |node: &NodeId| !live.contains(node) || (*node == me && refused_here);
    let ids = |nodes: &[NodeId]| nodes.iter().map(|n| BrokerId(n.0)).collect::<Vec<_>>();
    let leader = state.leader.filter(|leader| !is_offline(leader));
    Leadership {
        error: leader.is_none().then_some(KafkaCode::LeaderNotAvailable),
        leader: BrokerId(leader.map_or(-1, |l| l.0)),
        replicas: ids(&state.replicas),
        isr: ids(&state
            .isr
            .iter()
            .copied()
            .filter(|n| !(*n == me && refused_here))
            .collect::<Vec<_>>()),
        offline: state
            .replicas
            .iter()
            .filter(|n| is_offline(n))
            .map(|n| BrokerId(n.0))
            .collect(),
    }
}

fn topic_entry(shard: &Shard, topic: &Arc<Topic>) -> MetadataResponseTopic {
    let partitions = (0..topic.partition_count())
        .map(|p| {
            let led = leadership(shard, topic, PartitionId(p));
            MetadataResponsePartition::default()
                .with_partition_index(p)
                .with_error_code(error_code(led.error))
                .with_leader_id(led.leader)
                .with_leader_epoch(topic.leader_epoch(PartitionId(p)).0)
                .with_replica_nodes(led.replicas)
                .with_isr_nodes(led.isr)
                .with_offline_replicas(led.offline)
        })
        .collect();
    MetadataResponseTopic::default()
        .with_name(Some(TopicName(str_bytes(topic.meta.name.clone()))))
        .with_topic_id(topic.meta.id)
        .with_is_internal(topic.meta.internal)
        .with_partitions(partitions)
}

fn error_entry(name: Option<String>, id: uuid::Uuid, code: KafkaCode) -> MetadataResponseTopic {
    MetadataResponseTopic::default()
        .with_name(name.map(|n| TopicName(str_bytes(n))))
        .with_topic_id(id)
        .with_error_code(code.code())
}
