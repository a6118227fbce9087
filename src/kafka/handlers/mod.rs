//! One handler per Kafka API and the one table of what is served.
//!
//! Each handler reads top-down: early exits for requests that cannot proceed, fan-out of the
//! per-partition work to owner shards (one hop per shard), then assembly of the response in
//! request order. Per-partition failures are error codes in the response, never early returns.

pub mod acl_wire;
pub mod add_offsets_to_txn;
pub mod add_partitions_to_txn;
pub mod alter_configs;
pub mod alter_partition_reassignments;
pub mod alter_user_scram_credentials;
pub mod api_versions;
pub mod config_resource;
pub mod consumer_group_describe;
pub mod consumer_group_heartbeat;
pub mod create_acls;
pub mod create_partitions;
pub mod create_topics;
pub mod delete_acls;
pub mod delete_groups;
pub mod delete_records;
pub mod delete_topics;
pub mod describe_acls;
pub mod describe_cluster;
pub mod describe_configs;
pub mod describe_groups;
pub mod describe_log_dirs;
pub mod describe_producers;
pub mod describe_quorum;
pub mod describe_topic_partitions;
pub mod describe_transactions;
pub mod describe_user_scram_credentials;
pub mod elect_leaders;
pub mod end_txn;
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
pub mod list_partition_reassignments;
pub mod list_transactions;
pub mod metadata;
pub mod offset_commit;
pub mod offset_delete;
pub mod offset_fetch;
pub mod offset_for_leader_epoch;
pub mod produce;
pub mod sasl_authenticate;
pub mod sasl_handshake;
pub mod sync_group;
pub mod txn_offset_commit;
pub mod write_txn_markers;

use std::collections::BTreeMap;
use std::future::Future;

use futures::future::LocalBoxFuture;
use std::rc::Rc;

use kafka_protocol::messages::{ApiKey, RequestKind, ResponseKind};
use kafka_protocol::protocol::StrBytes;

use crate::error::ProtocolError;
use crate::ids::ShardId;
use crate::kafka::context::RequestContext;
use crate::kafka::frame::Splices;
use crate::runtime::mesh::OnShard;

/// One served API: the versions advertised (`min..=max`) and decoded (`min_served..=max`).
/// They differ only for Produce, which is advertised from v0 because librdkafka turns off
/// compression when a broker's Produce minimum is above 0, while v0-v2 (the old message
/// formats) are refused. Each handler declares its own as `API`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Api {
    pub key: ApiKey,
    pub min: i16,
    pub min_served: i16,
    pub max: i16,
}

impl Api {
    /// Versions `min..=max`, all of them advertised and served.
    pub const fn new(key: ApiKey, min: i16, max: i16) -> Api {
        Api::advertised_from(key, min, min, max)
    }

    /// Versions `min_served..=max` served, `min..=max` advertised.
    pub const fn advertised_from(key: ApiKey, min: i16, min_served: i16, max: i16) -> Api {
        assert!(min <= min_served && min_served <= max);
        Api {
            key,
            min,
            min_served,
            max,
        }
    }

    pub fn serves(&self, version: i16) -> bool {
        (self.min_served..=self.max).contains(&version)
    }
}

/// The one registry: each line names a handler module and the request it serves, and how its
/// answer leaves (`now`: a response or none; `later`: Produce, whose response becomes ready
/// once its records are durable; `spliced`: Fetch, whose response carries stored bytes by
/// reference). It generates [`APIS`] (so ApiVersions) and dispatch; a test checks that every
/// handler module (a file declaring `API`) has its line here. (The modules are declared above,
/// outside the macro, so that rustfmt sees them.)
macro_rules! registry {
    ($($module:ident: $variant:ident => $shape:ident),* $(,)?) => {
        /// Everything Sluice serves, in registry order. The only source of ApiVersions.
        pub const APIS: &[Api] = &[$($module::API),*];

        /// Runs the handler registered for a decoded request.
        pub async fn dispatch(ctx: &RequestContext<'_>, request: RequestKind) -> Result<Dispatched, ProtocolError> {
            match request {
                $(RequestKind::$variant(request) => Ok(registry!(@answer $shape, $module, $variant, ctx, request)),)*
                other => Err(ProtocolError::Unhandled(format!("{:?}", std::mem::discriminant(&other)))),
            }
        }

        /// The API key each registered handler is dispatched under, beside the one it declares.
        #[cfg(test)]
        fn registered() -> Vec<(&'static str, ApiKey, Api)> {
            vec![$((stringify!($module), ApiKey::$variant, $module::API)),*]
        }
    };
    (@answer now, $module:ident, $variant:ident, $ctx:ident, $request:ident) => {
        Dispatched::Now(Some(ResponseKind::$variant($module::handle($ctx, $request).await)))
    };
    (@answer later, $module:ident, $variant:ident, $ctx:ident, $request:ident) => {{
        let answer = $module::handle($ctx, $request).await;
        Dispatched::Later(Box::pin(async move { answer.await.map(ResponseKind::$variant) }))
    }};
    (@answer spliced, $module:ident, $variant:ident, $ctx:ident, $request:ident) => {{
        let (response, splices) = $module::handle($ctx, $request).await;
        Dispatched::Spliced(ResponseKind::$variant(response), splices)
    }};
}

