//! Fetch: read each partition on its owner shard, from the batch cache or disk; long-poll
//! until `min_bytes` have arrived or `max_wait_ms` has passed, woken by appends (never a
//! loop that re-reads without parking); bound the answer by `max_bytes` (capped by the
//! broker's `fetch.max.bytes`) and each partition's limit, but always return the first batch.
//!
//! As in Kafka, a fetch is answered at once when any partition has an error (an offset out
//! of range, an unknown partition): waiting cannot fix it. Otherwise, after each read that
//! falls short of `min_bytes`, the handler parks until some wanted partition's high
//! watermark moves past what that read saw, or the deadline passes.
//!
//! Hops: when every wanted partition lives on one shard (always so on a one-shard broker),
//! the whole long-poll is one hop: the owner reads, parks and reads again itself. A fetch
//! spanning shards needs the total across them: each round is one hop per shard that reads
//! and, in the same step, watches what it read; the handler waits for the first watch to fire
//! and starts the next round.
//!
//! Memory: each owner shard reads its partitions in request order, each within what is left
//! of the response's byte limit, and takes the bytes it returns from its fetch read budget
//! (`fetch.read.memory.bytes`) until the response is assembled. A read that finds the budget
//! spent returns no records this time (the consumer fetches again), so concurrent fetches
//! never wait on each other's budget and never deadlock.
//!
//! No copy: each partition's records are the stored `Bytes` (a cached batch's two pieces, or
//! slices of one disk read), registered as [`Splices`] and taken by reference when the
//! response is encoded; the connection sends them with vectored writes
//! ([`crate::kafka::frame`]). Only batches under [`BATCH_COPY_BYTES_MAX`] are copied, joined
//! with their small neighbours, where one more piece would cost more than the copy.
//!
//! Fetch sessions (KIP-227) are not kept: the response's session id is 0, which tells the
//! client to send full fetch requests.

use std::collections::{BTreeMap, BTreeSet};
use std::rc::Rc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use futures::channel::oneshot;
use futures::future::Either;
use kafka_protocol::messages::fetch_request::FetchRequest;
use kafka_protocol::messages::fetch_response::{
    AbortedTransaction, FetchResponse, FetchableTopicResponse, PartitionData,
};
use kafka_protocol::messages::ApiKey;
use kafka_protocol::messages::{ProducerId, TopicName};

use crate::acl::{Operation, ResourceType};
use crate::constants::FETCH_WAIT_MS_MAX;
use crate::error::KafkaCode;
use crate::ids::{Offset, PartitionId, ShardId};
use crate::kafka::context::RequestContext;
use crate::kafka::frame::Splices;
use crate::kafka::handlers::{error_code, fan_out_per_shard, str_bytes, Api};
use crate::node::Shard;
use crate::record;
use crate::storage::batch::Stored;
use crate::storage::log::{ReadError, ReadLimit};
use crate::storage::txn_index::AbortedTxn;

/// `isolation_level` of a read_committed consumer.
const READ_COMMITTED: i8 = 1;

#[derive(Clone)]
struct Wanted {
    topic: String,
    partition: PartitionId,
    offset: Offset,
    max_bytes: usize,
    /// The follower fetching, for a replica's fetch: it reads up to the log end, and its
    /// fetch offset is what it holds.
    replica: Option<i32>,
    /// A read_committed consumer: it reads up to the last stable offset and is told which
    /// transactions in what it reads were aborted.
    read_committed: bool,
}

impl Wanted {
    fn limit(&self) -> ReadLimit {
        if self.replica.is_some() {
            ReadLimit::LogEnd
        } else if self.read_committed {
            ReadLimit::LastStable
        } else {
            ReadLimit::HighWatermark
        }
    }
}

struct Read {
    error: Option<KafkaCode>,
    high_watermark: i64,
    last_stable_offset: i64,
    /// For a read_committed consumer, the aborted transactions in the range it may read.
    aborted: Option<Vec<AbortedTxn>>,
    /// Where the read had to stop (the high watermark, or the log end for a replica): a
    /// long-poll waits for it to move.
    seen: i64,
    log_start_offset: i64,
    records: Vec<Stored>,
    /// Units of the owner shard's fetch read budget these records hold.
    budget_held: u64,
}

