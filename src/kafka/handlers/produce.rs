//! Produce: validate each partition's batches on the connection's shard, append them on the
//! owner shards (one hop per shard), and answer per `acks` (0: no response at all).
//!
//! Handling has two stages. [`handle`] appends (the ordering stage: a connection's requests
//! pass it one at a time, so its batches reach each partition in the order sent) and returns
//! the second stage, a future that waits until the records are durable (acks=1 and all: on a
//! single node both mean the records are flushed, so they are visible, at the high watermark,
//! when the producer has its answer) and builds the response. The connection reads and appends its next request meanwhile, so one producer's
//! pipelined requests share flushes instead of each waiting out its own.
//!
//! A bad batch fails only its own partition, and nothing of that partition's records is
//! written: CORRUPT_MESSAGE for a batch whose length or CRC does not hold (damaged on the way;
//! the producer retries), INVALID_RECORD for an intact batch whose records do not parse or
//! break a rule, INVALID_TIMESTAMP for a record timestamp outside the topic's
//! `message.timestamp.before.max.ms` / `message.timestamp.after.max.ms` (see
//! [`record_validate`]), MESSAGE_TOO_LARGE over the topic's `max.message.bytes`,
//! UNKNOWN_TOPIC_OR_PARTITION for a partition that does not exist. From v8 the response
//! says why in `error_message`, and INVALID_RECORD and INVALID_TIMESTAMP name the failing
//! record in `record_errors`, as Kafka does.
//!
//! Idempotent producers (a producer id in the batch) are deduplicated by the partition log:
//! a retried batch is answered with its original offset, a sequence gap gets
//! OUT_OF_ORDER_SEQUENCE_NUMBER and an old epoch INVALID_PRODUCER_EPOCH. Such a batch must be
//! its partition's only one, as Kafka requires of every v3+ produce. A transactional batch
//! opens (or continues) its producer's transaction in the partition, which holds the last
//! stable offset until the coordinator's marker ends it. From v12, with transaction version 2
//! finalized (KIP-890 part 2), a transactional batch whose producer has no transaction open in
//! the partition at its epoch first adds the partition to the producer's transaction on its
//! coordinator (the implicit add: such a producer sends no AddPartitionsToTxn); a coordinator
//! that cannot answer yet makes the partition fail with the retriable NOT_ENOUGH_REPLICAS, as
//! in Kafka. Older producers add their partitions themselves and the leader does not check.

use std::rc::Rc;
use std::time::Instant;

use bytes::Bytes;
use futures::channel::oneshot;
use futures::future::LocalBoxFuture;
use kafka_protocol::messages::produce_request::ProduceRequest;
use kafka_protocol::messages::produce_response::{
    BatchIndexAndErrorMessage, LeaderIdAndEpoch, NodeEndpoint, PartitionProduceResponse, ProduceResponse,
    TopicProduceResponse,
};
use kafka_protocol::messages::{ApiKey, BrokerId};

use crate::acl::{Operation, ResourceType};
use crate::config::TopicConfig;
use crate::error::KafkaCode;
use crate::ids::PartitionId;
use crate::kafka::context::RequestContext;
use crate::kafka::handlers::{check_leader, error_code, fan_out, str_bytes, Api, LeaderHint};
use crate::kafka::record_validate::{self, Fault, Refusal, Rules};
use crate::metrics::Stage;
use crate::node::Shard;
use crate::record;
use crate::storage::log::{AppendError, AppendOutcome, PartitionLog};
use crate::storage::segment::now_ms;

/// What one partition's append came to.
struct Appended {
    error: Option<KafkaCode>,
    message: Option<String>,
    /// The records that made the batch fail, by index within their batch, and why.
    record_errors: Vec<(i32, String)>,
    base_offset: i64,
    log_append_time_ms: i64,
    log_start_offset: i64,
    /// Who leads the partition, when this broker does not.
    leader: Option<LeaderHint>,
    /// The final answer, once the records are written (and, for acks=all, durable).
    later: Option<oneshot::Receiver<Appended>>,
    /// When the final answer was known.
    ready_at: Option<Instant>,
}

