//! Replication in a cluster: followers fetch from leaders with Kafka's Fetch
//! ([`fetcher`]), leaders keep the ISR ([`isr`]). The high watermark rule each log follows
//! is set where metadata is applied (`node::registry`); the leader's side of a replica's
//! fetch is the Fetch handler's.
//!
//! Per shard a manager keeps one fetcher per leader broker this shard follows something of,
//! started and stopped as the metadata changes.

pub mod fetcher;
pub mod isr;

use std::collections::BTreeMap;
use std::rc::Rc;

use crate::ids::NodeId;
use crate::node::Shard;
use crate::runtime::Task;

/// Starts replication on `shard` (nothing on a single node); dropping the tasks stops it.
pub fn start_shard(shard: &Rc<Shard>) -> Vec<Task<()>> {
    if shard.cluster.is_none() {
        return Vec::new();
    }
    vec![
        crate::runtime::spawn(manage_fetchers(shard.clone())),
        crate::runtime::spawn(isr::run(shard.clone())),
    ]
}

/// The leaders of the partitions this shard follows.
fn leaders_followed(shard: &Shard) -> Vec<NodeId> {
    let me = shard.identity.node_id;
    let snapshot = shard.metadata();
    let mut leaders: Vec<NodeId> = shard
        .open_logs()
        .iter()
        .filter_map(|log| {
            snapshot
                .topic_by_id(log.topic_id)
                .and_then(|t| t.partition(log.partition))
                .and_then(|p| p.leader)
        })
        .filter(|leader| *leader != me)
        .collect();
    leaders.sort();
    leaders.dedup();
    leaders
}

/// Keeps one fetcher per leader followed, as the metadata changes.
async fn manage_fetchers(shard: Rc<Shard>) {
    let mut fetchers: BTreeMap<NodeId, Task<()>> = BTreeMap::new();
    loop {
        let changed = shard.metadata_changed.wait();
        if shard.is_closing() {
            return;
        }
        let leaders = leaders_followed(&shard);
        fetchers.retain(|leader, _| leaders.contains(leader));
        for leader in leaders {
            fetchers
                .entry(leader)
                .or_insert_with(|| crate::runtime::spawn(fetcher::run(shard.clone(), leader)));
        }
        let _ = changed.await;
    }
}