impl Read {
    fn failed(error: KafkaCode) -> Read {
        Read {
            error: Some(error),
            high_watermark: -1,
            last_stable_offset: -1,
            aborted: None,
            seen: -1,
            log_start_offset: -1,
            records: Vec::new(),
            budget_held: 0,
        }
    }

    fn bytes(&self) -> usize {
        self.records.iter().map(Stored::len).sum()
    }
}

/// A partition of the request: where it goes, or why it cannot.
enum Slot {
    Ready(ShardId, Wanted),
    Failed(KafkaCode),
}

/// The versions served.
pub const API: Api = Api::new(ApiKey::Fetch, 4, 18);

/// The response, and the stored record bytes it carries by reference (see
/// [`crate::kafka::frame`]): nothing is copied into the response.
pub async fn handle(ctx: &RequestContext<'_>, request: FetchRequest) -> (FetchResponse, Splices) {
    let shard = ctx.shard;
    let version = ctx.api_version;
    let started = Instant::now();
    let snapshot = shard.metadata();
    // A follower names itself: replica_id before v15, replica_state from v15 (KIP-903).
    let replica_id = if version >= 15 {
        request.replica_state.replica_id.0
    } else {
        request.replica_id.0
    };
    let replica = (replica_id >= 0).then_some(replica_id);
    let access = ctx.access();
    // A follower acts for the cluster; a consumer reads each topic.
    let follower_denied = replica.is_some() && !access.allows_cluster(Operation::ClusterAction);
    let mut topics = Vec::with_capacity(request.topics.len());
    let mut slots = Vec::new();
    for topic in &request.topics {
        let found = if version >= 13 {
            snapshot.topic_by_id(topic.topic_id)
        } else {
            snapshot.topic(&topic.topic.0)
        };
        let denied = follower_denied
            || (replica.is_none()
                && !(version >= 13 && found.is_none())
                && !access.allows(
                    Operation::Read,
                    ResourceType::Topic,
                    found.map_or(topic.topic.0.as_str(), |t| t.meta.name.as_str()),
                ));
        topics.push((
            topic.topic.clone(),
            topic.topic_id,
            topic.partitions.iter().map(|p| p.partition).collect::<Vec<_>>(),
        ));
        for p in &topic.partitions {
            let partition = PartitionId(p.partition);
            slots.push(match found {
                _ if denied => Slot::Failed(KafkaCode::TopicAuthorizationFailed),
                None if version >= 13 => Slot::Failed(KafkaCode::UnknownTopicId),
                None => Slot::Failed(KafkaCode::UnknownTopicOrPartition),
                Some(t) if p.current_leader_epoch > t.leader_epoch(partition).0 => {
                    Slot::Failed(KafkaCode::UnknownLeaderEpoch)
                }
                Some(t) if p.current_leader_epoch >= 0 && p.current_leader_epoch < t.leader_epoch(partition).0 => {
                    Slot::Failed(KafkaCode::FencedLeaderEpoch)
                }
                Some(t) if replica.is_some_and(|r| !t.is_replica(partition, crate::ids::NodeId(r))) => {
                    Slot::Failed(KafkaCode::NotLeaderOrFollower)
                }
                Some(t) => match t.owner(partition) {
                    None => Slot::Failed(KafkaCode::UnknownTopicOrPartition),
                    Some(owner) => Slot::Ready(
                        owner,
                        Wanted {
                            topic: t.meta.name.clone(),
                            partition,
                            offset: Offset(p.fetch_offset),
                            max_bytes: p.partition_max_bytes.max(1) as usize,
                            replica,
                            read_committed: request.isolation_level == READ_COMMITTED,
                        },
                    ),
                },
            });
        }
    }
    let wanted: Vec<(ShardId, Wanted)> = slots
        .iter()
        .filter_map(|slot| match slot {
            Slot::Ready(owner, wanted) => Some((*owner, wanted.clone())),
            Slot::Failed(_) => None,
        })
        .collect();
    let refused = wanted.len() < slots.len();
    let max_wait = Duration::from_millis((request.max_wait_ms.max(0) as u64).min(FETCH_WAIT_MS_MAX));
    let deadline = started + max_wait;
    let response_max = (request.max_bytes.max(1) as u64).min(shard.config.fetch_max_bytes) as usize;
    // More than the response may carry can never arrive: waiting for it would only wait out
    // the deadline with the answer in hand.
    let min_bytes = (request.min_bytes.max(0) as usize).min(response_max);
    let wait = Wait { min_bytes, deadline };
    let mut reads = match single_owner(&wanted) {
        // Every partition on one shard (always so on a one-shard broker): the read and the
        // long-poll are one hop, the owner parking between reads itself.
        Some(owner) if !refused => {
            let partitions: Vec<Wanted> = wanted.iter().map(|(_, w)| w.clone()).collect();
            shard
                .invoke_on(owner, move |target| read_until(target, partitions, response_max, wait))
                .await
                .unwrap_or_else(|_| {
                    wanted
                        .iter()
                        .map(|_| Read::failed(KafkaCode::NotLeaderOrFollower))
                        .collect()
                })
        }
        // Answered at once: nothing wanted, or a partition refused.
        _ if refused || wanted.is_empty() => read_all(shard, &wanted, response_max).await,
        _ => read_across_shards(shard, &wanted, response_max, wait).await,
    };
    limit_response_bytes(&mut reads, response_max);
    release_budget(shard, &wanted, &mut reads);

    let mut reads = reads.into_iter();
    let mut slots = slots.into_iter();
    // Registered in the order the codec writes the partitions: topics, then partitions.
    let mut splices = Splices::default();
    let responses = topics
        .into_iter()
        .map(|(name, id, partitions)| {
            let partitions = partitions
                .into_iter()
                .map(|partition| {
                    let read = match slots.next().expect("one slot per partition") {
                        Slot::Ready(..) => reads.next().expect("one read per ready slot"),
                        Slot::Failed(code) => Read::failed(code),
                    };
                    PartitionData::default()
                        .with_partition_index(partition)
                        .with_error_code(error_code(read.error))
                        .with_high_watermark(read.high_watermark)
                        .with_last_stable_offset(read.last_stable_offset)
                        .with_aborted_transactions(read.aborted.map(|aborted| {
                            aborted
                                .into_iter()
                                .map(|a| {
                                    AbortedTransaction::default()
                                        .with_producer_id(ProducerId(a.producer_id))
                                        .with_first_offset(a.first_offset.0)
                                })
                                .collect()
                        }))
                        .with_log_start_offset(read.log_start_offset)
                        .with_records(Some(splices.records(response_pieces(read.records))))
                })
                .collect();
            let name = if version >= 13 { TopicName(str_bytes("")) } else { name };
            FetchableTopicResponse::default()
                .with_topic(name)
                .with_topic_id(id)
                .with_partitions(partitions)
        })
        .collect();
    (FetchResponse::default().with_responses(responses), splices)
}

