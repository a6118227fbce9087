//! One transactional id's state and Kafka's rules for moving it, as pure functions: each
//! request either is refused with a Kafka code, needs no change, or yields the next state to
//! persist before it is answered.
//!
//! ```text
//! Empty / CompleteCommit / CompleteAbort --AddPartitions--> Ongoing
//! Ongoing --EndTxn(commit)--> PrepareCommit --markers written--> CompleteCommit
//! Ongoing --EndTxn(abort), timeout, fencing--> PrepareAbort --markers written--> CompleteAbort
//! ```
//! While Prepare*, every request but a retried EndTxn of the same outcome waits
//! (CONCURRENT_TRANSACTIONS). Invariants: an Ongoing or Prepare* transaction has partitions;
//! a Complete* or Empty one has none.

use std::collections::BTreeSet;

use crate::error::KafkaCode;

/// Kafka's `TransactionState` and its codes in the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TxnStatus {
    Empty,
    Ongoing,
    PrepareCommit,
    PrepareAbort,
    CompleteCommit,
    CompleteAbort,
    Dead,
    PrepareEpochFence,
}

impl TxnStatus {
    pub fn code(self) -> i8 {
        match self {
            TxnStatus::Empty => 0,
            TxnStatus::Ongoing => 1,
            TxnStatus::PrepareCommit => 2,
            TxnStatus::PrepareAbort => 3,
            TxnStatus::CompleteCommit => 4,
            TxnStatus::CompleteAbort => 5,
            TxnStatus::Dead => 6,
            TxnStatus::PrepareEpochFence => 7,
        }
    }

    pub fn from_code(code: i8) -> Option<TxnStatus> {
        Some(match code {
            0 => TxnStatus::Empty,
            1 => TxnStatus::Ongoing,
            2 => TxnStatus::PrepareCommit,
            3 => TxnStatus::PrepareAbort,
            4 => TxnStatus::CompleteCommit,
            5 => TxnStatus::CompleteAbort,
            6 => TxnStatus::Dead,
            7 => TxnStatus::PrepareEpochFence,
            _ => return None,
        })
    }

    /// The name DescribeTransactions and ListTransactions use.
    pub fn name(self) -> &'static str {
        match self {
            TxnStatus::Empty => "Empty",
            TxnStatus::Ongoing => "Ongoing",
            TxnStatus::PrepareCommit => "PrepareCommit",
            TxnStatus::PrepareAbort => "PrepareAbort",
            TxnStatus::CompleteCommit => "CompleteCommit",
            TxnStatus::CompleteAbort => "CompleteAbort",
            TxnStatus::Dead => "Dead",
            TxnStatus::PrepareEpochFence => "PrepareEpochFence",
        }
    }

    pub fn is_preparing(self) -> bool {
        matches!(
            self,
            TxnStatus::PrepareCommit | TxnStatus::PrepareAbort | TxnStatus::PrepareEpochFence
        )
    }
}

/// What a coordinator keeps of one transactional id (persisted as one record).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxnMetadata {
    pub id: String,
    pub producer_id: i64,
    pub epoch: i16,
    pub timeout_ms: i32,
    pub status: TxnStatus,
    /// The partitions the ongoing (or completing) transaction wrote to.
    pub partitions: BTreeSet<(String, i32)>,
    /// When the ongoing transaction began (-1 when none).
    pub start_ms: i64,
    pub last_update_ms: i64,
}

/// The largest epoch handed out before a producer id is replaced by a fresh one (Kafka keeps
/// `Short.MAX_VALUE` free for fencing bumps).
pub const EPOCH_MAX: i16 = i16::MAX - 1;

impl TxnMetadata {
    pub fn new(id: &str, producer_id: i64, timeout_ms: i32, now_ms: i64) -> TxnMetadata {
        TxnMetadata {
            id: id.to_string(),
            producer_id,
            epoch: 0,
            timeout_ms,
            status: TxnStatus::Empty,
            partitions: BTreeSet::new(),
            start_ms: -1,
            last_update_ms: now_ms,
        }
    }

