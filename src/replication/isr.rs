//! The leader's side of the ISR: every shard checks the partitions it leads, takes out of the
//! ISR a follower that has not caught up for `replica.lag.time.max.ms` (or never fetched in
//! that long since this broker began to lead), and puts back one that has caught up with the
//! high watermark and the current epoch. Each change goes to the controller as an
//! AlterPartition; the new ISR comes back with the next image, and only then does the high
//! watermark stop (or start) waiting for that follower. A shrink asked for and not yet in the
//! image already counts against `min.insync.replicas` (`Shard::in_sync_replicas`).

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::rc::Rc;
use std::time::{Duration, Instant};

use crate::cluster::image::{Command, Outcome};
use crate::cluster::ClusterHandle;
use crate::ids::{NodeId, Offset, PartitionId, TopicId};
use crate::metadata::PartitionState;
use crate::node::{FollowerProgress, Shard};
use crate::storage::log::PartitionLog;

/// Longest an AlterPartition may wait for the controller.
const ALTER_TIMEOUT: Duration = Duration::from_secs(10);

/// A partition this broker leads, as the ISR check sees it.
pub struct Leading<'a> {
    pub isr: &'a [NodeId],
    pub replicas: &'a [NodeId],
    pub me: NodeId,
    /// The brokers up (unfenced).
    pub live: &'a [NodeId],
    pub progress: Option<&'a BTreeMap<i32, FollowerProgress>>,
    pub high_watermark: Offset,
    /// Where the current leader epoch began in the log.
    pub epoch_start: Offset,
    pub since: Instant,
}

/// What the ISR of a partition should become, if it should change: members that have not
/// caught up within `lag_max` leave, live replicas that hold the high watermark and the
/// current epoch's start join.
pub fn next_isr(leading: &Leading<'_>, lag_max: Duration, now: Instant) -> Option<Vec<NodeId>> {
    let Leading {
        isr,
        replicas,
        me,
        live,
        progress,
        high_watermark,
        epoch_start,
        since: leading_since,
    } = *leading;
    let progress_of = |node: &NodeId| progress.and_then(|p| p.get(&node.0));
    let mut next: Vec<NodeId> = isr
        .iter()
        .copied()
        .filter(|node| {
            *node == me
                || match progress_of(node) {
                    Some(p) => now.duration_since(p.caught_up_at) <= lag_max,
                    None => now.duration_since(leading_since) <= lag_max,
                }
        })
        .collect();
    for node in replicas {
        // Only replicas out of the ISR before this check join: one just taken out is judged
        // again against the high watermark it no longer holds back.
        if isr.contains(node) || !live.contains(node) {
            continue;
        }
        if let Some(p) = progress_of(node) {
            if p.fetch_offset >= high_watermark && p.fetch_offset >= epoch_start {
                next.push(*node);
            }
        }
    }
    let mut sorted_next = next.clone();
    sorted_next.sort();
    let mut sorted_isr = isr.to_vec();
    sorted_isr.sort();
    (sorted_next != sorted_isr).then_some(next)
}

/// Runs on every shard of a cluster node until the shard stops.
pub async fn run(shard: Rc<Shard>) {
    let Some(cluster) = shard.cluster.clone() else {
        return;
    };
    let lag_max = Duration::from_millis(shard.config.cluster.replica_lag_time_max_ms);
    let check = (lag_max / 4).clamp(Duration::from_millis(100), Duration::from_secs(1));
    let me = shard.identity.node_id;
    // When this shard began leading each partition, at which epoch.
    let mut leading: HashMap<(TopicId, PartitionId), (i32, Instant)> = HashMap::new();
    // Partitions with an AlterPartition on its way.
    let in_flight: Rc<RefCell<HashSet<(TopicId, PartitionId)>>> = Rc::default();
    loop {
        crate::runtime::sleep(check).await;
        if shard.is_closing() {
            return;
        }
        let snapshot = shard.metadata();
        let live: Vec<NodeId> = shard.brokers().into_iter().map(|b| b.id).collect();
        let now = Instant::now();
        let mut changes = Vec::new();
        let mut led_now = HashMap::new();
        for log in shard.open_logs() {
            let Some(state) = snapshot
                .topic_by_id(log.topic_id)
                .and_then(|t| t.partition(log.partition))
            else {
                continue;
            };
            if state.leader != Some(me) {
                continue;
            }
            let key = (TopicId(log.topic_id), log.partition);
            let since = match leading.get(&key) {
                Some((epoch, since)) if *epoch == state.leader_epoch.0 => *since,
                _ => now,
            };
            led_now.insert(key, (state.leader_epoch.0, since));
            let epoch_start = log
                .epoch_entries()
                .last()
                .filter(|(epoch, _)| *epoch == state.leader_epoch)
                .map_or(log.end_offset(), |(_, start)| *start);
            let followers = shard.followers.borrow();
            let leading = Leading {
                isr: &state.isr,
                replicas: &state.replicas,
                me,
                live: &live,
                progress: followers.get(key.0, key.1),
                high_watermark: log.high_watermark(),
                epoch_start,
                since,
            };
            let next = next_isr(&leading, lag_max, now);
            let mut shrinking = shard.isr_shrinking.borrow_mut();
            match next {
                Some(isr) => {
                    if isr.len() < state.isr.len() {
                        shrinking.insert(key.0, key.1, isr.len());
                    } else {
                        shrinking.remove(key.0, key.1);
                    }
                    changes.push((log.clone(), state.clone(), isr));
                }
                None => {
                    shrinking.remove(key.0, key.1);
                }
            }
        }
        shard
            .isr_shrinking
            .borrow_mut()
            .retain(|topic, partition| led_now.contains_key(&(topic, partition)));
        leading = led_now;
        // Each change is sent on its own, one at a time per partition, so that a controller
        // slow to answer (or gone with its quorum) holds up no other partition's check.
        for (log, state, isr) in changes {
            let key = (TopicId(log.topic_id), log.partition);
            if !in_flight.borrow_mut().insert(key) {
                continue;
            }
            let (shard, cluster, in_flight) = (shard.clone(), cluster.clone(), in_flight.clone());
            crate::runtime::spawn_detached(async move {
                alter_partition(&shard, &cluster, &log, &state, isr).await;
                in_flight.borrow_mut().remove(&key);
            });
        }
    }
}

