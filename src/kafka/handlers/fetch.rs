//! Fetch: read each partition on its owner shard, from the batch cache or disk; long-poll
//! until `min_bytes` have arrived or `max_wait_ms` has passed, woken by appends (never a
//! sleep loop); bound the answer by `max_bytes` and each partition's limit, but always
//! return at least one whole batch.
//!
//! Fetch sessions (KIP-227) are not kept: the response's session id is 0, which tells the
//! client to send full fetch requests.

use std::collections::BTreeMap;
use std::rc::Rc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::fetch_request::FetchRequest;
use kafka_protocol::messages::fetch_response::{FetchResponse, FetchableTopicResponse, PartitionData};
use kafka_protocol::messages::TopicName;

use crate::constants::FETCH_WAIT_MS_MAX;
use crate::error::KafkaCode;
use crate::ids::{Offset, PartitionId, ShardId};
use crate::kafka::handlers::{error_code, fan_out, str_bytes};
use crate::shard::Shard;
use crate::storage::log::{ReadError, LEADER_EPOCH};

#[derive(Clone)]
struct Wanted {
    topic: String,
    partition: PartitionId,
    offset: Offset,
    max_bytes: usize,
}

struct Read {
    error: Option<KafkaCode>,
    high_watermark: i64,
    log_start_offset: i64,
    records: Vec<Bytes>,
}

impl Read {
    fn failed(error: KafkaCode) -> Read {
        Read {
            error: Some(error),
            high_watermark: -1,
            log_start_offset: -1,
            records: Vec::new(),
        }
    }

    fn bytes(&self) -> usize {
        self.records.iter().map(Bytes::len).sum()
    }
}

/// A partition of the request: where it goes, or why it cannot.
enum Slot {
    Ready(ShardId, Wanted),
    Failed(KafkaCode),
}

