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

/// The broker that is also the active controller creates the consumer offsets topic once
/// `offsets.topic.replication.factor` brokers are up (as Kafka does, groups wait for it
/// with COORDINATOR_NOT_AVAILABLE until then).
fn maybe_create_offsets_topic(shard: &Rc<Shard>, image: &ClusterImage, creating: &Rc<Cell<bool>>) {
    let Some(cluster) = &shard.cluster else { return };
    let active_here = *cluster.controller.borrow() == Some(shard.identity.node_id.0);
    let factor = shard.config.cluster.offsets_topic_replication_factor;
    if !active_here
        || creating.get()
        || image.topics.contains_key(crate::group::OFFSETS_TOPIC)
        || image.live_brokers().len() < factor as usize
    {
        return;
    }
    creating.set(true);
    let shard = shard.clone();
    let creating = creating.clone();
    crate::runtime::spawn_detached(async move {
        let overrides = BTreeMap::from([
            ("cleanup.policy".to_string(), "compact".to_string()),
            (
                "segment.bytes".to_string(),
                shard.config.offsets_topic_segment_bytes.to_string(),
            ),
        ]);
        let created = crate::node::cluster_authority::create_topic(
            &shard,
            crate::group::OFFSETS_TOPIC.to_string(),
            shard.config.offsets_topic_num_partitions,
            Replicas::Factor(Some(factor)),
            overrides,
            true,
        )
        .await;
        match created {
            Ok(_) => tracing::info!(
                "created internal topic {} with {} partitions, replication factor {factor}",
                crate::group::OFFSETS_TOPIC,
                shard.config.offsets_topic_num_partitions
            ),
            Err(refusal) if refusal.code == crate::error::KafkaCode::TopicAlreadyExists => {}
            Err(refusal) => tracing::warn!("creating {}: {}", crate::group::OFFSETS_TOPIC, refusal.message),
        }
        creating.set(false);
    });
}