    /// The asserted invariants of a state about to be persisted.
    pub fn check_invariants(&self) {
        match self.status {
            TxnStatus::Ongoing | TxnStatus::PrepareCommit | TxnStatus::PrepareAbort => assert!(
                !self.partitions.is_empty(),
                "transaction {} is {} without partitions",
                self.id,
                self.status.name()
            ),
            TxnStatus::Empty | TxnStatus::CompleteCommit | TxnStatus::CompleteAbort => assert!(
                self.partitions.is_empty(),
                "transaction {} is {} with partitions {:?}",
                self.id,
                self.status.name(),
                self.partitions
            ),
            TxnStatus::Dead | TxnStatus::PrepareEpochFence => {}
        }
    }

    /// Whether a request of producer `producer_id` at `epoch` speaks for this id now.
    pub fn check_producer(&self, producer_id: i64, epoch: i16) -> Result<(), KafkaCode> {
        if producer_id != self.producer_id {
            return Err(KafkaCode::InvalidProducerIdMapping);
        }
        if epoch != self.epoch {
            return Err(KafkaCode::ProducerFenced);
        }
        Ok(())
    }

    /// AddPartitionsToTxn / AddOffsetsToTxn: the next state, None if every partition is
    /// already in the ongoing transaction.
    pub fn add_partitions(
        &self,
        producer_id: i64,
        epoch: i16,
        partitions: &[(String, i32)],
        now_ms: i64,
    ) -> Result<Option<TxnMetadata>, KafkaCode> {
        self.check_producer(producer_id, epoch)?;
        if self.status.is_preparing() {
            return Err(KafkaCode::ConcurrentTransactions);
        }
        if self.status == TxnStatus::Ongoing && partitions.iter().all(|p| self.partitions.contains(p)) {
            return Ok(None);
        }
        let mut next = self.clone();
        if next.status != TxnStatus::Ongoing {
            next.start_ms = now_ms;
        }
        next.status = TxnStatus::Ongoing;
        next.partitions.extend(partitions.iter().cloned());
        next.last_update_ms = now_ms;
        Ok(Some(next))
    }

    /// EndTxn: the Prepare* state to persist, or None for a retry of an ending already done.
    pub fn end(
        &self,
        producer_id: i64,
        epoch: i16,
        commit: bool,
        now_ms: i64,
    ) -> Result<Option<TxnMetadata>, KafkaCode> {
        self.check_producer(producer_id, epoch)?;
        match (self.status, commit) {
            (TxnStatus::Ongoing, _) => {
                let mut next = self.clone();
                next.status = if commit {
                    TxnStatus::PrepareCommit
                } else {
                    TxnStatus::PrepareAbort
                };
                next.last_update_ms = now_ms;
                Ok(Some(next))
            }
            (TxnStatus::CompleteCommit, true) | (TxnStatus::CompleteAbort, false) => Ok(None),
            (TxnStatus::PrepareCommit, true) | (TxnStatus::PrepareAbort, false) => {
                Err(KafkaCode::ConcurrentTransactions)
            }
            _ => Err(KafkaCode::InvalidTxnState),
        }
    }

    /// The abort of an ongoing transaction by the coordinator itself (fencing an older
    /// producer, or a timeout): the epoch is bumped so the producer that began it cannot
    /// write again, and the markers carry the new epoch.
    pub fn fence_and_abort(&self, now_ms: i64) -> TxnMetadata {
        assert_eq!(
            self.status,
            TxnStatus::Ongoing,
            "fencing {} in {}",
            self.id,
            self.status.name()
        );
        let mut next = self.clone();
        next.epoch = self.epoch.saturating_add(1);
        next.status = TxnStatus::PrepareAbort;
        next.last_update_ms = now_ms;
        next
    }