async fn read_all(shard: &Rc<Shard>, wanted: &[(ShardId, Wanted)], response_max: usize) -> Vec<Read> {
    fan_out_per_shard(
        shard,
        wanted.to_vec(),
        move |target, partitions| read_shard(target, partitions, response_max),
        || Read::failed(KafkaCode::NotLeaderOrFollower),
    )
    .await
}

/// A wanted partition on its way to its owner shard. The first of each shard carries that
/// shard's wake-up, which the owner fires when an append could change the answer.
struct Watched {
    wanted: Wanted,
    wake: Option<oneshot::Sender<()>>,
}

/// A fetch whose partitions live on several shards: each round is one hop per shard, which
/// reads and, in the same step, registers a watch on what it read; the handler waits for the
/// first watch to fire (or the deadline) and reads again. Watches of a round end when the
/// round is over (their receivers dropped), so none outlives its fetch.
async fn read_across_shards(
    shard: &Rc<Shard>,
    wanted: &[(ShardId, Wanted)],
    response_max: usize,
    wait: Wait,
) -> Vec<Read> {
    loop {
        let mut wakes = Vec::new();
        let mut armed = BTreeSet::new();
        let items: Vec<(ShardId, Watched)> = wanted
            .iter()
            .map(|(owner, w)| {
                let wake = armed.insert(*owner).then(|| {
                    let (sender, receiver) = oneshot::channel();
                    wakes.push(receiver);
                    sender
                });
                (
                    *owner,
                    Watched {
                        wanted: w.clone(),
                        wake,
                    },
                )
            })
            .collect();
        let mut reads = fan_out_per_shard(
            shard,
            items,
            move |target, items| read_and_watch(target, items, response_max, wait),
            || Read::failed(KafkaCode::NotLeaderOrFollower),
        )
        .await;
        if wait.satisfied(&reads) {
            return reads;
        }
        // What the reads hold goes back with its budget: the wait holds nothing.
        release_budget(shard, wanted, &mut reads);
        drop(reads);
        // A shard that set no watch dropped its wake-up: that one never fires.
        let fired = wakes.into_iter().map(|wake| {
            Box::pin(async move {
                if wake.await.is_err() {
                    futures::future::pending::<()>().await;
                }
            })
        });
        let remaining = wait.deadline.saturating_duration_since(Instant::now());
        futures::future::select(
            futures::future::select_all(fired),
            Box::pin(crate::runtime::sleep(remaining)),
        )
        .await;
    }
}

