//! The shard as a transaction coordinator's host: producer ids from the metadata authority,
//! and transaction markers written into partitions wherever they are led, those of this
//! broker directly on their owner shards and others' through WriteTxnMarkers.
//!
//! A marker counts as written once the partition's high watermark covers it (every in-sync
//! replica holds it, as acks=all), so a coordinator never completes a transaction whose
//! marker a leader failover could take back. A marker in `__consumer_offsets` also makes the
//! transaction's staged offsets the group's committed offsets (or drops them).
//!
//! A partition leader also speaks to coordinators for producers: a transaction-version-2
//! producer's first batch (or TxnOffsetCommit) in a partition adds that partition to its
//! transaction ([`add_for_producer`], KIP-890's implicit add), on this broker's coordinator
//! or through AddPartitionsToTxn v5 to the broker that leads the id's state partition.

use std::collections::BTreeMap;
use std::rc::Rc;
use std::time::Duration;

use futures::future::LocalBoxFuture;
use kafka_protocol::messages::add_partitions_to_txn_request::{
    AddPartitionsToTxnRequest, AddPartitionsToTxnTopic, AddPartitionsToTxnTransaction,
};
use kafka_protocol::messages::add_partitions_to_txn_response::AddPartitionsToTxnResponse;
use kafka_protocol::messages::write_txn_markers_request::{
    WritableTxnMarker, WritableTxnMarkerTopic, WriteTxnMarkersRequest,
};
use kafka_protocol::messages::write_txn_markers_response::WriteTxnMarkersResponse;
use kafka_protocol::messages::{ApiKey, ProducerId, TopicName, TransactionalId};

use crate::constants::COORDINATOR_REPLICATION_TIMEOUT;
use crate::error::KafkaCode;
use crate::ids::{NodeId, PartitionId, ShardId};
use crate::node::Shard;
use crate::record::Marker;
use crate::txn::{MarkerResults, MarkerWork, TxnCoordinator, TxnHost};

/// How long a coordinator waits for another broker to answer WriteTxnMarkers.
const REMOTE_MARKERS_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a leader waits for a coordinator on another broker to add a partition to a
/// producer's transaction.
const REMOTE_ADD_TIMEOUT: Duration = Duration::from_secs(10);

/// The AddPartitionsToTxn version a leader sends on a producer's behalf: v5 with
/// `verify_only` false adds the partitions (transaction version 2).
pub const ADD_FOR_PRODUCER_VERSION: i16 = 5;

impl TxnHost for Shard {
    fn transactions(&self) -> &TxnCoordinator {
        &self.transactions
    }

    fn allocate_producer_id(self: &Rc<Self>) -> LocalBoxFuture<'static, Result<i64, KafkaCode>> {
        let shard = self.clone();
        Box::pin(async move { shard.next_producer_id().await })
    }

    fn write_markers(self: &Rc<Self>, work: MarkerWork) -> LocalBoxFuture<'static, MarkerResults> {
        let shard = self.clone();
        Box::pin(async move { write_markers(&shard, work).await })
    }

    fn is_closing(&self) -> bool {
        Shard::is_closing(self)
    }
}

impl Shard {
    /// A producer id never handed out before: from this shard's block, refilled from the
    /// metadata authority (which persists each block before handing it out).
    pub async fn next_producer_id(self: &Rc<Self>) -> Result<i64, KafkaCode> {
        if self.producer_ids.borrow().is_empty() {
            let block = crate::node::authority::allocate_producer_ids(self)
                .await
                .map_err(|refusal| {
                    tracing::error!("allocating producer ids: {}", refusal.message);
                    refusal.code
                })?;
            let mut ids = self.producer_ids.borrow_mut();
            // A concurrent request may have refilled the range meanwhile; keep the later block.
            if ids.is_empty() {
                *ids = block;
            }
        }
        let id = self
            .producer_ids
            .borrow_mut()
            .next()
            .expect("a fresh block is not empty");
        Ok(id)
    }

