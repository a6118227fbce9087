//! In a cluster, the shards' metadata comes from the controller: shard 0 follows the image
//! the cluster thread receives, turns each newer one into a [`MetadataSnapshot`] (this
//! node's shard placement, its configs) and publishes it to every shard, then tells the
//! cluster handle which version every shard has, so a change a client made through this
//! broker is visible here before the client is answered.

use std::cell::Cell;
use std::collections::BTreeMap;
use std::rc::Rc;
use std::sync::Arc;

use crate::cluster::image::{ClusterImage, PartitionRecord, NO_LEADER};
use crate::ids::{LeaderEpoch, NodeId};
use crate::metadata::{MetadataSnapshot, PartitionState, Topic, TopicMeta};
use crate::node::authority::Replicas;
use crate::node::Shard;

/// The shards' view of `image` on a node of `shard_count` shards.
pub fn snapshot_of(
    image: &ClusterImage,
    statics: &crate::config::TopicConfig,
    node: NodeId,
    shard_count: usize,
) -> MetadataSnapshot {
    let defaults = &image.configs.topic_defaults(statics, node.0).unwrap_or_else(|e| {
        tracing::warn!("the cluster's dynamic broker configs: {e}; using the static ones");
        statics.clone()
    });
    let topics: BTreeMap<String, Arc<Topic>> = image
        .topics
        .values()
        .map(|record| {
            let count = record.partitions.len() as i32;
            let meta = TopicMeta {
                name: record.name.clone(),
                id: record.id,
                placement: crate::node::placement::place_topic(record.id, count, shard_count),
                overrides: record.overrides.clone(),
                internal: record.internal,
            };
            let config = defaults.with_overrides(&record.overrides).unwrap_or_else(|e| {
                tracing::warn!("topic {}: {e}; using the defaults", record.name);
                defaults.clone()
            });
            let topic = Topic {
                meta,
                config,
                partitions: record.partitions.iter().map(partition_state).collect(),
            };
            (record.name.clone(), Arc::new(topic))
        })
        .collect();
    MetadataSnapshot::new(
        image.cluster_id.clone(),
        image.version,
        topics,
        defaults.clone(),
        image.configs.clone(),
    )
}

fn partition_state(record: &PartitionRecord) -> PartitionState {
    let nodes = |ids: &[i32]| ids.iter().map(|id| NodeId(*id)).collect();
    PartitionState {
        replicas: nodes(&record.replicas),
        isr: nodes(&record.isr),
        leader: (record.leader != NO_LEADER).then_some(NodeId(record.leader)),
        leader_epoch: LeaderEpoch(record.leader_epoch),
        partition_epoch: record.partition_epoch,
    }
}

/// Shard 0's task in a cluster: publishes every newer image to all shards. Ends when the
/// cluster thread does.
pub async fn follow(shard: Rc<Shard>) {
    let Some(cluster) = shard.cluster.clone() else {
        return;
    };
    let mut images = cluster.image.clone();
    let mut controller = cluster.controller.clone();
    let creating_offsets = Rc::new(Cell::new(false));
    loop {
        let image = images.borrow_and_update().clone();
        if image.version > shard.metadata().version {
            let snapshot = Arc::new(snapshot_of(
                &image,
                &shard.config.topic_defaults,
                shard.identity.node_id,
                shard.count,
            ));
            if let Some(authority) = &shard.authority {
                let topics = snapshot.topics.values().map(|t| t.meta.clone());
                authority
                    .store
                    .borrow_mut()
                    .follow_cluster(topics, image.configs.clone());
            }
            match shard.publish(snapshot).await {
                Ok(()) => cluster.published(image.version),
                Err(e) => tracing::error!("applying metadata version {}: {e}", image.version),
            }
        }
        maybe_create_offsets_topic(&shard, &image, &creating_offsets);
        // A newer image, or a change of active controller (which may make this broker the
        // one to create the offsets topic).
        let image_changed = std::pin::pin!(images.changed());
        let controller_changed = std::pin::pin!(controller.changed());
        match futures::future::select(image_changed, controller_changed).await {
            futures::future::Either::Left((Err(_), _)) | futures::future::Either::Right((Err(_), _)) => return,
            _ => {}
        }
    }
}

/// The broker that is also the active controller creates the internal topics (consumer
/// offsets, transaction state) once their replication factor of brokers is up (as in Kafka,
/// their coordinators answer COORDINATOR_NOT_AVAILABLE until then).
fn maybe_create_offsets_topic(shard: &Rc<Shard>, image: &ClusterImage, creating: &Rc<Cell<bool>>) {
    let Some(cluster) = &shard.cluster else { return };
    let active_here = *cluster.controller.borrow() == Some(shard.identity.node_id.0);
    let config = &shard.config;
    let wanted: Vec<(&'static str, i32, i16)> = [
        (
            crate::group::OFFSETS_TOPIC,
            config.offsets_topic_num_partitions,
            config.cluster.offsets_topic_replication_factor,
        ),
        (
            crate::txn::TRANSACTION_STATE_TOPIC,
            config.transaction_state_log_num_partitions,
            config.cluster.transaction_state_log_replication_factor,
        ),
    ]
    .into_iter()
    .filter(|(name, _, factor)| !image.topics.contains_key(*name) && image.live_brokers().len() >= *factor as usize)
    .collect();
    if !active_here || creating.get() || wanted.is_empty() {
        return;
    }
    creating.set(true);
    let shard = shard.clone();
    let creating = creating.clone();
    crate::runtime::spawn_detached(async move {
        for (name, partitions, factor) in wanted {
            let overrides = BTreeMap::from([
                ("cleanup.policy".to_string(), "compact".to_string()),
                (
                    "segment.bytes".to_string(),
                    shard.config.offsets_topic_segment_bytes.to_string(),
                ),
            ]);
            let created = crate::node::cluster_authority::create_topic(
                &shard,
                name.to_string(),
                partitions,
                Replicas::Factor(Some(factor)),
                overrides,
                true,
            )
            .await;
            match created {
                Ok(_) => tracing::info!(
                    "created internal topic {name} with {partitions} partitions, replication factor {factor}"
                ),
                Err(refusal) if refusal.code == crate::error::KafkaCode::TopicAlreadyExists => {}
                Err(refusal) => tracing::warn!("creating {name}: {}", refusal.message),
            }
        }
        creating.set(false);
    });
}