/// Runs on the owner shard: reads its partitions and, unless what it read settles the fetch
/// on its own, watches them for the handler.
async fn read_and_watch(shard: Rc<Shard>, items: Vec<Watched>, response_max: usize, wait: Wait) -> Vec<Read> {
    let mut wake = None;
    let mut partitions = Vec::with_capacity(items.len());
    for item in items {
        wake = wake.or(item.wake);
        partitions.push(item.wanted);
    }
    let reads = read_shard(shard.clone(), partitions.clone(), response_max).await;
    if let Some(wake) = wake {
        if !wait.satisfied(&reads) {
            watch(&shard, &partitions, &reads, wait.deadline, wake);
        }
    }
    reads
}

/// Fires `wake` once any of `partitions` has a high watermark past the one its read saw:
/// checked now, right after the reads, so no append made since is missed. The watch ends at
/// the deadline, or as soon as the handler stops listening.
fn watch(shard: &Rc<Shard>, partitions: &[Wanted], reads: &[Read], deadline: Instant, mut wake: oneshot::Sender<()>) {
    let mut signals = Vec::with_capacity(partitions.len());
    for (w, read) in partitions.iter().zip(reads) {
        match shard.partition(&w.topic, w.partition) {
            Some(log) if log.read_end(w.limit()).0 == read.seen => signals.push(match w.limit() {
                ReadLimit::LogEnd => log.appended.wait(),
                ReadLimit::HighWatermark | ReadLimit::LastStable => log.signal.wait(),
            }),
            // Appended to (or gone) since the read: the handler reads again at once.
            _ => {
                let _ = wake.send(());
                return;
            }
        }
    }
    crate::runtime::spawn_detached(async move {
        let appended = {
            let remaining = deadline.saturating_duration_since(Instant::now());
            let stop = futures::future::select(wake.cancellation(), Box::pin(crate::runtime::sleep(remaining)));
            matches!(
                futures::future::select(futures::future::select_all(signals), stop).await,
                Either::Left(_)
            )
        };
        if appended {
            let _ = wake.send(());
        }
    });
}

/// When a fetch is answered: once its reads hold `min_bytes` (or any error, or nothing was
/// wanted), or at `deadline`.
#[derive(Clone, Copy)]
struct Wait {
    min_bytes: usize,
    deadline: Instant,
}