impl Appended {
    fn failed(error: KafkaCode, message: Option<String>) -> Appended {
        Appended {
            error: Some(error),
            message,
            record_errors: Vec::new(),
            base_offset: -1,
            log_append_time_ms: -1,
            log_start_offset: -1,
            leader: None,
            later: None,
            ready_at: None,
        }
    }

    fn not_leader(leader: LeaderHint) -> Appended {
        Appended {
            leader: Some(leader),
            ..Appended::failed(KafkaCode::NotLeaderOrFollower, None)
        }
    }

    /// Waits for the write (and, for acks=all, the flush) to finish.
    async fn settle(mut self) -> Appended {
        let Some(later) = self.later.take() else {
            return self;
        };
        later
            .await
            .unwrap_or_else(|_| Appended::failed(KafkaCode::NotLeaderOrFollower, Some("the partition closed".into())))
    }
}

/// The second stage of a produce request: the response once its records are durable.
pub type Answer = LocalBoxFuture<'static, Option<ProduceResponse>>;

struct AppendWork {
    topic: String,
    partition: PartitionId,
    batches: Vec<Bytes>,
    durable: bool,
    /// acks=all: how long to wait for every in-sync replica to hold the records.
    replicated: Option<std::time::Duration>,
    /// A transaction-version-2 producer's transactional batch: its partition joins the
    /// transaction before the append, if it has not yet.
    implicit_add: Option<ImplicitAdd>,
}

/// Whose transaction a batch's partition joins (KIP-890's implicit add).
struct ImplicitAdd {
    transactional_id: String,
    producer_id: i64,
    epoch: i16,
}

/// The first Produce version whose transactional batches add their partitions themselves
/// (with transaction version 2 finalized).
const IMPLICIT_ADD_VERSION: i16 = 12;

/// The implicit add for `batches`, if they are a transaction-version-2 producer's.
fn implicit_add(shard: &Shard, version: i16, transactional_id: Option<&str>, batches: &[Bytes]) -> Option<ImplicitAdd> {
    if version < IMPLICIT_ADD_VERSION || shard.config.transaction_version < 2 {
        return None;
    }
    let header = record::BatchHeader::new(batches.first()?).ok()?;
    if !header.is_transactional() || header.producer_id() < 0 {
        return None;
    }
    Some(ImplicitAdd {
        transactional_id: transactional_id?.to_string(),
        producer_id: header.producer_id(),
        epoch: header.producer_epoch(),
    })
}

/// A coordinator's refusal of an implicit add as a produce error, as Kafka translates it:
/// what the client would retry anyway becomes NOT_ENOUGH_REPLICAS (retriable, and no metadata
/// refresh), a fenced producer INVALID_PRODUCER_EPOCH.
fn add_refused(code: KafkaCode) -> Appended {
    let message = format!("the partition could not be added to the transaction: {code:?}");
    let code = match code {
        KafkaCode::ConcurrentTransactions
        | KafkaCode::CoordinatorLoadInProgress
        | KafkaCode::CoordinatorNotAvailable
        | KafkaCode::NotCoordinator
        | KafkaCode::NetworkException => KafkaCode::NotEnoughReplicas,
        KafkaCode::ProducerFenced => KafkaCode::InvalidProducerEpoch,
        other => other,
    };
    Appended::failed(code, Some(message))
}

/// The versions served.
pub const API: Api = Api::advertised_from(ApiKey::Produce, 0, 3, 13);