/// Asks the controller for `isr` and waits until this node applied the change.
async fn alter_partition(
    shard: &Shard,
    cluster: &ClusterHandle,
    log: &PartitionLog,
    state: &PartitionState,
    isr: Vec<NodeId>,
) {
    let me = shard.identity.node_id;
    let command = Command::AlterPartition {
        topic: log.topic_id,
        partition: log.partition.0,
        leader: me.0,
        leader_epoch: state.leader_epoch.0,
        partition_epoch: state.partition_epoch,
        isr: isr.iter().map(|n| n.0).collect(),
    };
    let shrinking = isr.len() < state.isr.len();
    match cluster.change(command, ALTER_TIMEOUT).await {
        Ok((index, Outcome::Partition(_))) => {
            tracing::info!(
                "{}-{}: ISR {} from {} to {}",
                log.topic,
                log.partition,
                if shrinking { "shrinks" } else { "expands" },
                ids(&state.isr),
                ids(&isr)
            );
            shard.metrics.isr_changed(shrinking);
            cluster.applied_at_least(index).await;
        }
        Ok((_, other)) => tracing::debug!("{}-{}: AlterPartition: {other:?}", log.topic, log.partition),
        Err(e) => tracing::info!("{}-{}: AlterPartition: {e}", log.topic, log.partition),
    }
}

/// `[1, 2, 3]` for logs.
fn ids(nodes: &[NodeId]) -> String {
    let listed: Vec<String> = nodes.iter().map(|n| n.0.to_string()).collect();
    format!("[{}]", listed.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn progress(fetch_offset: i64, caught_up_ago: Duration, now: Instant) -> FollowerProgress {
        FollowerProgress {
            fetch_offset: Offset(fetch_offset),
            last_fetch: now,
            caught_up_at: now - caught_up_ago,
            leader_end_at_last_fetch: Offset(fetch_offset),
        }
    }

    #[test]
    fn laggards_leave_and_caught_up_replicas_rejoin() {
        let now = Instant::now();
        let lag = Duration::from_secs(10);
        let nodes = [NodeId(1), NodeId(2), NodeId(3)];
        let mut followers = BTreeMap::new();
        followers.insert(2, progress(100, Duration::from_secs(1), now));
        followers.insert(3, progress(40, Duration::from_secs(30), now));
        let leading = Leading {
            isr: &nodes,
            replicas: &nodes,
            me: NodeId(1),
            live: &nodes,
            progress: Some(&followers),
            high_watermark: Offset(40),
            epoch_start: Offset(0),
            since: now - Duration::from_secs(60),
        };
        assert_eq!(next_isr(&leading, lag, now), Some(vec![NodeId(1), NodeId(2)]));
        // Out of the ISR, 3 comes back once it holds the high watermark.
        let isr = [NodeId(1), NodeId(2)];
        let back = Leading { isr: &isr, ..leading };
        assert_eq!(next_isr(&back, lag, now), Some(vec![NodeId(1), NodeId(2), NodeId(3)]));
        // Not while it is fenced.
        let live = [NodeId(1), NodeId(2)];
        let fenced = Leading {
            isr: &isr,
            live: &live,
            ..leading
        };
        assert_eq!(next_isr(&fenced, lag, now), None);
        // A follower never heard from since leadership began gets a full lag first.
        let fresh = Leading {
            progress: None,
            since: now - Duration::from_secs(1),
            ..leading
        };
        assert_eq!(next_isr(&fresh, lag, now), None);
    }
}
