//! Idempotent-producer state of one partition: per producer id, its epoch and the sequence
//! ranges of its last few batches, so a retried batch is answered with its original offset
//! instead of being written twice, a gap is refused, and an old epoch is fenced.
//!
//! The state is a pure function of the log: [`ProducerState::record`] is applied to every
//! appended batch, and on open the log replays its batch headers from the last snapshot (or
//! from its start). Snapshots (`producer-state`, written on roll and on clean close) bound
//! that replay.
//!
//! Transactions: a transactional batch opens its producer's transaction in the partition (if
//! none is open) at its base offset; the producer's next marker (a control batch) closes it.
//! The open transactions' first offsets bound the last stable offset
//! ([`ProducerState::first_unstable_offset`]); each closing is reported to the log
//! ([`CompletedTxn`]), which indexes aborted ones. A producer with an open transaction is
//! never expired or evicted. A marker at a newer epoch moves the producer to it (the
//! coordinator fenced the old one), so the old epoch's batches are refused from then on. Each
//! producer remembers the coordinator epoch of its last marker: a marker from an older
//! coordinator (one that lost its state partition but does not know yet) is refused with
//! TRANSACTION_COORDINATOR_FENCED, as Kafka does.
//!
//! Sequence rules (Kafka's): a producer unknown to the partition may start at any sequence,
//! because retention or DeleteRecords may have removed its earlier batches; a known producer
//! must continue at `last + 1` (wrapping after `i32::MAX` to 0); a newer epoch must start at 0.

use std::collections::{BTreeSet, HashMap, VecDeque};

use crate::constants::{PRODUCERS_PER_PARTITION_MAX, PRODUCER_BATCHES_KEPT};
use crate::error::KafkaCode;
use crate::ids::Offset;
use crate::record::{BatchHeader, EndMarker, Marker};

/// A batch's place in its producer's sequence and in the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct BatchMeta {
    first_seq: i32,
    last_seq: i32,
    base_offset: Offset,
    last_offset: Offset,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct ProducerEntry {
    epoch: i16,
    /// The newest last; at most [`PRODUCER_BATCHES_KEPT`].
    batches: VecDeque<BatchMeta>,
    /// Broker time of the producer's last append, for `producer.id.expiration.ms`.
    last_append_ms: i64,
    /// The first offset of its open transaction in this partition.
    txn_first_offset: Option<Offset>,
    /// The coordinator epoch of its last marker here (-1: none yet).
    coordinator_epoch: i32,
}

/// A transaction that a marker closed in this partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CompletedTxn {
    pub producer_id: i64,
    pub first_offset: Offset,
    /// Where the marker is.
    pub marker_offset: Offset,
    pub marker: Marker,
}

/// What to do with an idempotent batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sequenced {
    /// Not a duplicate and in sequence: append it.
    Append,
    /// Already in the log at these offsets: answer success with them, write nothing.
    Duplicate { base_offset: Offset, last_offset: Offset },
}

/// Why an idempotent batch is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SequenceError {
    #[error("producer {producer_id} epoch {epoch} is older than the current epoch {current}: fenced")]
    Fenced { producer_id: i64, epoch: i16, current: i16 },
    #[error("producer {producer_id} epoch {epoch}: sequence {got} does not follow {last}")]
    OutOfOrder {
        producer_id: i64,
        epoch: i16,
        got: i32,
        last: i32,
    },
    #[error("producer {producer_id}: a new epoch {epoch} must start at sequence 0, not {got}")]
    NewEpochNotAtZero { producer_id: i64, epoch: i16, got: i32 },
    #[error("producer {producer_id}: a marker of coordinator epoch {got}, older than {current}: fenced")]
    CoordinatorFenced { producer_id: i64, got: i32, current: i32 },
}

impl SequenceError {
    pub fn kafka_code(&self) -> KafkaCode {
        match self {
            SequenceError::Fenced { .. } => KafkaCode::InvalidProducerEpoch,
            SequenceError::CoordinatorFenced { .. } => KafkaCode::TransactionCoordinatorFenced,
            SequenceError::OutOfOrder { .. } | SequenceError::NewEpochNotAtZero { .. } => {
                KafkaCode::OutOfOrderSequenceNumber
            }
        }
    }
}