registry! {
    produce: Produce => later,
    add_partitions_to_txn: AddPartitionsToTxn => now,
    add_offsets_to_txn: AddOffsetsToTxn => now,
    end_txn: EndTxn => now,
    write_txn_markers: WriteTxnMarkers => now,
    txn_offset_commit: TxnOffsetCommit => now,
    describe_transactions: DescribeTransactions => now,
    list_transactions: ListTransactions => now,
    fetch: Fetch => spliced,
    list_offsets: ListOffsets => now,
    metadata: Metadata => now,
    find_coordinator: FindCoordinator => now,
    join_group: JoinGroup => now,
    sync_group: SyncGroup => now,
    heartbeat: Heartbeat => now,
    leave_group: LeaveGroup => now,
    offset_commit: OffsetCommit => now,
    offset_fetch: OffsetFetch => now,
    describe_groups: DescribeGroups => now,
    list_groups: ListGroups => now,
    delete_groups: DeleteGroups => now,
    offset_delete: OffsetDelete => now,
    consumer_group_heartbeat: ConsumerGroupHeartbeat => now,
    consumer_group_describe: ConsumerGroupDescribe => now,
    api_versions: ApiVersions => now,
    sasl_handshake: SaslHandshake => now,
    sasl_authenticate: SaslAuthenticate => now,
    describe_user_scram_credentials: DescribeUserScramCredentials => now,
    alter_user_scram_credentials: AlterUserScramCredentials => now,
    create_acls: CreateAcls => now,
    describe_acls: DescribeAcls => now,
    delete_acls: DeleteAcls => now,
    create_topics: CreateTopics => now,
    delete_topics: DeleteTopics => now,
    offset_for_leader_epoch: OffsetForLeaderEpoch => now,
    describe_configs: DescribeConfigs => now,
    create_partitions: CreatePartitions => now,
    alter_configs: AlterConfigs => now,
    incremental_alter_configs: IncrementalAlterConfigs => now,
    describe_cluster: DescribeCluster => now,
    delete_records: DeleteRecords => now,
    init_producer_id: InitProducerId => now,
    describe_log_dirs: DescribeLogDirs => now,
    describe_producers: DescribeProducers => now,
    describe_topic_partitions: DescribeTopicPartitions => now,
    list_config_resources: ListConfigResources => now,
    elect_leaders: ElectLeaders => now,
    describe_quorum: DescribeQuorum => now,
    alter_partition_reassignments: AlterPartitionReassignments => now,
    list_partition_reassignments: ListPartitionReassignments => now,
}

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

/// Runs `work` on each item's owner shard, one hop per shard (items of one shard run
/// concurrently there), and returns the results in the items' order. Items whose shard has
/// stopped get `unavailable()`.
pub async fn fan_out<H, T, R, F, Fut>(
    shard: &Rc<H>,
    items: Vec<(ShardId, T)>,
    work: F,
    unavailable: impl Fn() -> R,
) -> Vec<R>
where
    H: OnShard,
    T: Send + 'static,
    R: Send + 'static,
    F: Fn(Rc<H>, T) -> Fut + Send + Clone + 'static,
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
pub async fn fan_out_per_shard<H, T, R, F, Fut>(
    shard: &Rc<H>,
    items: Vec<(ShardId, T)>,
    work: F,
    unavailable: impl Fn() -> R,
) -> Vec<R>
where
    H: OnShard,
    T: Send + 'static,
    R: Send + 'static,
    F: Fn(Rc<H>, Vec<T>) -> Fut + Send + Clone + 'static,
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
        let call = shard.on_shard(owner, move |target| work(target, batch));
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
pub async fn fan_out_slots<H, T, R, F, Fut>(
    shard: &Rc<H>,
    slots: Vec<Option<(ShardId, T)>>,
    work: F,
    unavailable: impl Fn() -> R,
    missing: impl Fn() -> R,
) -> Vec<R>
where
    H: OnShard,
    T: Send + 'static,
    R: Send + 'static,
    F: Fn(Rc<H>, T) -> Fut + Send + Clone + 'static,
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
/// The partition's leader as a request to another broker learns it (KIP-951): its node id
/// and leader epoch, -1 each while it has none.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LeaderHint {
    pub id: i32,
    pub epoch: i32,
}

/// `Ok` when this broker leads `partition` of `topic`; otherwise who does.
pub fn check_leader(
    shard: &crate::node::Shard,
    topic: &crate::metadata::Topic,
    partition: crate::ids::PartitionId,
) -> Result<(), LeaderHint> {
    let state = topic.partition(partition);
    match state.and_then(|s| s.leader) {
        Some(leader) if leader == shard.identity.node_id => Ok(()),
        leader => Err(LeaderHint {
            id: leader.map_or(-1, |l| l.0),
            epoch: state.map_or(-1, |s| s.leader_epoch.0),
        }),
    }
}

pub fn error_code(error: Option<crate::error::KafkaCode>) -> i16 {
    error.map_or(0, |e| e.code())
}