    /// Takes up (or lets go of) the transaction state partitions this shard owns as its
    /// broker comes to lead them (or stops).
    pub async fn follow_transaction_state(self: &Rc<Self>) {
        let me = self.identity.node_id;
        let snapshot = self.metadata();
        let Some(topic) = snapshot.topic(crate::txn::TRANSACTION_STATE_TOPIC) else {
            return;
        };
        let led: Vec<(i32, i32)> = crate::txn::TRANSACTIONS
            .owned_partitions(self.as_ref())
            .into_iter()
            .filter(|p| topic.partition(*p).and_then(|state| state.leader) == Some(me))
            .filter(|p| self.partition(crate::txn::TRANSACTION_STATE_TOPIC, *p).is_some())
            .map(|p| (p.0, topic.leader_epoch(p).0))
            .collect();
        self.transactions
            .follow_leadership(self, &led, topic.partition_count())
            .await;
    }
}

/// Adds `partitions` (led here) to the transaction of producer `producer_id` at `epoch`
/// under transactional id `id`, on its coordinator wherever that is (KIP-890's implicit add,
/// for a transaction-version-2 producer that sends no AddPartitionsToTxn).
pub async fn add_for_producer(
    shard: &Rc<Shard>,
    id: &str,
    producer_id: i64,
    epoch: i16,
    partitions: Vec<(String, i32)>,
) -> Result<(), KafkaCode> {
    let snapshot = shard.metadata();
    let state = snapshot
        .topic(crate::txn::TRANSACTION_STATE_TOPIC)
        .ok_or(KafkaCode::CoordinatorNotAvailable)?;
    let partition = PartitionId(crate::coordinator::route::partition_for(id, state.partition_count()));
    let leader = state
        .partition(partition)
        .and_then(|p| p.leader)
        .ok_or(KafkaCode::CoordinatorNotAvailable)?;
    if leader == shard.identity.node_id {
        let id = id.to_string();
        return crate::txn::on_coordinator(shard, &id.clone(), move |host: Rc<Shard>| async move {
            host.transactions
                .add_partitions(&host, &id, producer_id, epoch, &partitions, true)
                .await
        })
        .await?;
    }
    let address = shard
        .brokers()
        .into_iter()
        .find(|b| b.id == leader)
        .map(|b| format!("{}:{}", b.host, b.port))
        .ok_or(KafkaCode::CoordinatorNotAvailable)?;
    add_remote(&address, id, producer_id, epoch, &partitions).await
}

/// AddPartitionsToTxn v5 to the coordinator's broker; the first partition's error, if any.
async fn add_remote(
    address: &str,
    id: &str,
    producer_id: i64,
    epoch: i16,
    partitions: &[(String, i32)],
) -> Result<(), KafkaCode> {
    let mut topics: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
    for (topic, partition) in partitions {
        topics.entry(topic.as_str()).or_default().push(*partition);
    }
    let request =
        AddPartitionsToTxnRequest::default().with_transactions(vec![AddPartitionsToTxnTransaction::default()
            .with_transactional_id(TransactionalId(crate::kafka::handlers::str_bytes(id.to_string())))
            .with_producer_id(ProducerId(producer_id))
            .with_producer_epoch(epoch)
            .with_verify_only(false)
            .with_topics(
                topics
                    .into_iter()
                    .map(|(name, partitions)| {
                        AddPartitionsToTxnTopic::default()
                            .with_name(TopicName(crate::kafka::handlers::str_bytes(name.to_string())))
                            .with_partitions(partitions)
                    })
                    .collect(),
            )]);
    let answer: Result<AddPartitionsToTxnResponse, _> = async {
        let mut client =
            crate::net::client::KafkaClient::connect(address, "sluice-partition-leader", REMOTE_ADD_TIMEOUT).await?;
        client
            .call(
                ApiKey::AddPartitionsToTxn,
                ADD_FOR_PRODUCER_VERSION,
                &request,
                REMOTE_ADD_TIMEOUT,
            )
            .await
    }
    .await;
    let response = answer.map_err(|e| {
        tracing::debug!(
            "adding partitions to transaction {} through {address}: {e}",
            crate::text::escape(id)
        );
        KafkaCode::CoordinatorNotAvailable
    })?;
    let code = |code: i16| KafkaCode::try_from_code(code).unwrap_or(KafkaCode::UnknownServerError);
    if response.error_code != 0 {
        return Err(code(response.error_code));
    }
    let first_error = response
        .results_by_transaction
        .iter()
        .flat_map(|t| t.topic_results.iter())
        .flat_map(|t| t.results_by_partition.iter())
        .map(|p| p.partition_error_code)
        .find(|c| *c != 0);
    match first_error {
        Some(c) => Err(code(c)),
        None if response.results_by_transaction.is_empty() => Err(KafkaCode::UnknownServerError),
        None => Ok(()),
    }
}