/// `frame_bytes` is the size of the request frame the batches are slices of.
pub async fn handle(ctx: &RequestContext<'_>, request: ProduceRequest) -> Answer {
    let shard = ctx.shard;
    let version = ctx.api_version;
    let frame_bytes = ctx.frame_bytes;
    let started = Instant::now();
    let acks = request.acks;
    let transactional_id = request.transactional_id.as_ref().map(|id| id.0.to_string());
    let snapshot = shard.metadata();
    // One reading of the clock for the whole request, as Kafka validates a partition's
    // records against one `now`.
    let now_ms = now_ms();
    let mut items = Vec::new();
    // Per partition in request order: an early answer, or None to take the next append result.
    let mut early: Vec<Vec<Option<Appended>>> = Vec::with_capacity(request.topic_data.len());
    let access = ctx.access();
    let transaction_denied = transactional_id
        .as_deref()
        .is_some_and(|id| !access.allows(Operation::Write, ResourceType::TransactionalId, id));
    for topic in &request.topic_data {
        // From v13 topics are named by id (KIP-516).
        let by_id = version >= 13;
        let known = if by_id {
            snapshot.topic_by_id(topic.topic_id)
        } else {
            snapshot.topic(&topic.name.0)
        };
        let name = known.map_or_else(|| topic.name.0.to_string(), |t| t.meta.name.clone());
        let unknown = if by_id {
            KafkaCode::UnknownTopicId
        } else {
            KafkaCode::UnknownTopicOrPartition
        };
        // Authorization comes before existence, but for a topic id nobody knows.
        let denied = !(by_id && known.is_none() || access.allows(Operation::Write, ResourceType::Topic, &name));
        let mut row = Vec::with_capacity(topic.partition_data.len());
        for data in &topic.partition_data {
            let partition = PartitionId(data.index);
            let found = known.and_then(|t| t.owner(partition).map(|owner| (t, owner)));
            let not_led = found.and_then(|(topic, _)| check_leader(shard, topic, partition).err());
            let answer = match found {
                _ if !(-1..=1).contains(&acks) => Err(Appended::failed(KafkaCode::InvalidRequiredAcks, None)),
                _ if transaction_denied => Err(Appended::failed(KafkaCode::TransactionalIdAuthorizationFailed, None)),
                _ if denied => Err(Appended::failed(KafkaCode::TopicAuthorizationFailed, None)),
                None if known.is_none() => Err(Appended::failed(unknown, None)),
                None => Err(Appended::failed(KafkaCode::UnknownTopicOrPartition, None)),
                Some((topic, _)) if topic.meta.internal => Err(Appended::failed(
                    KafkaCode::InvalidTopicException,
                    Some(format!("Producing to internal topic {name} is not allowed")),
                )),
                Some(_) if not_led.is_some() => Err(Appended::not_leader(not_led.expect("guarded"))),
                Some((topic, owner)) => check_batches(data.records.as_ref(), &topic.config, now_ms, frame_bytes)
                    .map(|batches| (owner, batches)),
            };
            match answer {
                Ok((owner, batches)) => {
                    let implicit_add = implicit_add(shard, version, transactional_id.as_deref(), &batches);
                    items.push((
                        owner,
                        AppendWork {
                            topic: name.clone(),
                            partition,
                            batches,
                            // acks=1 waits for the flush too: the high watermark (what
                            // Fetch and ListOffsets show) is the durable end, and a record
                            // must be visible by the time its producer has the answer.
                            durable: acks != 0,
                            replicated: (acks == -1)
                                .then(|| std::time::Duration::from_millis(request.timeout_ms.max(0) as u64)),
                            implicit_add,
                        },
                    ));
                    row.push(None);
                }
                Err(failure) => row.push(Some(failure)),
            }
        }
        early.push(row);
    }
    let appended = fan_out(shard, items, append, || {
        Appended::failed(KafkaCode::NotLeaderOrFollower, None)
    })
    .await;
    shard.metrics.stage(Stage::Route, started.elapsed());
    let shard = shard.clone();
    let listener = ctx.session.listener.clone();
    Box::pin(async move {
        let settled = futures::future::join_all(appended.into_iter().map(Appended::settle)).await;
        // The connection's writer polls this when it reaches the response, so the time
        // since the last partition answered is how long the response waited for it.
        if let Some(ready) = settled.iter().filter_map(|a| a.ready_at).max() {
            if acks != 0 {
                shard.metrics.stage(Stage::ResponseWait, ready.elapsed());
            }
        }
        (acks != 0).then(|| respond(version, request, early, settled, &shard, &listener))
    })
}

