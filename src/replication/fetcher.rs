//! A follower's fetcher: one per (shard, leader broker), fetching every partition this shard
//! follows from that leader in one Fetch request, as Kafka's replica fetcher threads do.
//!
//! Before it fetches a partition at a leader epoch it has not seen, it asks the leader
//! (OffsetForLeaderEpoch) where its own last epoch ends there and truncates whatever it holds
//! beyond that: a tail written by an old leader that the new one never had. Then each round
//! fetches from every partition's log end, appends what comes verbatim, waits until it is
//! durable, and takes the leader's high watermark (capped at what it holds). The next fetch
//! asks from the new end, which tells the leader the follower holds everything before it.

use std::collections::HashMap;
use std::rc::Rc;
use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchRequest, FetchTopic};
use kafka_protocol::messages::fetch_response::FetchResponse;
use kafka_protocol::messages::offset_for_leader_epoch_request::{
    OffsetForLeaderEpochRequest, OffsetForLeaderPartition, OffsetForLeaderTopic,
};
use kafka_protocol::messages::offset_for_leader_epoch_response::OffsetForLeaderEpochResponse;
use kafka_protocol::messages::{ApiKey, BrokerId, TopicName};
use kafka_protocol::protocol::StrBytes;

use crate::error::KafkaCode;
use crate::ids::{LeaderEpoch, NodeId, Offset, PartitionId, TopicId};
use crate::net::client::KafkaClient;
use crate::node::Shard;
use crate::storage::log::PartitionLog;

/// Fetch version used between brokers: topics by name, replica id in the request.
const FETCH_VERSION: i16 = 12;
const OFFSET_FOR_LEADER_EPOCH_VERSION: i16 = 4;
/// How long the leader may hold a fetch with nothing new.
const FETCH_WAIT_MS: i32 = 500;
/// Bytes one fetch response may carry, and one partition of it.
const FETCH_BYTES_MAX: i32 = 16 * 1024 * 1024;
const FETCH_PARTITION_BYTES_MAX: i32 = 1024 * 1024;
/// A call to the leader that takes longer than this is given up and the connection remade.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);
/// Pause after a failure (connection refused, leader unknown) before trying again.
const RETRY: Duration = Duration::from_millis(200);

/// One partition this fetcher follows.
struct Followed {
    name: String,
    key: (TopicId, PartitionId),
    log: Rc<PartitionLog>,
    leader_epoch: LeaderEpoch,
}

/// The partitions of `shard` whose leader is `leader`, at their current epochs.
fn followed(shard: &Shard, leader: NodeId) -> Vec<Followed> {
    let snapshot = shard.metadata();
    shard
        .open_logs()
        .into_iter()
        .filter_map(|log| {
            let topic = snapshot.topic_by_id(log.topic_id)?;
            let state = topic.partition(log.partition)?;
            (state.leader == Some(leader)).then(|| Followed {
                name: topic.meta.name.clone(),
                key: (TopicId(log.topic_id), log.partition),
                leader_epoch: state.leader_epoch,
                log,
            })
        })
        .collect()
}