pub fn str_bytes(text: impl Into<String>) -> StrBytes {
    StrBytes::from_string(text.into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::mesh::ShardUnavailable;
    use std::cell::RefCell;

    /// A shard handle without a mesh: a hop runs the work at once with the target's handle,
    /// records the hop, and fails for a stopped shard.
    struct Shards {
        id: ShardId,
        stopped: Vec<ShardId>,
        hops: Rc<RefCell<Vec<ShardId>>>,
    }

    impl OnShard for Shards {
        fn shard_id(&self) -> ShardId {
            self.id
        }

        async fn on_shard<R, F, Fut>(self: &Rc<Self>, target: ShardId, work: F) -> Result<R, ShardUnavailable>
        where
            R: Send + 'static,
            F: FnOnce(Rc<Self>) -> Fut + Send + 'static,
            Fut: Future<Output = R> + 'static,
        {
            self.hops.borrow_mut().push(target);
            if self.stopped.contains(&target) {
                return Err(ShardUnavailable(target));
            }
            let there = Rc::new(Shards {
                id: target,
                stopped: self.stopped.clone(),
                hops: self.hops.clone(),
            });
            Ok(work(there).await)
        }
    }

    fn shards(stopped: &[usize]) -> Rc<Shards> {
        Rc::new(Shards {
            id: ShardId(0),
            stopped: stopped.iter().map(|&s| ShardId(s)).collect(),
            hops: Rc::default(),
        })
    }

    #[test]
    fn fan_out_runs_each_item_on_its_owner_once_per_shard_and_answers_in_item_order() {
        let here = shards(&[]);
        let items = vec![
            (ShardId(1), "a"),
            (ShardId(0), "b"),
            (ShardId(1), "c"),
            (ShardId(2), "d"),
        ];
        let answers = futures::executor::block_on(fan_out(
            &here,
            items,
            |there: Rc<Shards>, item| async move { (there.id.0, item) },
            || (usize::MAX, "unavailable"),
        ));
        assert_eq!(answers, vec![(1, "a"), (0, "b"), (1, "c"), (2, "d")]);
        let mut hops = here.hops.borrow().clone();
        hops.sort();
        assert_eq!(hops, vec![ShardId(0), ShardId(1), ShardId(2)], "one hop per shard");
    }

    #[test]
    fn fan_out_per_shard_hands_a_shard_its_items_in_order_and_a_stopped_one_answers_unavailable() {
        let here = shards(&[2]);
        let items = vec![(ShardId(1), 10), (ShardId(2), 20), (ShardId(1), 11), (ShardId(2), 21)];
        let answers = futures::executor::block_on(fan_out_per_shard(
            &here,
            items,
            |there: Rc<Shards>, batch: Vec<i32>| async move {
                assert_eq!(batch, vec![10, 11], "shard {} got its items in order", there.id);
                batch.into_iter().map(|item| Some(item + 1)).collect()
            },
            || None,
        ));
        assert_eq!(answers, vec![Some(11), None, Some(12), None]);
    }

    #[test]
    fn unrouted_slots_answer_missing_without_a_hop() {
        let here = shards(&[]);
        let slots = vec![None, Some((ShardId(3), 7)), None];
        let answers = futures::executor::block_on(fan_out_slots(
            &here,
            slots,
            |_: Rc<Shards>, item| async move { item * 2 },
            || -1,
            || 0,
        ));
        assert_eq!(answers, vec![0, 14, 0]);
        assert_eq!(*here.hops.borrow(), vec![ShardId(3)]);
    }

    /// Every advertised API is dispatched, under the key its handler declares, once.
    #[test]
    fn every_advertised_api_is_dispatched_under_its_own_key() {
        let registered = registered();
        assert_eq!(registered.len(), APIS.len());
        for (_, dispatched_as, api) in &registered {
            assert_eq!(
                *dispatched_as, api.key,
                "{:?} is dispatched as {dispatched_as:?}",
                api.key
            );
            assert!(APIS.contains(api), "{:?} is not advertised", api.key);
        }
        let mut keys: Vec<i16> = APIS.iter().map(|api| api.key as i16).collect();
        keys.sort_unstable();
        keys.dedup();
        assert_eq!(keys.len(), APIS.len(), "an API registered twice");
        for api in APIS {
            assert_eq!(find(api.key as i16), Some(*api));
        }
    }

    /// A handler file (one declaring its `API`) that the registry does not list would be
    /// compiled but never dispatched nor advertised.
    #[test]
    fn every_handler_module_is_registered() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/src/kafka/handlers");
        let mut handlers: Vec<String> = std::fs::read_dir(dir)
            .expect("the handlers directory")
            .map(|entry| entry.expect("a directory entry").path())
            .filter(|path| std::fs::read_to_string(path).is_ok_and(|text| text.contains("\npub const API: Api =")))
            .map(|path| path.file_stem().expect("a file name").to_string_lossy().into_owned())
            .collect();
        handlers.sort();
        let mut registered: Vec<String> = registered().iter().map(|(module, ..)| module.to_string()).collect();
        registered.sort();
        assert_eq!(handlers, registered);
    }
}