/// The sequence of a batch's last record: sequences wrap from `i32::MAX` to 0.
fn last_sequence(first: i32, last_offset_delta: i32) -> i32 {
    ((i64::from(first) + i64::from(last_offset_delta)) % (i64::from(i32::MAX) + 1)) as i32
}

fn follows(last: i32, next: i32) -> bool {
    next == if last == i32::MAX { 0 } else { last + 1 }
}

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ProducerState {
    producers: HashMap<i64, ProducerEntry>,
    /// `(first offset, producer id)` of every open transaction: derived from `producers`.
    ongoing: BTreeSet<(Offset, i64)>,
}

/// What DescribeProducers reports of one producer of a partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ActiveProducer {
    pub producer_id: i64,
    pub epoch: i16,
    /// The sequence of the last record it wrote (-1 if none is remembered).
    pub last_sequence: i32,
    /// Broker time of its last append.
    pub last_append_ms: i64,
    /// The first offset of its open transaction here, if it has one.
    pub txn_start_offset: Option<Offset>,
}

impl ProducerState {
    /// Every producer remembered, by producer id.
    pub fn active(&self) -> Vec<ActiveProducer> {
        let mut active: Vec<ActiveProducer> = self
            .producers
            .iter()
            .map(|(&producer_id, entry)| ActiveProducer {
                producer_id,
                epoch: entry.epoch,
                last_sequence: entry.batches.back().map_or(-1, |b| b.last_seq),
                last_append_ms: entry.last_append_ms,
                txn_start_offset: entry.txn_first_offset,
            })
            .collect();
        active.sort_by_key(|p| p.producer_id);
        active
    }

    pub fn len(&self) -> usize {
        self.producers.len()
    }

    pub fn is_empty(&self) -> bool {
        self.producers.is_empty()
    }

    /// The first offset of the oldest open transaction: a read_committed consumer may not
    /// read at or past it.
    pub fn first_unstable_offset(&self) -> Option<Offset> {
        self.ongoing.first().map(|(offset, _)| *offset)
    }

    /// Whether producer `producer_id` has a transaction open here.
    pub fn in_transaction(&self, producer_id: i64) -> bool {
        self.producers
            .get(&producer_id)
            .is_some_and(|e| e.txn_first_offset.is_some())
    }

    /// Whether producer `producer_id` has a transaction open here begun at `epoch` (a
    /// transaction-version-2 producer's next transaction runs at a newer epoch).
    pub fn in_transaction_at(&self, producer_id: i64, epoch: i16) -> bool {
        self.producers
            .get(&producer_id)
            .is_some_and(|e| e.txn_first_offset.is_some() && e.epoch == epoch)
    }

    /// Whether a marker from `producer_id` at `epoch`, written by a coordinator at
    /// `coordinator_epoch`, may be written: not from an epoch older than the producer's
    /// (INVALID_PRODUCER_EPOCH), nor from an older coordinator than its last marker's
    /// (TRANSACTION_COORDINATOR_FENCED), as Kafka refuses them.
    pub fn check_marker(&self, producer_id: i64, epoch: i16, coordinator_epoch: i32) -> Result<(), SequenceError> {
        match self.producers.get(&producer_id) {
            Some(entry) if coordinator_epoch < entry.coordinator_epoch => Err(SequenceError::CoordinatorFenced {
                producer_id,
                got: coordinator_epoch,
                current: entry.coordinator_epoch,
            }),
            Some(entry) if epoch < entry.epoch => Err(SequenceError::Fenced {
                producer_id,
                epoch,
                current: entry.epoch,
            }),
            _ => Ok(()),
        }
    }