/// The response, in request order: early answers where a partition was refused up front,
/// append results for the rest.
fn respond(
    version: i16,
    request: ProduceRequest,
    early: Vec<Vec<Option<Appended>>>,
    appended: Vec<Appended>,
    shard: &Shard,
    listener: &str,
) -> ProduceResponse {
    let mut appended = appended.into_iter();
    // KIP-951: partitions refused as not led here name their leader, and the response
    // carries those leaders' endpoints, so the client moves without a metadata round trip.
    let mut leaders = std::collections::BTreeSet::new();
    let responses = request
        .topic_data
        .into_iter()
        .zip(early)
        .map(|(topic, row)| {
            let partitions = topic
                .partition_data
                .iter()
                .zip(row)
                .map(|(data, answer)| {
                    let a = answer.unwrap_or_else(|| appended.next().expect("one result per append"));
                    let response = PartitionProduceResponse::default()
                        .with_index(data.index)
                        .with_error_code(error_code(a.error))
                        .with_base_offset(a.base_offset)
                        .with_log_append_time_ms(a.log_append_time_ms)
                        .with_log_start_offset(a.log_start_offset);
                    let response = match a.leader {
                        Some(leader) if version >= 10 => {
                            if leader.id >= 0 {
                                leaders.insert(leader.id);
                            }
                            response.with_current_leader(
                                LeaderIdAndEpoch::default()
                                    .with_leader_id(BrokerId(leader.id))
                                    .with_leader_epoch(leader.epoch),
                            )
                        }
                        _ => response,
                    };
                    if version >= 8 {
                        let record_errors = a
                            .record_errors
                            .into_iter()
                            .map(|(index, message)| {
                                BatchIndexAndErrorMessage::default()
                                    .with_batch_index(index)
                                    .with_batch_index_error_message(Some(str_bytes(message)))
                            })
                            .collect();
                        response
                            .with_error_message(a.message.map(str_bytes))
                            .with_record_errors(record_errors)
                    } else {
                        response
                    }
                })
                .collect();
            TopicProduceResponse::default()
                .with_name(topic.name)
                .with_topic_id(topic.topic_id)
                .with_partition_responses(partitions)
        })
        .collect();
    let endpoints = if version >= 10 {
        shard
            .brokers_on(listener)
            .into_iter()
            .filter(|b| leaders.contains(&b.id.0))
            .map(|b| {
                NodeEndpoint::default()
                    .with_node_id(BrokerId(b.id.0))
                    .with_host(str_bytes(b.host))
                    .with_port(i32::from(b.port))
            })
            .collect()
    } else {
        Vec::new()
    };
    ProduceResponse::default()
        .with_responses(responses)
        .with_node_endpoints(endpoints)
}

/// On the partition's leader shard: the refusal for acks=all while fewer replicas are in
/// sync than the topic's `min.insync.replicas` (`code`: NOT_ENOUGH_REPLICAS before the
/// append, NOT_ENOUGH_REPLICAS_AFTER_APPEND after it), as Kafka words it.
fn under_min_isr(shard: &Shard, topic: &str, partition: PartitionId, code: KafkaCode) -> Option<Appended> {
    let snapshot = shard.metadata();
    let topic = snapshot.topic(topic)?;
    let isr = shard.in_sync_replicas(topic, partition);
    let min = usize::try_from(topic.config.min_insync_replicas).unwrap_or(0);
    (isr < min).then(|| {
        Appended::failed(
            code,
            Some(format!(
                "The size of the current ISR ({isr}) is insufficient to satisfy the min.isr requirement of {min} for \
                 partition {}-{}",
                topic.meta.name, partition.0
            )),
        )
    })
}