/// Writes `work`'s markers to each partition's leader: this broker's on their owner shards,
/// the rest by WriteTxnMarkers to their leaders. One result per partition, in no set order.
pub async fn write_markers(shard: &Rc<Shard>, work: MarkerWork) -> MarkerResults {
    let me = shard.identity.node_id;
    let snapshot = shard.metadata();
    let mut results = Vec::with_capacity(work.partitions.len());
    let mut by_leader: BTreeMap<NodeId, Vec<(String, i32)>> = BTreeMap::new();
    for (topic, partition) in &work.partitions {
        let leader = snapshot
            .topic(topic)
            .map(|t| t.partition(PartitionId(*partition)).and_then(|p| p.leader));
        match leader {
            None => results.push(((topic.clone(), *partition), Some(KafkaCode::UnknownTopicOrPartition))),
            Some(None) => results.push(((topic.clone(), *partition), Some(KafkaCode::NotLeaderOrFollower))),
            Some(Some(leader)) => by_leader.entry(leader).or_default().push((topic.clone(), *partition)),
        }
    }
    let brokers = shard.brokers();
    let rounds = by_leader.into_iter().map(|(leader, partitions)| {
        let work = MarkerWork {
            partitions,
            ..work.clone()
        };
        let address = brokers
            .iter()
            .find(|b| b.id == leader)
            .map(|b| format!("{}:{}", b.host, b.port));
        async move {
            if leader == me {
                return write_local(shard, work).await;
            }
            match address {
                Some(address) => write_remote(&address, work).await,
                None => fail_all(&work, KafkaCode::NotLeaderOrFollower),
            }
        }
    });
    for round in futures::future::join_all(rounds).await {
        results.extend(round);
    }
    results
}

fn fail_all(work: &MarkerWork, code: KafkaCode) -> MarkerResults {
    work.partitions.iter().map(|p| (p.clone(), Some(code))).collect()
}

/// Writes markers into partitions this broker leads, one hop per owner shard.
pub async fn write_local(shard: &Rc<Shard>, work: MarkerWork) -> MarkerResults {
    let snapshot = shard.metadata();
    let mut results = Vec::new();
    let mut by_owner: BTreeMap<ShardId, Vec<(String, i32)>> = BTreeMap::new();
    for (topic, partition) in &work.partitions {
        match snapshot.topic(topic).and_then(|t| t.owner(PartitionId(*partition))) {
            Some(owner) => by_owner.entry(owner).or_default().push((topic.clone(), *partition)),
            None => results.push(((topic.clone(), *partition), Some(KafkaCode::UnknownTopicOrPartition))),
        }
    }
    let hops = by_owner.into_iter().map(|(owner, partitions)| {
        let work = MarkerWork {
            partitions,
            ..work.clone()
        };
        let failed = fail_all(&work, KafkaCode::NotLeaderOrFollower);
        async move {
            shard
                .invoke_on(owner, move |target| async move { write_on_owner(&target, work).await })
                .await
                .unwrap_or(failed)
        }
    });
    for hop in futures::future::join_all(hops).await {
        results.extend(hop);
    }
    results
}