    /// Decides an incoming batch from an idempotent producer (producer id >= 0).
    pub fn check(&self, header: &BatchHeader<'_>) -> Result<Sequenced, SequenceError> {
        let producer_id = header.producer_id();
        let epoch = header.producer_epoch();
        let first = header.base_sequence();
        let Some(entry) = self.producers.get(&producer_id) else {
            return Ok(Sequenced::Append);
        };
        if epoch < entry.epoch {
            return Err(SequenceError::Fenced {
                producer_id,
                epoch,
                current: entry.epoch,
            });
        }
        if first < 0 {
            // A coordinator's batch on the producer's behalf: only its epoch is judged.
            return Ok(Sequenced::Append);
        }
        if epoch > entry.epoch {
            if first != 0 {
                return Err(SequenceError::NewEpochNotAtZero {
                    producer_id,
                    epoch,
                    got: first,
                });
            }
            return Ok(Sequenced::Append);
        }
        let last = last_sequence(first, header.last_offset_delta());
        if let Some(original) = entry
            .batches
            .iter()
            .find(|b| b.first_seq == first && b.last_seq == last)
        {
            return Ok(Sequenced::Duplicate {
                base_offset: original.base_offset,
                last_offset: original.last_offset,
            });
        }
        // A producer known only from a marker may start anywhere, as an unknown one may.
        let Some(newest) = entry.batches.back() else {
            return Ok(Sequenced::Append);
        };
        if !follows(newest.last_seq, first) {
            return Err(SequenceError::OutOfOrder {
                producer_id,
                epoch,
                got: first,
                last: newest.last_seq,
            });
        }
        Ok(Sequenced::Append)
    }

    /// Records a batch as written at its (patched) offsets; `marker` is what a control batch
    /// carries ([`crate::record::marker_of`]). Batches without a producer id are ignored. Also
    /// used to replay the log, so it never refuses. A marker that closes a transaction comes
    /// back as its [`CompletedTxn`].
    pub fn record(&mut self, header: &BatchHeader<'_>, marker: Option<EndMarker>, now_ms: i64) -> Option<CompletedTxn> {
        let producer_id = header.producer_id();
        if producer_id < 0 {
            return None;
        }
        let epoch = header.producer_epoch();
        if header.is_control() {
            let end = marker?;
            if !self.producers.contains_key(&producer_id) && self.producers.len() >= PRODUCERS_PER_PARTITION_MAX {
                self.evict_least_recent();
            }
            let entry = self.producers.entry(producer_id).or_insert_with(|| ProducerEntry {
                epoch,
                batches: VecDeque::new(),
                last_append_ms: now_ms,
                txn_first_offset: None,
                coordinator_epoch: end.coordinator_epoch,
            });
            if epoch > entry.epoch {
                entry.epoch = epoch;
                entry.batches.clear();
            }
            entry.coordinator_epoch = entry.coordinator_epoch.max(end.coordinator_epoch);
            entry.last_append_ms = entry.last_append_ms.max(now_ms);
            let first_offset = entry.txn_first_offset.take()?;
            self.ongoing.remove(&(first_offset, producer_id));
            return Some(CompletedTxn {
                producer_id,
                first_offset,
                marker_offset: header.base_offset(),
                marker: end.marker,
            });
        }
        let first = header.base_sequence();
        let meta = BatchMeta {
            first_seq: first,
            last_seq: last_sequence(first, header.last_offset_delta()),
            base_offset: header.base_offset(),
            last_offset: header.last_offset(),
        };
        if !self.producers.contains_key(&producer_id) && self.producers.len() >= PRODUCERS_PER_PARTITION_MAX {
            self.evict_least_recent();
        }
        let entry = self.producers.entry(producer_id).or_insert_with(|| ProducerEntry {
            epoch,
            batches: VecDeque::new(),
            last_append_ms: now_ms,
            txn_first_offset: None,
            coordinator_epoch: -1,
        });
        if epoch != entry.epoch {
            entry.epoch = epoch;
            entry.batches.clear();
        }
        // A coordinator's batch (no sequence) leaves the producer's own sequence alone.
        if first >= 0 {
            if entry.batches.len() == PRODUCER_BATCHES_KEPT {
                entry.batches.pop_front();
            }
            entry.batches.push_back(meta);
        }
        entry.last_append_ms = entry.last_append_ms.max(now_ms);
        if header.is_transactional() && entry.txn_first_offset.is_none() {
            entry.txn_first_offset = Some(meta.base_offset);
            self.ongoing.insert((meta.base_offset, producer_id));
        }
        None
    }

    /// Makes room by forgetting the least recently active producer without an open
    /// transaction (one with an open transaction must stay: it holds the LSO).
    fn evict_least_recent(&mut self) {
        let oldest = self
            .producers
            .iter()
            .filter(|(_, entry)| entry.txn_first_offset.is_none())
            .min_by_key(|(_, entry)| entry.last_append_ms)
            .map(|(&id, _)| id);
        if let Some(id) = oldest {
            self.producers.remove(&id);
        }
    }