impl Wait {
    fn satisfied(&self, reads: &[Read]) -> bool {
        reads.is_empty()
            || reads.iter().any(|r| r.error.is_some())
            || total_bytes(reads) >= self.min_bytes
            || Instant::now() >= self.deadline
    }
}

/// The one shard every wanted partition lives on, if there is one.
fn single_owner(wanted: &[(ShardId, Wanted)]) -> Option<ShardId> {
    let first = wanted.first()?.0;
    wanted.iter().all(|(owner, _)| *owner == first).then_some(first)
}

/// Runs on the owner shard of every wanted partition: reads them, and until `wait` is
/// satisfied gives the read budget back, parks until some partition's high watermark moves
/// past what its read saw (checked and registered right after the read, so no append is
/// missed), and reads again.
async fn read_until(shard: Rc<Shard>, partitions: Vec<Wanted>, response_max: usize, wait: Wait) -> Vec<Read> {
    loop {
        let reads = read_shard(shard.clone(), partitions.clone(), response_max).await;
        if wait.satisfied(&reads) {
            return reads;
        }
        let mut signals = Vec::with_capacity(partitions.len());
        for (w, read) in partitions.iter().zip(&reads) {
            match shard.partition(&w.topic, w.partition) {
                Some(log) if log.read_end(w.limit()).0 == read.seen => signals.push(match w.limit() {
                    ReadLimit::LogEnd => log.appended.wait(),
                    ReadLimit::HighWatermark | ReadLimit::LastStable => log.signal.wait(),
                }),
                // Appended to (or gone) since the read: read again at once.
                _ => {
                    signals.clear();
                    break;
                }
            }
        }
        // What the reads hold goes back with its budget: the wait holds nothing.
        let held: u64 = reads.iter().map(|r| r.budget_held).sum();
        drop(reads);
        shard.fetch_read_budget.signal(held);
        if signals.is_empty() {
            continue;
        }
        let remaining = wait.deadline.saturating_duration_since(Instant::now());
        let any_append = futures::future::select_all(signals);
        futures::future::select(Box::pin(any_append), Box::pin(crate::runtime::sleep(remaining))).await;
    }
}

/// Runs on the owner shard: its partitions in request order, each within what is left of
/// the response's limit (the first with data may return one batch over it).
async fn read_shard(shard: Rc<Shard>, partitions: Vec<Wanted>, response_max: usize) -> Vec<Read> {
    let mut used = 0usize;
    let mut reads = Vec::with_capacity(partitions.len());
    for wanted in partitions {
        let left = response_max.saturating_sub(used);
        let read = read_one(&shard, wanted, left).await;
        used += read.bytes();
        reads.push(read);
    }
    reads
}