/// Splits and validates a partition's records: every batch whole, v2, CRC-clean, within
/// `max.message.bytes`, and every record inside well-formed and within the topic's timestamp
/// bounds ([`record_validate::validate_produced`]). The first bad batch fails the partition.
///
/// The log keeps a batch by reference (its cache holds it until evicted), so a batch stays a
/// slice of the request frame only when it is most of that frame ([`owns_its_frame`]); any
/// other is copied out, so that no small cached batch keeps a large frame alive.
fn check_batches(
    records: Option<&Bytes>,
    config: &TopicConfig,
    now_ms: i64,
    frame_bytes: usize,
) -> Result<Vec<Bytes>, Appended> {
    let corrupt = |reason: String| Appended::failed(KafkaCode::CorruptMessage, Some(reason));
    let records = match records {
        Some(records) if !records.is_empty() => records,
        _ => return Err(corrupt("no record batch".into())),
    };
    let ranges = record::split_batches(records).map_err(|e| corrupt(e.to_string()))?;
    let rules = Rules::for_topic(config, now_ms);
    let several = ranges.len() > 1;
    let mut batches = Vec::with_capacity(ranges.len());
    let mut idempotent = false;
    for (position, range) in ranges.into_iter().enumerate() {
        let batch = records.slice(range);
        if batch.len() as u64 > config.max_message_bytes {
            return Err(Appended::failed(
                KafkaCode::MessageTooLarge,
                Some(format!(
                    "batch of {} bytes exceeds max.message.bytes {}",
                    batch.len(),
                    config.max_message_bytes
                )),
            ));
        }
        let checked = record_validate::validate_produced(&batch, &rules).map(|_| ());
        let batch = match checked {
            Ok(()) if owns_its_frame(batch.len(), frame_bytes) => batch,
            Ok(()) => Bytes::copy_from_slice(&batch),
            // Every record is valid but the header's maximum is not theirs: Kafka rewrites it,
            // and so does Sluice, on a copy of this one batch (the only re-encoding it does).
            Err(Refusal {
                fault: Fault::MaxTimestamp { largest, .. },
                ..
            }) => {
                let mut rewritten = batch.to_vec();
                record::set_max_timestamp(&mut rewritten, largest);
                Bytes::from(rewritten)
            }
            Err(refusal) => {
                // Several batches in one partition are rare (v3+ clients send one); name which.
                let message = if several {
                    format!("batch {position}: {refusal}")
                } else {
                    refusal.to_string()
                };
                return Err(refused(refusal, message));
            }
        };
        let header = record::BatchHeader::new(&batch).expect("validated");
        idempotent |= header.producer_id() >= 0;
        batches.push(batch);
    }
    if idempotent && batches.len() > 1 {
        return Err(Appended::failed(
            KafkaCode::InvalidRecord,
            Some("an idempotent producer's batch must be the only one for its partition".into()),
        ));
    }
    Ok(batches)
}

/// Whether a batch of `batch_bytes` may keep its `frame_bytes` request frame alive: when it
/// is at least 7/8 of it, the memory it holds is at most 8/7 of what the cache counts for it.
fn owns_its_frame(batch_bytes: usize, frame_bytes: usize) -> bool {
    batch_bytes.saturating_mul(8) >= frame_bytes.saturating_mul(7)
}

/// The answer for a batch validation refused. INVALID_RECORD and INVALID_TIMESTAMP carry the
/// failing record in `record_errors`, so a Java producer fails that record with the reason
/// and the rest of its batch with a pointer to it (KIP-467).
fn refused(refusal: record_validate::Refusal, message: String) -> Appended {
    let code = refusal.kafka_code();
    let record_errors = match refusal.record {
        Some(index) if matches!(code, KafkaCode::InvalidRecord | KafkaCode::InvalidTimestamp) => {
            vec![(index, refusal.fault.to_string())]
        }
        _ => Vec::new(),
    };
    Appended {
        record_errors,
        ..Appended::failed(code, Some(message))
    }
}

/// Runs on the partition's owner shard: queues the batches (fixing their order) and returns
/// at once; a task there waits for the write and, for acks=all, the flush.
async fn append(shard: Rc<Shard>, work: AppendWork) -> Appended {
    let log = match shard.log_for(&work.topic, work.partition) {
        Ok(log) => log,
        Err(code) => return Appended::failed(code, None),
    };
    if shard.is_closing() {
        return Appended::failed(KafkaCode::NotLeaderOrFollower, Some("broker is shutting down".into()));
    }
    if work.replicated.is_some() {
        if let Some(refused) = under_min_isr(&shard, &work.topic, work.partition, KafkaCode::NotEnoughReplicas) {
            return refused;
        }
    }
    if let Some(add) = &work.implicit_add {
        if !log.in_transaction_at(add.producer_id, add.epoch) {
            let partition = vec![(work.topic.clone(), work.partition.0)];
            let added = crate::node::transactions::add_for_producer(
                &shard,
                &add.transactional_id,
                add.producer_id,
                add.epoch,
                partition,
            )
            .await;
            if let Err(code) = added {
                return add_refused(code);
            }
        }
    }
    let enqueued = Instant::now();
    let written = log.enqueue(&work.batches);
    let (done, later) = oneshot::channel();
    crate::runtime::spawn_detached(async move {
        let answer = finish(&shard, log, enqueued, written, work).await;
        let _ = done.send(Appended {
            ready_at: Some(Instant::now()),
            ..answer
        });
    });
    Appended {
        later: Some(later),
        ..Appended::failed(KafkaCode::UnknownServerError, None)
    }
}