    /// Forgets producers whose last append is older than `cutoff_ms`, except those with an
    /// open transaction. Returns how many.
    pub fn expire(&mut self, cutoff_ms: i64) -> usize {
        let before = self.producers.len();
        self.producers
            .retain(|_, entry| entry.last_append_ms >= cutoff_ms || entry.txn_first_offset.is_some());
        before - self.producers.len()
    }

    /// The snapshot file's bytes: the state as of `offset` (everything below it recorded).
    ///
    /// ```text
    /// magic u32 "SPS3" | offset i64 | producers u32 |
    ///   per producer: id i64, epoch i16, last_append_ms i64, txn_first_offset i64 (-1: none),
    ///     coordinator_epoch i32 (-1: none),
    ///     batches u8, per batch: first_seq i32, last_seq i32, base_offset i64, last_offset i64
    /// | crc32c u32 of everything before it
    /// ```
    /// Older snapshots still load: "SPS2" is the same without `coordinator_epoch` (it loads
    /// as -1: no marker of any coordinator is refused until the next one is written), "SPS1"
    /// (written before transactions) without `txn_first_offset` either, and every producer in
    /// it has at least one batch.
    pub fn encode(&self, offset: Offset) -> Vec<u8> {
        let mut out = Vec::with_capacity(16 + self.producers.len() * 64);
        out.extend_from_slice(SNAPSHOT_MAGIC);
        out.extend_from_slice(&offset.0.to_be_bytes());
        out.extend_from_slice(&(self.producers.len() as u32).to_be_bytes());
        let mut ids: Vec<&i64> = self.producers.keys().collect();
        ids.sort();
        for id in ids {
            let entry = &self.producers[id];
            out.extend_from_slice(&id.to_be_bytes());
            out.extend_from_slice(&entry.epoch.to_be_bytes());
            out.extend_from_slice(&entry.last_append_ms.to_be_bytes());
            out.extend_from_slice(&entry.txn_first_offset.map_or(-1, |o| o.0).to_be_bytes());
            out.extend_from_slice(&entry.coordinator_epoch.to_be_bytes());
            out.push(entry.batches.len() as u8);
            for batch in &entry.batches {
                out.extend_from_slice(&batch.first_seq.to_be_bytes());
                out.extend_from_slice(&batch.last_seq.to_be_bytes());
                out.extend_from_slice(&batch.base_offset.0.to_be_bytes());
                out.extend_from_slice(&batch.last_offset.0.to_be_bytes());
            }
        }
        let crc = crc32c::crc32c(&out);
        out.extend_from_slice(&crc.to_be_bytes());
        out
    }

    /// Reads a snapshot: the offset it was taken at and the state. None if it is damaged.
    pub fn decode(bytes: &[u8]) -> Option<(Offset, ProducerState)> {
        let (body, crc) = bytes.split_at_checked(bytes.len().checked_sub(4)?)?;
        if crc32c::crc32c(body) != u32::from_be_bytes(crc.try_into().ok()?) {
            return None;
        }
        let mut reader = Reader(body);
        let (with_txns, with_coordinator_epochs) = match reader.take(4)? {
            magic if magic == SNAPSHOT_MAGIC => (true, true),
            magic if magic == SNAPSHOT_MAGIC_V2 => (true, false),
            magic if magic == SNAPSHOT_MAGIC_V1 => (false, false),
            _ => return None,
        };
        let offset = Offset(reader.i64()?);
        let count = reader.u32()? as usize;
        let mut state = ProducerState::default();
        for _ in 0..count {
            let id = reader.i64()?;
            let epoch = reader.i16()?;
            let last_append_ms = reader.i64()?;
            let txn_first_offset = if with_txns {
                Some(reader.i64()?).filter(|o| *o >= 0).map(Offset)
            } else {
                None
            };
            let coordinator_epoch = if with_coordinator_epochs { reader.i32()? } else { -1 };
            let batch_count = usize::from(reader.take(1)?[0]);
            if (batch_count == 0 && !with_txns) || batch_count > PRODUCER_BATCHES_KEPT {
                return None;
            }
            let mut batches = VecDeque::with_capacity(batch_count);
            for _ in 0..batch_count {
                batches.push_back(BatchMeta {
                    first_seq: reader.i32()?,
                    last_seq: reader.i32()?,
                    base_offset: Offset(reader.i64()?),
                    last_offset: Offset(reader.i64()?),
                });
            }
            if let Some(first) = txn_first_offset {
                state.ongoing.insert((first, id));
            }
            state.producers.insert(
                id,
                ProducerEntry {
                    epoch,
                    batches,
                    last_append_ms,
                    txn_first_offset,
                    coordinator_epoch,
                },
            );
        }
        reader.0.is_empty().then_some((offset, state))
    }
}