/// Reads one partition, at most `left` bytes (but one whole batch when any is there and
/// `left` is not zero), holding what it returns from the shard's fetch read budget.
async fn read_one(shard: &Rc<Shard>, wanted: Wanted, left: usize) -> Read {
    let log = match shard.log_for(&wanted.topic, wanted.partition) {
        Ok(log) => log,
        Err(code) => return Read::failed(code),
    };
    if let Some(replica) = wanted.replica {
        // Everything below its fetch offset the follower holds durably.
        log.follower_fetched(replica, wanted.offset);
        shard.follower_fetched(&log, replica, wanted.offset);
    }
    let high_watermark = log.high_watermark().0;
    let last_stable_offset = log.last_stable_offset();
    let seen = log.read_end(wanted.limit()).0;
    let log_start_offset = log.log_start_offset().0;
    // The aborts in what this read may return (a superset of what it returns is harmless:
    // a consumer applies an abort only to the batches of its producer that it is given).
    let aborted = wanted
        .read_committed
        .then(|| log.aborted_overlapping(wanted.offset, last_stable_offset));
    let mut read = Read {
        error: None,
        high_watermark,
        last_stable_offset: last_stable_offset.0,
        aborted,
        seen,
        log_start_offset,
        records: Vec::new(),
        budget_held: 0,
    };
    if wanted.offset < log.log_start_offset() || wanted.offset > log.end_offset() {
        read.error = Some(KafkaCode::OffsetOutOfRange);
        return read;
    }
    let limit = wanted.max_bytes.min(left);
    if limit == 0 || wanted.offset.0 >= seen {
        return read;
    }
    // The read may return one batch over `limit`; that excess is taken once the size is known.
    let budget = &shard.fetch_read_budget;
    let reserve = (limit as u64).min(shard.config.fetch_read_memory_bytes);
    if !budget.try_acquire(reserve).unwrap_or(false) {
        return read;
    }
    match log.read_upto(wanted.offset, limit, wanted.limit()).await {
        Ok(records) => {
            let bytes = records.iter().map(Stored::len).sum::<usize>() as u64;
            if bytes <= reserve {
                budget.signal(reserve - bytes);
                read.budget_held = bytes;
            } else {
                // One batch over the limit: hold what budget there is beyond the reservation.
                let extra = (bytes - reserve).min(budget.available());
                let _ = budget.try_acquire(extra);
                read.budget_held = reserve + extra;
            }
            read.records = records;
        }
        Err(ReadError::OutOfRange { .. }) => {
            budget.signal(reserve);
            read.error = Some(KafkaCode::OffsetOutOfRange);
        }
        Err(ReadError::Storage(e)) => {
            budget.signal(reserve);
            tracing::error!("{}-{}: read failed: {e}", wanted.topic, wanted.partition);
            read.error = Some(e.kafka_code());
        }
    }
    read
}

/// Gives the fetch read budget the reads hold back to their owner shards (one message per
/// shard, not awaited: the budget is returned as soon as the shard runs it).
fn release_budget(shard: &Rc<Shard>, wanted: &[(ShardId, Wanted)], reads: &mut [Read]) {
    let mut by_shard: BTreeMap<ShardId, u64> = BTreeMap::new();
    for ((owner, _), read) in wanted.iter().zip(reads.iter_mut()) {
        if read.budget_held > 0 {
            *by_shard.entry(*owner).or_default() += std::mem::take(&mut read.budget_held);
        }
    }
    for (owner, units) in by_shard {
        let shard = shard.clone();
        crate::runtime::spawn_detached(async move {
            let _ = shard
                .invoke_on(
                    owner,
                    move |target| async move { target.fetch_read_budget.signal(units) },
                )
                .await;
        });
    }
}

fn total_bytes(reads: &[Read]) -> usize {
    reads.iter().map(Read::bytes).sum()
}

/// Keeps the response within `max_bytes`: partitions are filled in request order, whole
/// batches while they fit, and once a batch does not fit its partition returns what came
/// before it. Only the response's very first batch may exceed `max_bytes`, so a batch larger
/// than the limit still makes progress.
fn limit_response_bytes(reads: &mut [Read], max_bytes: usize) {
    let mut used = 0usize;
    for read in reads.iter_mut() {
        if read.records.is_empty() {
            continue;
        }
        let mut kept = Vec::with_capacity(read.records.len());
        'parts: for part in read.records.drain(..) {
            if used + part.len() <= max_bytes {
                used += part.len();
                kept.push(part);
                continue;
            }
            let run = match part {
                Stored::Run(run) => run,
                Stored::Batch(batch) => {
                    if used == 0 {
                        used += batch.len();
                        kept.push(Stored::Batch(batch));
                    }
                    break 'parts;
                }
            };
            // A run of several batches (a disk read): keep its leading batches that fit.
            let ranges = record::split_batches(&run).unwrap_or_else(|_| std::iter::once(0..run.len()).collect());
            for range in ranges {
                let first_of_response = used == 0;
                if used + range.len() > max_bytes && !first_of_response {
                    break 'parts;
                }
                used += range.len();
                kept.push(Stored::Run(run.slice(range)));
            }
        }
        read.records = kept;
    }
}

/// Cached batches smaller than this are copied into the response rather than sent as pieces
/// of their own (the same bound under which [`Splices`] copies a whole field): one-record
/// batches would otherwise double the pieces of a vectored send for a few bytes each.
const BATCH_COPY_BYTES_MAX: usize = 1024;