/// Fetches from `leader` for as long as the task lives (its owner drops it when this shard
/// follows nothing of that leader any more).
pub async fn run(shard: Rc<Shard>, leader: NodeId) {
    let me = shard.identity.node_id;
    let mut client: Option<KafkaClient> = None;
    // The leader epoch at which each partition last had its tail checked against the leader.
    let mut checked: HashMap<(TopicId, PartitionId), LeaderEpoch> = HashMap::new();
    loop {
        if shard.is_closing() {
            return;
        }
        let partitions = followed(&shard, leader);
        if partitions.is_empty() {
            let changed = shard.metadata_changed.wait();
            let _ = changed.await;
            continue;
        }
        if client.is_none() {
            let Some(address) = shard.brokers().into_iter().find(|b| b.id == leader) else {
                // The leader is not (yet) among the live brokers: wait for the metadata.
                let changed = shard.metadata_changed.wait();
                crate::runtime::timeout(RETRY * 5, changed).await;
                continue;
            };
            let name = format!("sluice-replica-{}-shard-{}", me, shard.id);
            match KafkaClient::connect(&format!("{}:{}", address.host, address.port), &name, CALL_TIMEOUT).await {
                Ok(connected) => client = Some(connected),
                Err(e) => {
                    tracing::debug!("replica fetcher to broker {leader}: {e}");
                    crate::runtime::sleep(RETRY).await;
                    continue;
                }
            }
        }
        let connection = client.as_mut().expect("connected above");
        let unchecked: Vec<&Followed> = partitions
            .iter()
            .filter(|p| checked.get(&p.key) != Some(&p.leader_epoch))
            .collect();
        if !unchecked.is_empty() {
            match truncate_diverged(connection, me, &unchecked).await {
                Ok(done) => {
                    for key in done {
                        if let Some(p) = partitions.iter().find(|p| p.key == key) {
                            checked.insert(key, p.leader_epoch);
                        }
                    }
                }
                Err(e) => {
                    tracing::info!("replica fetcher to broker {leader}: {e}");
                    client = None;
                    crate::runtime::sleep(RETRY).await;
                    continue;
                }
            }
        }
        let ready: Vec<&Followed> = partitions
            .iter()
            .filter(|p| checked.get(&p.key) == Some(&p.leader_epoch))
            .collect();
        if ready.is_empty() {
            crate::runtime::sleep(RETRY).await;
            continue;
        }
        // A partition newly followed (or at a new epoch) need not wait out the long-poll in
        // flight: that fetch is dropped, with its connection, and the next one asks for it.
        let signature = |ps: &[Followed]| ps.iter().map(|p| (p.key, p.leader_epoch)).collect::<Vec<_>>();
        let following = signature(&partitions);
        let outcome = {
            let round = fetch_round(connection, me, &ready);
            futures::pin_mut!(round);
            loop {
                let changed = shard.metadata_changed.wait();
                match futures::future::select(round.as_mut(), changed).await {
                    futures::future::Either::Left((outcome, _)) => break Some(outcome),
                    futures::future::Either::Right(_) => {
                        if shard.is_closing() || signature(&followed(&shard, leader)) != following {
                            break None;
                        }
                    }
                }
            }
        };
        let Some(outcome) = outcome else {
            client = None;
            continue;
        };
        match outcome {
            Ok(stale) => {
                for key in stale {
                    // The leader moved on (or we did): check the tail again at the next epoch.
                    checked.remove(&key);
                }
            }
            Err(e) => {
                tracing::info!("replica fetcher to broker {leader}: {e}");
                client = None;
                crate::runtime::sleep(RETRY).await;
            }
        }
    }
}

/// Asks the leader where each partition's last local epoch ends there and truncates what
/// lies beyond; returns the partitions that are now consistent with the leader.
async fn truncate_diverged(
    client: &mut KafkaClient,
    me: NodeId,
    partitions: &[&Followed],
) -> Result<Vec<(TopicId, PartitionId)>, String> {
    let topics = by_topic(partitions, |p| {
        let latest = p.log.epoch_entries().last().map(|(epoch, _)| *epoch);
        OffsetForLeaderPartition::default()
            .with_partition(p.key.1 .0)
            .with_current_leader_epoch(p.leader_epoch.0)
            .with_leader_epoch(latest.map_or(-1, |e| e.0))
    })
    .into_iter()
    .map(|(name, partitions)| {
        OffsetForLeaderTopic::default()
            .with_topic(name)
            .with_partitions(partitions)
    })
    .collect();
    let request = OffsetForLeaderEpochRequest::default()
        .with_replica_id(BrokerId(me.0))
        .with_topics(topics);
    let answer: OffsetForLeaderEpochResponse = client
        .call(
            ApiKey::OffsetForLeaderEpoch,
            OFFSET_FOR_LEADER_EPOCH_VERSION,
            &request,
            CALL_TIMEOUT,
        )
        .await
        .map_err(|e| e.to_string())?;
    let mut done = Vec::new();
    for topic in answer.topics {
        for result in topic.partitions {
            let Some(p) = partitions
                .iter()
                .find(|p| p.name == topic.topic.as_str() && p.key.1 .0 == result.partition)
            else {
                continue;
            };
            if result.error_code != 0 {
                tracing::debug!(
                    "{}-{}: the leader answered OffsetForLeaderEpoch with {}",
                    p.name,
                    result.partition,
                    result.error_code
                );
                continue;
            }
            let end = p.log.end_offset();
            let target = if result.leader_epoch < 0 || result.end_offset < 0 {
                // The leader knows none of our epochs: keep only what was known committed.
                p.log.high_watermark().min(end)
            } else {
                // Where that epoch ends here too: the leader may answer an earlier epoch than
                // we asked for, and we must cut at its end on our side as well.
                let ours = p
                    .log
                    .end_offset_for_epoch(LeaderEpoch(result.leader_epoch))
                    .map_or(end, |(_, ours)| ours);
                Offset(result.end_offset).min(ours).min(end)
            };
            if target < end {
                tracing::info!(
                    "{}-{}: truncating a divergent tail from {end} to {target} (leader epoch {})",
                    p.name,
                    result.partition,
                    p.leader_epoch
                );
                p.log
                    .truncate_to(target)
                    .await
                    .map_err(|e| format!("{}-{}: truncating: {e}", p.name, result.partition))?;
            }
            done.push(p.key);
        }
    }
    Ok(done)
}

