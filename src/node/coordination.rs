//! In a cluster, a group is coordinated by the broker leading its `__consumer_offsets`
//! partition. Each shard follows the metadata: its coordinator takes up the groups of an
//! offsets partition this broker comes to lead (replaying the partition) and lets go of those
//! of one it stops leading, so groups fail over with their partition, offsets intact.

use std::rc::Rc;

use crate::group::{OFFSETS, OFFSETS_TOPIC};
use crate::node::Shard;

/// Runs on every shard of a cluster node until the shard stops.
pub async fn follow(shard: Rc<Shard>) {
    let me = shard.identity.node_id;
    loop {
        let changed = shard.metadata_changed.wait();
        if shard.is_closing() {
            return;
        }
        let snapshot = shard.metadata();
        if let Some(topic) = snapshot.topic(OFFSETS_TOPIC) {
            let led: Vec<(i32, i32)> = OFFSETS
                .owned_partitions(shard.as_ref())
                .into_iter()
                .filter(|p| topic.partition(*p).and_then(|state| state.leader) == Some(me))
                .filter(|p| shard.partition(OFFSETS_TOPIC, *p).is_some())
                .map(|p| (p.0, topic.leader_epoch(p).0))
                .collect();
            shard
                .groups
                .follow_leadership(&shard, &led, topic.partition_count())
                .await;
        }
        shard.follow_transaction_state().await;
        let _ = changed.await;
    }
}
