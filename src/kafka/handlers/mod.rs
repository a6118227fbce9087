//! One handler per Kafka API and the one table of what is served.
//!
//! Each handler reads top-down: early exits for requests that cannot proceed, fan-out of the
//! per-partition work to owner shards (one hop per shard), then assembly of the response in
//! request order. Per-partition failures are error codes in the response, never early returns.

pub mod alter_configs;
pub mod api_versions;
pub mod config_resource;
pub mod consumer_group_describe;
pub mod consumer_group_heartbeat;
pub mod create_partitions;
pub mod create_topics;
pub mod delete_groups;
pub mod delete_records;
pub mod delete_topics;
pub mod describe_cluster;
pub mod describe_configs;
pub mod describe_groups;
pub mod describe_log_dirs;
pub mod describe_producers;
pub mod describe_topic_partitions;
pub mod fetch;
pub mod find_coordinator;
pub mod heartbeat;
pub mod incremental_alter_configs;
pub mod init_producer_id;
pub mod join_group;
pub mod leave_group;
pub mod list_config_resources;
pub mod list_groups;
pub mod list_offsets;
pub mod metadata;
pub mod offset_commit;
pub mod offset_delete;
pub mod offset_fetch;
pub mod offset_for_leader_epoch;
pub mod produce;
pub mod sync_group;

use std::collections::BTreeMap;
use std::future::Future;

use futures::future::LocalBoxFuture;
use std::rc::Rc;

use kafka_protocol::messages::{ApiKey, RequestHeader, RequestKind, ResponseKind};
use kafka_protocol::protocol::StrBytes;

use crate::ids::ShardId;
use crate::kafka::frame::Splices;
use crate::shard::Shard;

/// One served API: the versions advertised (`min..=max`) and decoded (`min_served..=max`).
/// They differ only for Produce, which is advertised from v0 because librdkafka turns off
/// compression when a broker's Produce minimum is above 0, while v0-v2 (the old message
/// formats) are refused.
#[derive(Clone, Copy, Debug)]
pub struct Api {
    pub key: ApiKey,
    pub min: i16,
    pub min_served: i16,
    pub max: i16,
}

impl Api {
    pub fn serves(&self, version: i16) -> bool {
        (self.min_served..=self.max).contains(&version)
    }
}

const fn api(key: ApiKey, min: i16, max: i16) -> Api {
    Api {
        key,
        min,
        min_served: min,
        max,
    }
}

/// Everything Sluice serves. The only source of ApiVersions.
pub const APIS: &[Api] = &[
    Api {
        key: ApiKey::Produce,
        min: 0,
        min_served: 3,
        max: 13,
    },
    api(ApiKey::Fetch, 4, 18),
    api(ApiKey::ListOffsets, 1, 11),
    api(ApiKey::Metadata, 0, 13),
    api(ApiKey::FindCoordinator, 0, 6),
    api(ApiKey::JoinGroup, 0, 9),
    api(ApiKey::SyncGroup, 0, 5),
    api(ApiKey::Heartbeat, 0, 4),
    api(ApiKey::LeaveGroup, 0, 5),
    api(ApiKey::OffsetCommit, 2, 10),
    api(ApiKey::OffsetFetch, 1, 10),
    api(ApiKey::DescribeGroups, 0, 6),
    api(ApiKey::ListGroups, 0, 5),
    api(ApiKey::DeleteGroups, 0, 2),
    api(ApiKey::OffsetDelete, 0, 0),
    api(ApiKey::ConsumerGroupHeartbeat, 0, 1),
    api(ApiKey::ConsumerGroupDescribe, 0, 1),
    api(ApiKey::ApiVersions, 0, 4),
    api(ApiKey::CreateTopics, 2, 7),
    api(ApiKey::DeleteTopics, 1, 6),
    api(ApiKey::OffsetForLeaderEpoch, 2, 4),
    api(ApiKey::DescribeConfigs, 1, 4),
    api(ApiKey::CreatePartitions, 0, 3),
    api(ApiKey::AlterConfigs, 0, 2),
    api(ApiKey::IncrementalAlterConfigs, 0, 1),
    api(ApiKey::DescribeCluster, 0, 1),
    api(ApiKey::DeleteRecords, 0, 2),
    api(ApiKey::InitProducerId, 0, 5),
    api(ApiKey::DescribeLogDirs, 1, 4),
    api(ApiKey::DescribeProducers, 0, 0),
    api(ApiKey::DescribeTopicPartitions, 0, 0),
    api(ApiKey::ListConfigResources, 0, 1),
];