    /// The Complete* state once every marker is written.
    pub fn completed(&self, now_ms: i64) -> TxnMetadata {
        let mut next = self.clone();
        next.status = match self.status {
            TxnStatus::PrepareCommit => TxnStatus::CompleteCommit,
            TxnStatus::PrepareAbort => TxnStatus::CompleteAbort,
            other => panic!("completing transaction {} in {}", self.id, other.name()),
        };
        next.partitions.clear();
        next.start_ms = -1;
        next.last_update_ms = now_ms;
        next
    }

    /// InitProducerId on an existing id with no transaction in flight: the epoch bumped (a
    /// new producer id when the epoch is exhausted: `fresh_id`), Empty.
    pub fn bumped(&self, timeout_ms: i32, fresh_id: impl FnOnce() -> i64, now_ms: i64) -> TxnMetadata {
        let mut next = self.clone();
        if self.epoch >= EPOCH_MAX {
            next.producer_id = fresh_id();
            next.epoch = 0;
        } else {
            next.epoch = self.epoch + 1;
        }
        next.timeout_ms = timeout_ms;
        next.status = TxnStatus::Empty;
        next.partitions.clear();
        next.start_ms = -1;
        next.last_update_ms = now_ms;
        next
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ongoing() -> TxnMetadata {
        let txn = TxnMetadata::new("t", 7, 60_000, 0);
        txn.add_partitions(7, 0, &[("a".into(), 0)], 1).unwrap().unwrap()
    }

    #[test]
    fn a_transaction_runs_from_empty_to_complete() {
        let txn = ongoing();
        assert_eq!(txn.status, TxnStatus::Ongoing);
        assert_eq!(txn.start_ms, 1);
        assert_eq!(txn.add_partitions(7, 0, &[("a".into(), 0)], 2), Ok(None));
        let prepared = txn.end(7, 0, true, 3).unwrap().unwrap();
        assert_eq!(prepared.status, TxnStatus::PrepareCommit);
        prepared.check_invariants();
        assert_eq!(prepared.end(7, 0, true, 4), Err(KafkaCode::ConcurrentTransactions));
        assert_eq!(prepared.end(7, 0, false, 4), Err(KafkaCode::InvalidTxnState));
        assert_eq!(
            prepared.add_partitions(7, 0, &[("b".into(), 0)], 4),
            Err(KafkaCode::ConcurrentTransactions)
        );
        let done = prepared.completed(5);
        done.check_invariants();
        assert_eq!(done.status, TxnStatus::CompleteCommit);
        assert_eq!(done.end(7, 0, true, 6), Ok(None), "a retried commit");
        assert_eq!(done.end(7, 0, false, 6), Err(KafkaCode::InvalidTxnState));
    }

    #[test]
    fn old_epochs_and_other_ids_are_refused() {
        let txn = ongoing();
        assert_eq!(txn.end(7, 1, true, 0), Err(KafkaCode::ProducerFenced));
        assert_eq!(txn.end(8, 0, true, 0), Err(KafkaCode::InvalidProducerIdMapping));
        let fenced = txn.fence_and_abort(9);
        assert_eq!((fenced.epoch, fenced.status), (1, TxnStatus::PrepareAbort));
        assert_eq!(
            fenced.add_partitions(7, 0, &[("a".into(), 0)], 9),
            Err(KafkaCode::ProducerFenced)
        );
        let empty = TxnMetadata::new("t", 7, 1, 0);
        assert_eq!(empty.end(7, 0, true, 0), Err(KafkaCode::InvalidTxnState));
    }

    #[test]
    fn an_exhausted_epoch_takes_a_new_producer_id() {
        let mut txn = TxnMetadata::new("t", 7, 1, 0);
        txn.epoch = EPOCH_MAX;
        let next = txn.bumped(1, || 99, 1);
        assert_eq!((next.producer_id, next.epoch), (99, 0));
        txn.epoch = 3;
        assert_eq!(txn.bumped(1, || unreachable!("epochs left"), 1).epoch, 4);
    }
}