/// The answer for one partition once its append is written (and durable, for acks=all);
/// counts the write's stages on the owner shard.
async fn finish(
    shard: &Shard,
    log: Rc<PartitionLog>,
    enqueued: Instant,
    written: oneshot::Receiver<Result<AppendOutcome, AppendError>>,
    work: AppendWork,
) -> Appended {
    let outcome = written.await.unwrap_or(Err(AppendError::Closed));
    let written_at = Instant::now();
    if let Ok(AppendOutcome {
        write_started: Some(started),
        ..
    }) = &outcome
    {
        shard
            .metrics
            .stage(Stage::WriteWait, started.saturating_duration_since(enqueued));
        shard
            .metrics
            .stage(Stage::Write, written_at.saturating_duration_since(*started));
    }
    let outcome = match outcome {
        Ok(outcome) => outcome,
        Err(AppendError::Closed) => return Appended::failed(KafkaCode::NotLeaderOrFollower, None),
        Err(AppendError::Sequence(e)) => {
            tracing::debug!("{}-{}: {e}", work.topic, work.partition);
            return Appended::failed(e.kafka_code(), Some(e.to_string()));
        }
        Err(AppendError::Storage(e)) => {
            tracing::error!("{}-{}: append failed: {e}", work.topic, work.partition);
            return Appended::failed(e.kafka_code(), Some(e.to_string()));
        }
        Err(
            e @ (AppendError::NotContiguous { .. } | AppendError::EpochBackwards { .. } | AppendError::InvalidBatch(_)),
        ) => {
            unreachable!(
                "{}-{}: a leader append failed as only a verbatim one can: {e}",
                work.topic, work.partition
            )
        }
    };
    if work.durable {
        if let Err(e) = log.wait_durable(outcome.next_offset).await {
            tracing::error!("{}-{}: flush failed: {e}", work.topic, work.partition);
            return Appended::failed(e.kafka_code(), Some(e.to_string()));
        }
        shard.metrics.stage(Stage::FlushWait, written_at.elapsed());
    }
    if let Some(timeout) = work.replicated {
        if let Some(failure) = wait_replicated(shard, &log, &work, outcome.next_offset, timeout).await {
            return failure;
        }
    }
    Appended {
        error: None,
        message: None,
        record_errors: Vec::new(),
        base_offset: outcome.base_offset.0,
        log_append_time_ms: outcome.log_append_time_ms.unwrap_or(-1),
        log_start_offset: log.log_start_offset().0,
        leader: None,
        later: None,
        ready_at: None,
    }
}