pub fn find(api_key: i16) -> Option<Api> {
    APIS.iter().find(|api| api.key as i16 == api_key).copied()
}

/// Versions Kafka added without changing the wire form, which the codec crate does not know
/// yet, each with the older version whose encoding it shares. The handler sees the version the
/// client sent; only the bytes go through the older one.
const SAME_WIRE_FORM: &[(ApiKey, i16, i16)] = &[
    // ListOffsets 11 only allows the earliest-pending-upload timestamp (-6, KIP-1023).
    (ApiKey::ListOffsets, 11, 10),
];

/// The version the codec encodes and decodes `version` of `key` with.
pub fn codec_version(key: ApiKey, version: i16) -> i16 {
    SAME_WIRE_FORM
        .iter()
        .find(|(k, v, _)| *k == key && *v == version)
        .map_or(version, |(_, _, wire)| *wire)
}

/// What a handler produced: a response now (or none), or, for Produce, a response that
/// becomes ready later (see [`produce`]).
// `Now` is every request but Produce: boxing it to shrink the enum would allocate per request.
#[allow(clippy::large_enum_variant)]
pub enum Dispatched {
    Now(Option<ResponseKind>),
    /// A response carrying stored record bytes by reference (Fetch).
    Spliced(ResponseKind, Splices),
    Later(LocalBoxFuture<'static, Option<ResponseKind>>),
}

/// Runs the handler for a decoded request; `frame_bytes` is the size of the frame it came in.
pub async fn dispatch(
    shard: &Rc<Shard>,
    header: &RequestHeader,
    request: RequestKind,
    frame_bytes: usize,
    peer: &str,
) -> Result<Dispatched, String> {
    let version = header.request_api_version;
    if let RequestKind::Produce(r) = request {
        let answer = produce::handle(shard, version, r, frame_bytes).await;
        return Ok(Dispatched::Later(Box::pin(async move {
            answer.await.map(ResponseKind::Produce)
        })));
    }
    if let RequestKind::Fetch(r) = request {
        let (response, splices) = fetch::handle(shard, version, r).await;
        return Ok(Dispatched::Spliced(ResponseKind::Fetch(response), splices));
    }
    dispatch_now(shard, header, request, peer).await.map(Dispatched::Now)
}

async fn dispatch_now(
    shard: &Rc<Shard>,
    header: &RequestHeader,
    request: RequestKind,
    peer: &str,
) -> Result<Option<ResponseKind>, String> {
    let version = header.request_api_version;
    let client_id = || header.client_id.as_ref().map(|c| c.to_string()).unwrap_or_default();
    // Kafka reports a member's host as Java prints an address: "/" and the IP.
    let client_host = || format!("/{}", peer.rsplit_once(':').map_or(peer, |(host, _)| host));
    Ok(Some(match request {
        RequestKind::ApiVersions(_) => ResponseKind::ApiVersions(api_versions::handle()),
        RequestKind::Metadata(r) => ResponseKind::Metadata(metadata::handle(shard, version, r).await),
        RequestKind::ListOffsets(r) => ResponseKind::ListOffsets(list_offsets::handle(shard, version, r).await),
        RequestKind::CreateTopics(r) => ResponseKind::CreateTopics(create_topics::handle(shard, version, r).await),
        RequestKind::DeleteTopics(r) => ResponseKind::DeleteTopics(delete_topics::handle(shard, version, r).await),
        RequestKind::CreatePartitions(r) => ResponseKind::CreatePartitions(create_partitions::handle(shard, r).await),
        RequestKind::DescribeConfigs(r) => ResponseKind::DescribeConfigs(describe_configs::handle(shard, r)),
        RequestKind::AlterConfigs(r) => ResponseKind::AlterConfigs(alter_configs::handle(shard, r).await),
        RequestKind::IncrementalAlterConfigs(r) => {
            ResponseKind::IncrementalAlterConfigs(incremental_alter_configs::handle(shard, r).await)
        }
        RequestKind::FindCoordinator(r) => ResponseKind::FindCoordinator(find_coordinator::handle(shard, version, r)),
        RequestKind::JoinGroup(r) => {
            ResponseKind::JoinGroup(join_group::handle(shard, version, r, client_id(), client_host()).await)
        }
        RequestKind::SyncGroup(r) => ResponseKind::SyncGroup(sync_group::handle(shard, r).await),
        RequestKind::Heartbeat(r) => ResponseKind::Heartbeat(heartbeat::handle(shard, r).await),
        RequestKind::LeaveGroup(r) => ResponseKind::LeaveGroup(leave_group::handle(shard, version, r).await),
        RequestKind::OffsetCommit(r) => ResponseKind::OffsetCommit(offset_commit::handle(shard, r).await),
        RequestKind::OffsetFetch(r) => ResponseKind::OffsetFetch(offset_fetch::handle(shard, version, r).await),
        RequestKind::DescribeGroups(r) => {
            ResponseKind::DescribeGroups(describe_groups::handle(shard, version, r).await)
        }
        RequestKind::ListGroups(r) => ResponseKind::ListGroups(list_groups::handle(shard, r).await),
        RequestKind::DeleteGroups(r) => ResponseKind::DeleteGroups(delete_groups::handle(shard, r).await),
        RequestKind::OffsetDelete(r) => ResponseKind::OffsetDelete(offset_delete::handle(shard, r).await),
        RequestKind::ConsumerGroupHeartbeat(r) => ResponseKind::ConsumerGroupHeartbeat(
            consumer_group_heartbeat::handle(shard, r, client_id(), client_host()).await,
        ),
        RequestKind::ConsumerGroupDescribe(r) => {
            ResponseKind::ConsumerGroupDescribe(consumer_group_describe::handle(shard, r).await)
        }
        RequestKind::DeleteRecords(r) => ResponseKind::DeleteRecords(delete_records::handle(shard, r).await),
        RequestKind::InitProducerId(r) => ResponseKind::InitProducerId(init_producer_id::handle(shard, r).await),
        RequestKind::DescribeCluster(r) => ResponseKind::DescribeCluster(describe_cluster::handle(shard, r)),
        RequestKind::OffsetForLeaderEpoch(r) => {
            ResponseKind::OffsetForLeaderEpoch(offset_for_leader_epoch::handle(shard, r).await)
        }
        RequestKind::DescribeLogDirs(r) => ResponseKind::DescribeLogDirs(describe_log_dirs::handle(shard, r).await),
        RequestKind::DescribeProducers(r) => {
            ResponseKind::DescribeProducers(describe_producers::handle(shard, r).await)
        }
        RequestKind::DescribeTopicPartitions(r) => {
            ResponseKind::DescribeTopicPartitions(describe_topic_partitions::handle(shard, r))
        }
        RequestKind::ListConfigResources(r) => {
            ResponseKind::ListConfigResources(list_config_resources::handle(shard, version, r))
        }
        other => return Err(format!("no handler for {:?}", std::mem::discriminant(&other))),
    }))
}

/// Runs `work` on each item's owner shard, one hop per shard (items of one shard run
/// concurrently there), and returns the results in the items' order. Items whose shard has
/// stopped get `unavailable()`.
pub async fn fan_out<T, R, F, Fut>(
    shard: &Rc<Shard>,
    items: Vec<(ShardId, T)>,
    work: F,
    unavailable: impl Fn() -> R,
) -> Vec<R>
where
    T: Send + 'static,
    R: Send + 'static,
    F: Fn(Rc<Shard>, T) -> Fut + Send + Clone + 'static,
    Fut: Future<Output = R> + 'static,
{
    fan_out_per_shard(
        shard,
        items,
        move |target, batch| {
            let work = work.clone();
            async move {
                let runs = batch.into_iter().map(|item| work(target.clone(), item));
                futures::future::join_all(runs).await
            }
        },
        unavailable,
    )
    .await
}

/// Like [`fan_out`], but `work` gets all of one shard's items at once, in the items' order,
/// and answers one result per item in that order: for work whose items share a budget there.
pub async fn fan_out_per_shard<T, R, F, Fut>(
    shard: &Rc<Shard>,
    items: Vec<(ShardId, T)>,
    work: F,
    unavailable: impl Fn() -> R,
) -> Vec<R>
where
    T: Send + 'static,
    R: Send + 'static,
    F: Fn(Rc<Shard>, Vec<T>) -> Fut + Send + Clone + 'static,
    Fut: Future<Output = Vec<R>> + 'static,
{
    let count = items.len();
    let mut by_shard: BTreeMap<ShardId, Vec<(usize, T)>> = BTreeMap::new();
    for (index, (owner, item)) in items.into_iter().enumerate() {
        by_shard.entry(owner).or_default().push((index, item));
    }
    let calls = by_shard.into_iter().map(|(owner, batch)| {
        let work = work.clone();
        let (indexes, batch): (Vec<usize>, Vec<T>) = batch.into_iter().unzip();
        let call = shard.invoke_on(owner, move |target| work(target, batch));
        async move { (indexes, call.await) }
    });
    let mut results: Vec<Option<R>> = (0..count).map(|_| None).collect();
    for (indexes, outcome) in futures::future::join_all(calls).await {
        match outcome {
            Ok(values) => {
                assert_eq!(values.len(), indexes.len(), "one result per item of a shard");
                for (index, value) in indexes.into_iter().zip(values) {
                    results[index] = Some(value);
                }
            }
            Err(e) => {
                tracing::warn!("{e}");
                for index in indexes {
                    results[index] = Some(unavailable());
                }
            }
        }
    }
    results
        .into_iter()
        .map(|r| r.expect("every item has a result"))
        .collect()
}

/// [`fan_out`] over request slots in order, where a slot that could not be routed (None: an
/// unknown topic or partition) answers `missing()` without a hop.
pub async fn fan_out_slots<T, R, F, Fut>(
    shard: &Rc<Shard>,
    slots: Vec<Option<(ShardId, T)>>,
    work: F,
    unavailable: impl Fn() -> R,
    missing: impl Fn() -> R,
) -> Vec<R>
where
    T: Send + 'static,
    R: Send + 'static,
    F: Fn(Rc<Shard>, T) -> Fut + Send + Clone + 'static,
    Fut: Future<Output = R> + 'static,
{
    let routed: Vec<bool> = slots.iter().map(Option::is_some).collect();
    let items: Vec<(ShardId, T)> = slots.into_iter().flatten().collect();
    let mut answers = fan_out(shard, items, work, unavailable).await.into_iter();
    routed
        .into_iter()
        .map(|routed| {
            if routed {
                answers.next().expect("one answer per routed slot")
            } else {
                missing()
            }
        })
        .collect()
}

/// The wire code of an optional error: 0 for none.
pub fn error_code(error: Option<crate::error::KafkaCode>) -> i16 {
    error.map_or(0, |e| e.code())
}

pub fn str_bytes(text: impl Into<String>) -> StrBytes {
    StrBytes::from_string(text.into())
}