/// One fetch of every ready partition; returns the partitions to check again (the leader
/// refused our epoch, or it is not the leader any more).
async fn fetch_round(
    client: &mut KafkaClient,
    me: NodeId,
    partitions: &[&Followed],
) -> Result<Vec<(TopicId, PartitionId)>, String> {
    let topics = by_topic(partitions, |p| {
        FetchPartition::default()
            .with_partition(p.key.1 .0)
            .with_current_leader_epoch(p.leader_epoch.0)
            .with_fetch_offset(p.log.end_offset().0)
            .with_log_start_offset(p.log.log_start_offset().0)
            .with_partition_max_bytes(FETCH_PARTITION_BYTES_MAX)
    })
    .into_iter()
    .map(|(name, partitions)| FetchTopic::default().with_topic(name).with_partitions(partitions))
    .collect();
    let request = FetchRequest::default()
        .with_replica_id(BrokerId(me.0))
        .with_max_wait_ms(FETCH_WAIT_MS)
        .with_min_bytes(1)
        .with_max_bytes(FETCH_BYTES_MAX)
        .with_topics(topics);
    let answer: FetchResponse = client
        .call(ApiKey::Fetch, FETCH_VERSION, &request, CALL_TIMEOUT)
        .await
        .map_err(|e| e.to_string())?;
    if answer.error_code != 0 {
        return Err(format!("the leader refused the fetch: error {}", answer.error_code));
    }
    let mut stale = Vec::new();
    let mut appended = Vec::new();
    for topic in answer.responses {
        for data in topic.partitions {
            let Some(p) = partitions
                .iter()
                .find(|p| p.name == topic.topic.as_str() && p.key.1 .0 == data.partition_index)
            else {
                continue;
            };
            let code = KafkaCode::try_from_code(data.error_code);
            match code {
                None if data.error_code == 0 => {}
                Some(KafkaCode::OffsetOutOfRange) if p.log.end_offset().0 < data.log_start_offset => {
                    // The leader no longer has what we would fetch next (retention): start
                    // over at its log start.
                    p.log.truncate_to(Offset(data.log_start_offset)).await.map_err(|e| {
                        format!(
                            "{}-{}: restarting at the leader's start: {e}",
                            p.name, data.partition_index
                        )
                    })?;
                    continue;
                }
                _ => {
                    tracing::debug!("{}-{}: fetch answered {:?}", p.name, data.partition_index, code);
                    stale.push(p.key);
                    continue;
                }
            }
            let records = data.records.unwrap_or_default();
            if !records.is_empty() {
                append(p, records).await?;
            }
            appended.push((*p, data.high_watermark));
        }
    }
    for (p, high_watermark) in appended {
        p.log
            .flush()
            .await
            .map_err(|e| format!("{}-{}: flush: {e}", p.name, p.key.1))?;
        let capped = Offset(high_watermark).min(p.log.end_offset());
        if capped > p.log.high_watermark() {
            let _ = p.log.set_high_watermark(capped);
        }
    }
    Ok(stale)
}

/// The partitions grouped under their topic's name, in first-seen order, each made into a
/// request's partition entry by `entry`.
fn by_topic<T>(partitions: &[&Followed], entry: impl Fn(&Followed) -> T) -> Vec<(TopicName, Vec<T>)> {
    let mut topics: Vec<(TopicName, Vec<T>)> = Vec::new();
    for p in partitions {
        match topics.iter_mut().find(|(name, _)| name.0.as_str() == p.name) {
            Some((_, entries)) => entries.push(entry(p)),
            None => topics.push((TopicName(StrBytes::from_string(p.name.clone())), vec![entry(p)])),
        }
    }
    topics
}

/// Appends the leader's batches as they are.
async fn append(p: &Followed, records: Bytes) -> Result<(), String> {
    let ranges =
        crate::record::split_batches(&records).map_err(|e| format!("{}-{}: the leader sent {e}", p.name, p.key.1))?;
    let batches: Vec<Bytes> = ranges.into_iter().map(|r| records.slice(r)).collect();
    // What the leader sent may start before our end only if we raced a truncation: skip it.
    let end = p.log.end_offset();
    let batches: Vec<Bytes> = batches
        .into_iter()
        .filter(|b| crate::record::BatchHeader::new(b).is_ok_and(|h| h.base_offset() >= end))
        .collect();
    if batches.is_empty() {
        return Ok(());
    }
    p.log
        .append_verbatim(&batches)
        .await
        .map(|_| ())
        .map_err(|e| format!("{}-{}: appending the leader's batches: {e}", p.name, p.key.1))
}
