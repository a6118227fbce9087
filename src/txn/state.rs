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
//!
//! Transaction version 2 (KIP-890 part 2): a client that ends its transaction with EndTxn v5
//! gets its epoch bumped by every ending, so the markers carry `epoch + 1` and fence any
//! batch of the ended transaction still in flight; the answer names the epoch (or, once the
//! epoch is exhausted, the fresh producer id at epoch 0) to go on with. A retried v5 EndTxn
//! arrives with the epoch before the bump and is recognised by it.

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
    /// The client ends its transactions with an epoch bump (transaction version 2).
    pub tv2: bool,
    /// The producer id before the last epoch overflow (-1: none), so a retried EndTxn of
    /// the old id is still recognised.
    pub previous_producer_id: i64,
    /// The producer id a completing transaction moves to when its epoch is exhausted (-1: none).
    pub next_producer_id: i64,
}

/// What an EndTxn comes to when it is not refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ending {
    /// The Prepare* state to persist before the markers are written.
    Prepare(TxnMetadata),
    /// A retry of an ending already done: nothing to change.
    Done,
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
            tv2: false,
            previous_producer_id: -1,
            next_producer_id: -1,
        }
    }

    /// The producer id and epoch the client goes on with after this state's ending: the
    /// fresh id at epoch 0 when the ending moves to one.
    pub fn continues_as(&self) -> (i64, i16) {
        if self.next_producer_id >= 0 {
            (self.next_producer_id, 0)
        } else {
            (self.producer_id, self.epoch)
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

    /// AddPartitionsToTxn / AddOffsetsToTxn, or a leader adding a partition on a producer's
    /// behalf (`tv2`, KIP-890's implicit add): the next state, None if every partition is
    /// already in the ongoing transaction.
    pub fn add_partitions(
        &self,
        producer_id: i64,
        epoch: i16,
        partitions: &[(String, i32)],
        tv2: bool,
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
            next.tv2 = tv2;
        } else {
            next.tv2 |= tv2;
        }
        next.status = TxnStatus::Ongoing;
        next.partitions.extend(partitions.iter().cloned());
        next.last_update_ms = now_ms;
        Ok(Some(next))
    }

    /// EndTxn: the Prepare* state to persist, or [`Ending::Done`] for a retry of an ending
    /// already done. `tv2`: the request is EndTxn v5+, ending with an epoch bump; `fresh_id`
    /// is the producer id to move to when the epoch is exhausted (asked for only then, see
    /// [`TxnMetadata::needs_fresh_id`]).
    pub fn end(
        &self,
        producer_id: i64,
        epoch: i16,
        commit: bool,
        tv2: bool,
        fresh_id: Option<i64>,
        now_ms: i64,
    ) -> Result<Ending, KafkaCode> {
        if self.tv2 {
            self.check_tv2_ending(producer_id, epoch)?;
        } else {
            self.check_producer(producer_id, epoch)?;
        }
        match (self.status, commit) {
            (TxnStatus::Ongoing, _) => {
                let mut next = self.clone();
                next.status = if commit {
                    TxnStatus::PrepareCommit
                } else {
                    TxnStatus::PrepareAbort
                };
                next.tv2 = tv2;
                if tv2 {
                    // EPOCH_MAX + 1 is still a valid epoch: the markers carry it, and the
                    // producer goes on under its fresh id.
                    next.epoch = self.epoch + 1;
                    if self.epoch >= EPOCH_MAX {
                        next.next_producer_id = fresh_id.expect("a fresh producer id for an exhausted epoch");
                    }
                }
                next.last_update_ms = now_ms;
                Ok(Ending::Prepare(next))
            }
            (TxnStatus::CompleteCommit, true) | (TxnStatus::CompleteAbort, false) => Ok(Ending::Done),
            (TxnStatus::PrepareCommit, true) | (TxnStatus::PrepareAbort, false) => {
                Err(KafkaCode::ConcurrentTransactions)
            }
            _ => Err(KafkaCode::InvalidTxnState),
        }
    }

    /// Whether an EndTxn v5 at `epoch` must bring a fresh producer id along.
    pub fn needs_fresh_id(&self, tv2: bool) -> bool {
        tv2 && self.status == TxnStatus::Ongoing && self.epoch >= EPOCH_MAX
    }

    /// Kafka's epoch rule for an id whose last ending bumped the epoch: the ongoing (or not
    /// yet begun) transaction is ended at the current epoch; a completing or completed one
    /// only by a retry, at the epoch before the bump (or the old id's last epoch across an
    /// overflow).
    fn check_tv2_ending(&self, producer_id: i64, epoch: i16) -> Result<(), KafkaCode> {
        let retried = epoch.checked_add(1) == Some(self.epoch);
        let retried_over_overflow = self.previous_producer_id == producer_id && epoch == EPOCH_MAX && self.epoch == 0;
        if producer_id != self.producer_id && !retried_over_overflow {
            return Err(KafkaCode::InvalidProducerIdMapping);
        }
        let valid = match self.status {
            TxnStatus::Ongoing | TxnStatus::Empty | TxnStatus::Dead | TxnStatus::PrepareEpochFence => {
                epoch == self.epoch
            }
            TxnStatus::PrepareCommit | TxnStatus::PrepareAbort => retried,
            TxnStatus::CompleteCommit | TxnStatus::CompleteAbort => retried || retried_over_overflow,
        };
        if valid {
            Ok(())
        } else {
            Err(KafkaCode::ProducerFenced)
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
        if self.next_producer_id >= 0 {
            next.previous_producer_id = self.producer_id;
            next.producer_id = self.next_producer_id;
            next.next_producer_id = -1;
            next.epoch = 0;
        }
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
        next.tv2 = false;
        next.previous_producer_id = -1;
        next.next_producer_id = -1;
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
        txn.add_partitions(7, 0, &[("a".into(), 0)], false, 1).unwrap().unwrap()
    }

    #[test]
    fn a_transaction_runs_from_empty_to_complete() {
        let txn = ongoing();
        assert_eq!(txn.status, TxnStatus::Ongoing);
        assert_eq!(txn.start_ms, 1);
        assert_eq!(txn.add_partitions(7, 0, &[("a".into(), 0)], false, 2), Ok(None));
        let Ending::Prepare(prepared) = txn.end(7, 0, true, false, None, 3).unwrap() else {
            panic!("an ongoing transaction ends")
        };
        assert_eq!(prepared.status, TxnStatus::PrepareCommit);
        prepared.check_invariants();
        assert_eq!(
            prepared.end(7, 0, true, false, None, 4),
            Err(KafkaCode::ConcurrentTransactions)
        );
        assert_eq!(
            prepared.end(7, 0, false, false, None, 4),
            Err(KafkaCode::InvalidTxnState)
        );
        assert_eq!(
            prepared.add_partitions(7, 0, &[("b".into(), 0)], false, 4),
            Err(KafkaCode::ConcurrentTransactions)
        );
        let done = prepared.completed(5);
        done.check_invariants();
        assert_eq!(done.status, TxnStatus::CompleteCommit);
        assert_eq!(
            done.end(7, 0, true, false, None, 6),
            Ok(Ending::Done),
            "a retried commit"
        );
        assert_eq!(done.end(7, 0, false, false, None, 6), Err(KafkaCode::InvalidTxnState));
    }

    #[test]
    fn old_epochs_and_other_ids_are_refused() {
        let txn = ongoing();
        assert_eq!(txn.end(7, 1, true, false, None, 0), Err(KafkaCode::ProducerFenced));
        assert_eq!(
            txn.end(8, 0, true, false, None, 0),
            Err(KafkaCode::InvalidProducerIdMapping)
        );
        let fenced = txn.fence_and_abort(9);
        assert_eq!((fenced.epoch, fenced.status), (1, TxnStatus::PrepareAbort));
        assert_eq!(
            fenced.add_partitions(7, 0, &[("a".into(), 0)], false, 9),
            Err(KafkaCode::ProducerFenced)
        );
        let empty = TxnMetadata::new("t", 7, 1, 0);
        assert_eq!(empty.end(7, 0, true, false, None, 0), Err(KafkaCode::InvalidTxnState));
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

    /// Transaction version 2: every ending bumps the epoch; retries come at the old epoch.
    #[test]
    fn a_v2_ending_bumps_the_epoch_and_recognises_its_retry() {
        let txn = TxnMetadata::new("t", 7, 60_000, 0)
            .add_partitions(7, 0, &[("a".into(), 0)], true, 1)
            .unwrap()
            .unwrap();
        assert!(txn.tv2);
        let Ending::Prepare(prepared) = txn.end(7, 0, true, true, None, 2).unwrap() else {
            panic!("an ongoing transaction ends")
        };
        assert_eq!((prepared.status, prepared.epoch), (TxnStatus::PrepareCommit, 1));
        assert_eq!(prepared.continues_as(), (7, 1));
        // The retry, at the epoch before the bump, waits; the bumped epoch is not a retry.
        assert_eq!(
            prepared.end(7, 0, true, true, None, 3),
            Err(KafkaCode::ConcurrentTransactions)
        );
        assert_eq!(prepared.end(7, 1, true, true, None, 3), Err(KafkaCode::ProducerFenced));
        let done = prepared.completed(4);
        assert_eq!(done.end(7, 0, true, true, None, 5), Ok(Ending::Done));
        assert_eq!(done.end(7, 0, false, true, None, 5), Err(KafkaCode::InvalidTxnState));
        assert_eq!(done.end(7, 1, true, true, None, 5), Err(KafkaCode::ProducerFenced));
        // The next transaction runs at the bumped epoch; the old one is fenced.
        assert_eq!(
            done.add_partitions(7, 0, &[("a".into(), 0)], true, 6),
            Err(KafkaCode::ProducerFenced)
        );
        let next = done.add_partitions(7, 1, &[("b".into(), 0)], true, 6).unwrap().unwrap();
        assert_eq!((next.status, next.epoch, next.start_ms), (TxnStatus::Ongoing, 1, 6));
    }

    /// An exhausted epoch: the markers carry the last epoch, then the producer moves to a
    /// fresh id at epoch 0, and a retry under the old id is still answered.
    #[test]
    fn a_v2_ending_at_an_exhausted_epoch_moves_to_a_fresh_id() {
        let mut txn = TxnMetadata::new("t", 7, 60_000, 0);
        txn.epoch = EPOCH_MAX;
        let txn = txn
            .add_partitions(7, EPOCH_MAX, &[("a".into(), 0)], true, 1)
            .unwrap()
            .unwrap();
        assert!(txn.needs_fresh_id(true));
        assert!(!txn.needs_fresh_id(false));
        let Ending::Prepare(prepared) = txn.end(7, EPOCH_MAX, false, true, Some(99), 2).unwrap() else {
            panic!("an ongoing transaction ends")
        };
        assert_eq!((prepared.producer_id, prepared.epoch), (7, i16::MAX));
        assert_eq!(prepared.continues_as(), (99, 0));
        let done = prepared.completed(3);
        assert_eq!((done.producer_id, done.epoch, done.previous_producer_id), (99, 0, 7));
        assert_eq!(done.continues_as(), (99, 0));
        assert_eq!(done.end(7, EPOCH_MAX, false, true, None, 4), Ok(Ending::Done));
        assert_eq!(
            done.end(8, EPOCH_MAX, false, true, None, 4),
            Err(KafkaCode::InvalidProducerIdMapping)
        );
    }
}