/// acks=all: waits until the high watermark covers the records (every in-sync replica
/// holds them), then checks the ISR still has `min.insync.replicas` members, as Kafka does.
async fn wait_replicated(
    shard: &Shard,
    log: &PartitionLog,
    work: &AppendWork,
    next_offset: crate::ids::Offset,
    timeout: std::time::Duration,
) -> Option<Appended> {
    match crate::runtime::timeout(timeout, log.wait_high_watermark(next_offset)).await {
        None => {
            return Some(Appended::failed(
                KafkaCode::RequestTimedOut,
                Some(format!(
                    "the in-sync replicas did not all hold the records within {} ms",
                    timeout.as_millis()
                )),
            ))
        }
        Some(Err(e)) => return Some(Appended::failed(KafkaCode::NotLeaderOrFollower, Some(e.to_string()))),
        Some(Ok(())) => {}
    }
    under_min_isr(
        shard,
        &work.topic,
        work.partition,
        KafkaCode::NotEnoughReplicasAfterAppend,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::tests::encode_batch;
    use kafka_protocol::records::Compression;

    /// `batch` with the producer fields set (id, epoch 0, sequence 0) and, when asked, the
    /// transactional attribute; the CRC made whole again.
    fn as_producer(batch: &Bytes, producer_id: i64, transactional: bool) -> Bytes {
        let mut bytes = batch.to_vec();
        bytes[43..51].copy_from_slice(&producer_id.to_be_bytes());
        bytes[51..53].copy_from_slice(&0i16.to_be_bytes());
        bytes[53..57].copy_from_slice(&0i32.to_be_bytes());
        if transactional {
            let attributes = i16::from_be_bytes([bytes[21], bytes[22]]) | 0x10;
            bytes[21..23].copy_from_slice(&attributes.to_be_bytes());
        }
        let crc = crc32c::crc32c(&bytes[21..]);
        bytes[17..21].copy_from_slice(&crc.to_be_bytes());
        Bytes::from(bytes)
    }

    fn check(records: Option<&Bytes>, config: &TopicConfig) -> Result<Vec<Bytes>, (Option<KafkaCode>, Option<String>)> {
        let now = 1_700_000_000_000;
        let frame = records.map_or(0, Bytes::len);
        check_batches(records, config, now, frame).map_err(|a| (a.error, a.message))
    }

    #[test]
    fn produce_batch_checks_answer_as_kafka_does() {
        let config = TopicConfig::default();
        assert_eq!(check(None, &config).unwrap_err().0, Some(KafkaCode::CorruptMessage));
        assert_eq!(
            check(Some(&Bytes::new()), &config).unwrap_err().0,
            Some(KafkaCode::CorruptMessage)
        );

        let one = encode_batch(3, Compression::None);
        let two: Bytes = [one.clone(), one.clone()].concat().into();
        assert_eq!(
            check(Some(&two), &config).unwrap().len(),
            2,
            "several plain batches are fine"
        );

        let mut small = config.clone();
        small.set("max.message.bytes", &(one.len() - 1).to_string()).unwrap();
        let (code, message) = check(Some(&one), &small).unwrap_err();
        assert_eq!(code, Some(KafkaCode::MessageTooLarge));
        assert!(message.unwrap().contains("max.message.bytes"));

        let mut damaged = one.to_vec();
        *damaged.last_mut().unwrap() ^= 1;
        assert_eq!(
            check(Some(&Bytes::from(damaged)), &config).unwrap_err().0,
            Some(KafkaCode::CorruptMessage)
        );

        let idempotent = as_producer(&one, 7, false);
        assert_eq!(check(Some(&idempotent), &config).unwrap().len(), 1);
        let both: Bytes = [idempotent.clone(), idempotent].concat().into();
        assert_eq!(
            check(Some(&both), &config).unwrap_err().0,
            Some(KafkaCode::InvalidRecord),
            "an idempotent batch must be alone in its partition"
        );

        let transactional = as_producer(&one, 7, true);
        assert_eq!(check(Some(&transactional), &config).unwrap().len(), 1);
    }

    #[test]
    fn a_batch_that_is_most_of_its_frame_stays_a_slice_of_it_and_another_is_copied() {
        let config = TopicConfig::default();
        let batch = encode_batch(3, Compression::None);
        let kept = check_batches(Some(&batch), &config, 1_700_000_000_000, batch.len())
            .map_err(|a| a.error)
            .unwrap();
        assert_eq!(kept[0].as_ptr(), batch.as_ptr(), "the frame's own bytes");
        let copied = check_batches(Some(&batch), &config, 1_700_000_000_000, batch.len() * 4)
            .map_err(|a| a.error)
            .unwrap();
        assert_ne!(copied[0].as_ptr(), batch.as_ptr(), "copied out of a larger frame");
        assert_eq!(copied[0], batch);
    }

    #[test]
    fn a_batch_keeps_its_frame_only_when_it_is_most_of_it() {
        assert!(owns_its_frame(875, 1000), "7/8 of the frame");
        assert!(!owns_its_frame(874, 1000));
        assert!(owns_its_frame(524_288, 524_400), "one large batch in its request");
        assert!(!owns_its_frame(170, 240), "a one-record batch is copied out");
        assert!(owns_its_frame(usize::MAX, usize::MAX), "no overflow");
    }
}