const SNAPSHOT_MAGIC: &[u8; 4] = b"SPS3";
const SNAPSHOT_MAGIC_V2: &[u8; 4] = b"SPS2";
const SNAPSHOT_MAGIC_V1: &[u8; 4] = b"SPS1";

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let (head, rest) = self.0.split_at_checked(n)?;
        self.0 = rest;
        Some(head)
    }
    fn i16(&mut self) -> Option<i16> {
        Some(i16::from_be_bytes(self.take(2)?.try_into().ok()?))
    }
    fn i32(&mut self) -> Option<i32> {
        Some(i32::from_be_bytes(self.take(4)?.try_into().ok()?))
    }
    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_be_bytes(self.take(4)?.try_into().ok()?))
    }
    fn i64(&mut self) -> Option<i64> {
        Some(i64::from_be_bytes(self.take(8)?.try_into().ok()?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{patch_offsets, LOG_OVERHEAD_BYTES};

    /// A header-only batch as an idempotent producer sends it, placed at `base_offset`.
    fn batch(producer_id: i64, epoch: i16, first_seq: i32, records: i32, base_offset: i64) -> Vec<u8> {
        let mut bytes = vec![0u8; 61];
        bytes[8..12].copy_from_slice(&(61 - LOG_OVERHEAD_BYTES as i32).to_be_bytes());
        bytes[16] = 2;
        bytes[23..27].copy_from_slice(&(records - 1).to_be_bytes());
        bytes[43..51].copy_from_slice(&producer_id.to_be_bytes());
        bytes[51..53].copy_from_slice(&epoch.to_be_bytes());
        bytes[53..57].copy_from_slice(&first_seq.to_be_bytes());
        bytes[57..61].copy_from_slice(&records.to_be_bytes());
        patch_offsets(&mut bytes, Offset(base_offset), 0);
        bytes
    }

    fn check(state: &ProducerState, bytes: &[u8]) -> Result<Sequenced, SequenceError> {
        state.check(&BatchHeader::new(bytes).unwrap())
    }

    fn record(state: &mut ProducerState, bytes: &[u8]) -> Option<CompletedTxn> {
        state.record(
            &BatchHeader::new(bytes).unwrap(),
            crate::record::marker_of(bytes),
            1_000,
        )
    }

    #[test]
    fn in_sequence_batches_append_and_retries_are_duplicates() {
        let mut state = ProducerState::default();
        let first = batch(7, 0, 0, 5, 100);
        assert_eq!(check(&state, &first), Ok(Sequenced::Append));
        record(&mut state, &first);
        let second = batch(7, 0, 5, 3, 105);
        assert_eq!(check(&state, &second), Ok(Sequenced::Append));
        record(&mut state, &second);
        // The retry of the first batch arrives with base offset 0, as a producer sends it.
        assert_eq!(
            check(&state, &batch(7, 0, 0, 5, 0)),
            Ok(Sequenced::Duplicate {
                base_offset: Offset(100),
                last_offset: Offset(104)
            })
        );
    }

    #[test]
    fn gaps_old_epochs_and_new_epochs_are_judged() {
        let mut state = ProducerState::default();
        record(&mut state, &batch(7, 3, 0, 2, 0));
        assert!(matches!(
            check(&state, &batch(7, 3, 5, 1, 0)),
            Err(SequenceError::OutOfOrder { got: 5, last: 1, .. })
        ));
        let fenced = check(&state, &batch(7, 2, 2, 1, 0)).unwrap_err();
        assert_eq!(fenced.kafka_code(), KafkaCode::InvalidProducerEpoch);
        assert!(matches!(
            check(&state, &batch(7, 4, 2, 1, 0)),
            Err(SequenceError::NewEpochNotAtZero { .. })
        ));
        assert_eq!(check(&state, &batch(7, 4, 0, 1, 0)), Ok(Sequenced::Append));
        // Unknown producers may start anywhere: their history may have been deleted.
        assert_eq!(check(&state, &batch(8, 0, 42, 1, 0)), Ok(Sequenced::Append));
    }

    #[test]
    fn only_the_last_five_batches_are_remembered() {
        let mut state = ProducerState::default();
        for i in 0..7 {
            record(&mut state, &batch(1, 0, i, 1, i64::from(i)));
        }
        assert!(matches!(
            check(&state, &batch(1, 0, 2, 1, 0)),
            Ok(Sequenced::Duplicate {
                base_offset: Offset(2),
                ..
            })
        ));
        // Sequence 1 is older than the window: neither a known duplicate nor in sequence.
        assert!(matches!(
            check(&state, &batch(1, 0, 1, 1, 0)),
            Err(SequenceError::OutOfOrder { .. })
        ));
    }

    #[test]
    fn sequences_wrap_after_i32_max() {
        let mut state = ProducerState::default();
        record(&mut state, &batch(1, 0, i32::MAX - 1, 2, 0));
        assert_eq!(check(&state, &batch(1, 0, 0, 1, 0)), Ok(Sequenced::Append));
        assert_eq!(last_sequence(i32::MAX, 2), 1);
    }

    #[test]
    fn snapshots_round_trip_and_damage_is_detected() {
        let mut state = ProducerState::default();
        for producer in 0..3 {
            for i in 0..4 {
                record(
                    &mut state,
                    &batch(producer, 1, i * 2, 2, producer * 100 + i64::from(i) * 2),
                );
            }
        }
        let bytes = state.encode(Offset(300));
        assert_eq!(ProducerState::decode(&bytes), Some((Offset(300), state.clone())));
        let mut damaged = bytes.clone();
        damaged[20] ^= 1;
        assert_eq!(ProducerState::decode(&damaged), None);
        assert_eq!(ProducerState::decode(&bytes[..10]), None);
    }

    #[test]
    fn idle_producers_expire() {
        let mut state = ProducerState::default();
        state.record(&BatchHeader::new(&batch(1, 0, 0, 1, 0)).unwrap(), None, 1_000);
        state.record(&BatchHeader::new(&batch(2, 0, 0, 1, 1)).unwrap(), None, 5_000);
        assert_eq!(state.expire(2_000), 1);
        assert_eq!(state.len(), 1);
        assert_eq!(
            check(&state, &batch(2, 0, 0, 1, 0)).unwrap(),
            Sequenced::Duplicate {
                base_offset: Offset(1),
                last_offset: Offset(1)
            }
        );
    }

    /// Golden bytes of the producer-state snapshot (`producer-state`): a file an earlier build
    /// wrote must still load, so its layout must never change silently.
    #[test]
    fn snapshot_layout_is_pinned() {
        let mut state = ProducerState::default();
        record(&mut state, &batch(7, 2, 0, 3, 10));
        let bytes = state.encode(Offset(13));
        let body = |magic: &[u8; 4], with_txn: bool, with_coordinator_epoch: bool| {
            let mut body = Vec::new();
            body.extend_from_slice(magic);
            body.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 13]); // offset
            body.extend_from_slice(&[0, 0, 0, 1]); // producers
            body.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 7]); // producer id
            body.extend_from_slice(&[0, 2]); // epoch
            body.extend_from_slice(&1_000i64.to_be_bytes()); // last append
            if with_txn {
                body.extend_from_slice(&(-1i64).to_be_bytes()); // no open transaction
            }
            if with_coordinator_epoch {
                body.extend_from_slice(&(-1i32).to_be_bytes()); // no marker yet
            }
            body.push(1); // batches
            body.extend_from_slice(&[0, 0, 0, 0]); // first sequence
            body.extend_from_slice(&[0, 0, 0, 2]); // last sequence
            body.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 10]); // base offset
            body.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 12]); // last offset
            body
        };
        let v3 = body(b"SPS3", true, true);
        assert_eq!(&bytes[..bytes.len() - 4], &v3[..]);
        assert_eq!(&bytes[bytes.len() - 4..], &crc32c::crc32c(&v3).to_be_bytes()[..]);
        // Snapshots written before coordinator epochs, and before transactions, still load,
        // to the same state.
        for mut older in [body(b"SPS2", true, false), body(b"SPS1", false, false)] {
            let crc = crc32c::crc32c(&older);
            older.extend_from_slice(&crc.to_be_bytes());
            assert_eq!(ProducerState::decode(&older), Some((Offset(13), state.clone())));
        }
    }

    /// `batch` with the transactional attribute set.
    fn transactional(producer_id: i64, epoch: i16, first_seq: i32, records: i32, base_offset: i64) -> Vec<u8> {
        let mut bytes = batch(producer_id, epoch, first_seq, records, base_offset);
        bytes[22] |= 0x10;
        bytes
    }

    fn marker(producer_id: i64, epoch: i16, commit: bool, at: i64) -> Vec<u8> {
        let mut bytes = crate::record::encode_marker(producer_id, epoch, 0, Marker::from_commit(commit), 0).to_vec();
        patch_offsets(&mut bytes, Offset(at), 0);
        bytes
    }

    #[test]
    fn open_transactions_hold_the_stable_offset_until_their_marker() {
        let mut state = ProducerState::default();
        record(&mut state, &batch(1, 0, 0, 2, 0));
        assert_eq!(state.first_unstable_offset(), None);
        record(&mut state, &transactional(2, 0, 0, 3, 2));
        record(&mut state, &transactional(3, 0, 0, 1, 5));
        record(&mut state, &transactional(2, 0, 3, 1, 6));
        assert_eq!(state.first_unstable_offset(), Some(Offset(2)));
        assert!(state.in_transaction(2));
        let done = record(&mut state, &marker(2, 0, false, 7)).unwrap();
        assert_eq!(
            done,
            CompletedTxn {
                producer_id: 2,
                first_offset: Offset(2),
                marker_offset: Offset(7),
                marker: Marker::Abort
            }
        );
        assert_eq!(state.first_unstable_offset(), Some(Offset(5)));
        // The open one survives a snapshot, expiry and eviction pressure.
        let (_, restored) = ProducerState::decode(&state.encode(Offset(8))).unwrap();
        assert_eq!(restored.first_unstable_offset(), Some(Offset(5)));
        state.expire(i64::MAX);
        assert!(state.in_transaction(3));
        assert_eq!(
            record(&mut state, &marker(3, 0, true, 8)).map(|d| d.marker),
            Some(Marker::Commit)
        );
        assert_eq!(state.first_unstable_offset(), None);
        // Sequences continue across transactions of one epoch.
        assert_eq!(check(&state, &transactional(3, 0, 1, 1, 0)), Ok(Sequenced::Append));
    }

    #[test]
    fn a_marker_at_a_newer_epoch_fences_the_old_one() {
        let mut state = ProducerState::default();
        record(&mut state, &transactional(4, 1, 0, 2, 0));
        assert_eq!(
            record(&mut state, &marker(4, 2, false, 2)).map(|d| d.first_offset),
            Some(Offset(0))
        );
        assert_eq!(
            check(&state, &transactional(4, 1, 2, 1, 0)).unwrap_err().kafka_code(),
            KafkaCode::InvalidProducerEpoch
        );
        assert!(state.check_marker(4, 1, 0).is_err());
        assert!(state.check_marker(4, 2, 0).is_ok());
        // A marker for a partition the producer never wrote closes nothing; its first batch
        // at that epoch may start anywhere.
        assert_eq!(record(&mut state, &marker(9, 0, true, 3)), None);
        assert_eq!(check(&state, &transactional(9, 0, 0, 1, 0)), Ok(Sequenced::Append));
    }

    /// A marker of an older coordinator than the producer's last marker is refused; the
    /// coordinator epoch survives a snapshot.
    #[test]
    fn a_marker_of_an_older_coordinator_is_fenced() {
        let mut state = ProducerState::default();
        record(&mut state, &transactional(5, 0, 0, 1, 0));
        let mut newer = crate::record::encode_marker(5, 0, 3, Marker::Commit, 0).to_vec();
        patch_offsets(&mut newer, Offset(1), 0);
        assert!(record(&mut state, &newer).is_some());
        let stale = state.check_marker(5, 0, 2).unwrap_err();
        assert_eq!(stale.kafka_code(), KafkaCode::TransactionCoordinatorFenced);
        assert!(state.check_marker(5, 0, 3).is_ok());
        assert!(state.check_marker(5, 1, 4).is_ok());
        let (_, restored) = ProducerState::decode(&state.encode(Offset(2))).unwrap();
        assert!(restored.check_marker(5, 0, 2).is_err());
    }
}