pub async fn handle(shard: &Rc<Shard>, version: i16, request: FetchRequest) -> FetchResponse {
    let started = Instant::now();
    let snapshot = shard.metadata();
    let mut topics = Vec::with_capacity(request.topics.len());
    let mut slots = Vec::new();
    for topic in &request.topics {
        let found = if version >= 13 {
            snapshot.topic_by_id(topic.topic_id)
        } else {
            snapshot.topic(&topic.topic.0)
        };
        topics.push((
            topic.topic.clone(),
            topic.topic_id,
            topic.partitions.iter().map(|p| p.partition).collect::<Vec<_>>(),
        ));
        for p in &topic.partitions {
            let partition = PartitionId(p.partition);
            slots.push(match found {
                None if version >= 13 => Slot::Failed(KafkaCode::UnknownTopicId),
                None => Slot::Failed(KafkaCode::UnknownTopicOrPartition),
                Some(_) if p.current_leader_epoch > LEADER_EPOCH => Slot::Failed(KafkaCode::UnknownLeaderEpoch),
                Some(t) => match t.owner(partition) {
                    None => Slot::Failed(KafkaCode::UnknownTopicOrPartition),
                    Some(owner) => Slot::Ready(
                        owner,
                        Wanted {
                            topic: t.meta.name.clone(),
                            partition,
                            offset: Offset(p.fetch_offset),
                            max_bytes: p.partition_max_bytes.max(1) as usize,
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
    let max_wait = Duration::from_millis((request.max_wait_ms.max(0) as u64).min(FETCH_WAIT_MS_MAX));
    let deadline = started + max_wait;
    let min_bytes = request.min_bytes.max(0) as usize;
    let mut reads = read_all(shard, &wanted).await;
    while total_bytes(&reads) < min_bytes.max(1) && Instant::now() < deadline && !wanted.is_empty() {
        wait_for_appends(shard, &wanted, deadline).await;
        reads = read_all(shard, &wanted).await;
    }
    limit_response_bytes(&mut reads, request.max_bytes.max(1) as usize);

    let mut reads = reads.into_iter();
    let mut slots = slots.into_iter();
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
                        .with_last_stable_offset(read.high_watermark)
                        .with_log_start_offset(read.log_start_offset)
                        .with_records(Some(concat(read.records)))
                })
                .collect();
            let name = if version >= 13 { TopicName(str_bytes("")) } else { name };
            FetchableTopicResponse::default()
                .with_topic(name)
                .with_topic_id(id)
                .with_partitions(partitions)
        })
        .collect();
    FetchResponse::default().with_responses(responses)
}

async fn read_all(shard: &Rc<Shard>, wanted: &[(ShardId, Wanted)]) -> Vec<Read> {
    fan_out(shard, wanted.to_vec(), read_one, || {
        Read::failed(KafkaCode::NotLeaderOrFollower)
    })
    .await
}

/// Runs on the partition's owner shard.
async fn read_one(shard: Rc<Shard>, wanted: Wanted) -> Read {
    let log = match shard.log_for(&wanted.topic, wanted.partition) {
        Ok(log) => log,
        Err(code) => return Read::failed(code),
    };
    let high_watermark = log.high_watermark().0;
    let log_start_offset = log.log_start_offset().0;
    let (error, records) = match log.read(wanted.offset, wanted.max_bytes).await {
        Ok(records) => (None, records),
        Err(ReadError::OutOfRange { .. }) => (Some(KafkaCode::OffsetOutOfRange), Vec::new()),
        Err(ReadError::Storage(e)) => {
            tracing::error!("{}-{}: read failed: {e}", wanted.topic, wanted.partition);
            (Some(e.kafka_code()), Vec::new())
        }
    };
    Read {
        error,
        high_watermark,
        log_start_offset,
        records,
    }
}

/// Parks until any wanted partition, on any shard, grows past the wanted offset, or the
/// deadline passes. Each shard checks and registers in one step, so no append is missed.
async fn wait_for_appends(shard: &Rc<Shard>, wanted: &[(ShardId, Wanted)], deadline: Instant) {
    let mut by_shard: BTreeMap<ShardId, Vec<Wanted>> = BTreeMap::new();
    for (owner, w) in wanted {
        by_shard.entry(*owner).or_default().push(w.clone());
    }
    let waits = by_shard.into_iter().map(|(owner, partitions)| {
        Box::pin(shard.invoke_on(owner, move |shard| async move {
            let mut signals = Vec::with_capacity(partitions.len());
            for w in &partitions {
                match shard.partition(&w.topic, w.partition) {
                    Some(log) if log.high_watermark() > w.offset => return,
                    Some(log) => signals.push(log.signal.wait()),
                    None => return,
                }
            }
            let remaining = deadline.saturating_duration_since(Instant::now());
            let any_append = futures::future::select_all(signals);
            futures::future::select(Box::pin(any_append), Box::pin(glommio::timer::sleep(remaining))).await;
        }))
    });
    let waits: Vec<_> = waits.collect();
    if waits.is_empty() {
        return;
    }
    let remaining = deadline.saturating_duration_since(Instant::now());
    let first = futures::future::select_all(waits);
    futures::future::select(first, Box::pin(glommio::timer::sleep(remaining))).await;
}

fn total_bytes(reads: &[Read]) -> usize {
    reads.iter().map(Read::bytes).sum()
}

/// Keeps the response within `max_bytes`: partitions are filled in order, and once the
/// budget is spent later partitions return no records (the first non-empty one is always
/// kept whole, so a batch larger than the budget still makes progress).
fn limit_response_bytes(reads: &mut [Read], max_bytes: usize) {
    let mut used = 0usize;
    for read in reads.iter_mut() {
        let size = read.bytes();
        if size == 0 {
            continue;
        }
        if used > 0 && used + size > max_bytes {
            let mut kept = Vec::new();
            for batch in read.records.drain(..) {
                if used + batch.len() > max_bytes {
                    break;
                }
                used += batch.len();
                kept.push(batch);
            }
            read.records = kept;
        } else {
            used += size;
        }
    }
}

fn concat(records: Vec<Bytes>) -> Bytes {
    match records.len() {
        0 => Bytes::new(),
        1 => records.into_iter().next().expect("one"),
        _ => {
            let mut joined = BytesMut::with_capacity(records.iter().map(Bytes::len).sum());
            for part in records {
                joined.extend_from_slice(&part);
            }
            joined.freeze()
        }
    }
}