/// A partition's records as the pieces of its response field: runs and large batches by
/// reference, consecutive small batches joined into one copied piece.
fn response_pieces(records: Vec<Stored>) -> Vec<Bytes> {
    let mut pieces = Vec::with_capacity(records.len() * 2);
    let mut small = BytesMut::new();
    for part in &records {
        match part {
            Stored::Batch(batch) if batch.len() < BATCH_COPY_BYTES_MAX => {
                batch
                    .pieces()
                    .into_iter()
                    .for_each(|piece| small.extend_from_slice(piece));
            }
            _ => {
                if !small.is_empty() {
                    pieces.push(small.split().freeze());
                }
                pieces.extend(part.pieces().cloned());
            }
        }
    }
    if !small.is_empty() {
        pieces.push(small.freeze());
    }
    pieces
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::batch::StoredBatch;

    /// A stand-in cached batch of `size` bytes filled with `fill` (but for its patched header).
    fn cached(fill: u8, size: usize) -> Stored {
        Stored::Batch(StoredBatch::assign(
            &Bytes::from(vec![fill; size]),
            Offset(i64::from(fill)),
            0,
            None,
        ))
    }

    fn read_of(records: Vec<Stored>) -> Read {
        Read {
            error: None,
            seen: -1,
            high_watermark: 0,
            last_stable_offset: 0,
            aborted: None,
            log_start_offset: 0,
            records,
            budget_held: 0,
        }
    }

    #[test]
    fn small_cached_batches_are_joined_and_large_ones_sent_by_reference() {
        let records = vec![
            cached(1, 200),
            cached(2, 300),
            cached(3, 5_000),
            Stored::Run(Bytes::from(vec![4u8; 100])),
            cached(5, 100),
        ];
        let expected: Vec<u8> = records.iter().flat_map(|r| r.contiguous().to_vec()).collect();
        let pieces = response_pieces(records);
        let sizes: Vec<usize> = pieces.iter().map(Bytes::len).collect();
        assert_eq!(
            sizes,
            vec![500, 61, 4_939, 100, 100],
            "two small batches joined, the large one as header and records, the run as it is"
        );
        assert_eq!(pieces.concat(), expected, "the pieces are the batches' bytes in order");
    }

    #[test]
    fn a_disk_run_is_cut_at_the_last_whole_batch_that_fits() {
        use crate::record::tests::encode_batch;
        use kafka_protocol::records::Compression;
        let batch = encode_batch(2, Compression::None);
        let size = batch.len();
        let run: Bytes = [batch.clone(), batch.clone(), batch.clone()].concat().into();
        let mut reads = [read_of(vec![Stored::Run(run.clone())]), read_of(vec![cached(9, 100)])];
        limit_response_bytes(&mut reads, 2 * size + 10);
        assert_eq!(reads[0].bytes(), 2 * size, "two of the run's three batches fit");
        assert_eq!(
            reads[1].bytes(),
            0,
            "the next partition gets nothing once one stopped short"
        );
        let mut reads = [read_of(vec![Stored::Run(run)])];
        limit_response_bytes(&mut reads, 1);
        assert_eq!(
            reads[0].bytes(),
            size,
            "the response's first batch, whole, whatever the limit"
        );
    }

    #[test]
    fn cached_batches_are_kept_whole_within_max_bytes_but_the_first_always() {
        let mut reads = [read_of(vec![cached(1, 600), cached(2, 600)])];
        limit_response_bytes(&mut reads, 1_000);
        assert_eq!(reads[0].bytes(), 600, "the second batch would pass 1,000 bytes");

        let mut reads = [
            read_of(vec![cached(1, 2_000), cached(2, 100)]),
            read_of(vec![cached(3, 100)]),
        ];
        limit_response_bytes(&mut reads, 1_000);
        assert_eq!(
            (reads[0].bytes(), reads[1].bytes()),
            (2_000, 0),
            "the response's first batch is kept whole though it passes the limit"
        );
    }
}