/// On the owner shard: each partition's marker appended, then made durable and replicated.
async fn write_on_owner(shard: &Rc<Shard>, work: MarkerWork) -> MarkerResults {
    let marker = Marker::from_commit(work.commit);
    let work = &work;
    let writes = work.partitions.iter().map(|(topic, partition)| async move {
        let code = write_one(shard, topic, PartitionId(*partition), work, marker)
            .await
            .err();
        ((topic.clone(), *partition), code)
    });
    futures::future::join_all(writes).await
}

async fn write_one(
    shard: &Rc<Shard>,
    topic: &str,
    partition: PartitionId,
    work: &MarkerWork,
    marker: Marker,
) -> Result<(), KafkaCode> {
    let log = shard.log_for(topic, partition)?;
    let appended = log
        .append_marker(work.producer_id, work.epoch, work.coordinator_epoch, marker)
        .await
        .map_err(|e| match e {
            crate::storage::log::AppendError::Closed => KafkaCode::NotLeaderOrFollower,
            crate::storage::log::AppendError::Sequence(e) => e.kafka_code(),
            e => {
                tracing::error!("{topic}-{partition}: writing a transaction marker: {e}");
                KafkaCode::KafkaStorageError
            }
        })?;
    log.flush().await.map_err(|e| {
        tracing::error!("{topic}-{partition}: flushing a transaction marker: {e}");
        KafkaCode::KafkaStorageError
    })?;
    match crate::runtime::timeout(
        COORDINATOR_REPLICATION_TIMEOUT,
        log.wait_high_watermark(appended.next_offset),
    )
    .await
    {
        Some(Ok(())) => {}
        Some(Err(_)) => return Err(KafkaCode::NotLeaderOrFollower),
        None => return Err(KafkaCode::NotEnoughReplicasAfterAppend),
    }
    if topic == crate::group::OFFSETS_TOPIC {
        shard
            .groups
            .complete_txn(shard, partition.0, work.producer_id, work.commit);
    }
    Ok(())
}

/// WriteTxnMarkers to another broker.
async fn write_remote(address: &str, work: MarkerWork) -> MarkerResults {
    let mut topics: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
    for (topic, partition) in &work.partitions {
        topics.entry(topic.as_str()).or_default().push(*partition);
    }
    let request = WriteTxnMarkersRequest::default().with_markers(vec![WritableTxnMarker::default()
        .with_producer_id(ProducerId(work.producer_id))
        .with_producer_epoch(work.epoch)
        .with_transaction_result(work.commit)
        .with_coordinator_epoch(work.coordinator_epoch)
        .with_topics(
            topics
                .into_iter()
                .map(|(name, partitions)| {
                    WritableTxnMarkerTopic::default()
                        .with_name(TopicName(crate::kafka::handlers::str_bytes(name.to_string())))
                        .with_partition_indexes(partitions)
                })
                .collect(),
        )]);
    let answer: Result<WriteTxnMarkersResponse, _> = async {
        let mut client =
            crate::net::client::KafkaClient::connect(address, "sluice-txn-coordinator", REMOTE_MARKERS_TIMEOUT).await?;
        client
            .call(ApiKey::WriteTxnMarkers, 1, &request, REMOTE_MARKERS_TIMEOUT)
            .await
    }
    .await;
    let response = match answer {
        Ok(response) => response,
        Err(e) => {
            tracing::debug!("writing transaction markers through {address}: {e}");
            return fail_all(&work, KafkaCode::NotLeaderOrFollower);
        }
    };
    let mut answered: BTreeMap<(String, i32), Option<KafkaCode>> = BTreeMap::new();
    for marker in response.markers {
        for topic in marker.topics {
            for partition in topic.partitions {
                let code = (partition.error_code != 0)
                    .then(|| KafkaCode::try_from_code(partition.error_code).unwrap_or(KafkaCode::UnknownServerError));
                answered.insert((topic.name.0.to_string(), partition.partition_index), code);
            }
        }
    }
    work.partitions
        .iter()
        .map(|p| {
            let code = answered.get(p).copied().unwrap_or(Some(KafkaCode::UnknownServerError));
            (p.clone(), code)
        })
        .collect()
}
