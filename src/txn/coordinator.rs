//! The transaction coordinator of one shard: the transactional ids whose
//! `__transaction_state` partition this shard owns and its broker leads.
//!
//! Every change is persisted (appended, flushed, held by the in-sync replicas) before it is
//! answered or acted on. Ending a transaction persists Prepare*, answers the producer, then
//! writes the markers into every partition of the transaction (through the host, to each
//! partition's leader) and persists Complete*. A coordinator that loads a partition (start-up,
//! failover) resumes every transaction its log leaves in Prepare*. One change per id is in
//! flight at a time; others get CONCURRENT_TRANSACTIONS and retry, as Kafka's clients do.

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::rc::Rc;
use std::time::Duration;

use bytes::Bytes;

use super::records;
use super::state::{Ending, TxnMetadata, TxnStatus, EPOCH_MAX};
use super::{MarkerWork, TxnHost, TRANSACTIONS};
use crate::constants::TXN_BUSY_WAIT_MAX;
use crate::error::KafkaCode;
use crate::ids::PartitionId;
use crate::storage::segment::now_ms;

/// How long a marker round waits before retrying the partitions whose leaders failed it.
const MARKER_RETRY_DELAY: Duration = Duration::from_millis(100);

/// The coordinator's settings (`transaction.*` broker keys).
#[derive(Debug, Clone, Copy)]
pub struct TxnSettings {
    pub max_timeout_ms: i64,
    pub id_expiration_ms: i64,
    pub cleanup_interval: Duration,
}

/// Where a coordinator stands with one state partition it owns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Load {
    Loading,
    Loaded,
}

pub struct TxnCoordinator {
    /// The state partitions served, with the leader epoch they were taken at (the
    /// coordinator epoch markers carry).
    partitions: RefCell<HashMap<i32, (i32, Load)>>,
    txns: RefCell<HashMap<String, TxnMetadata>>,
    /// Ids with a change or a marker round in flight.
    busy: RefCell<HashSet<String>>,
    /// Fires whenever an id stops being busy.
    freed: crate::signal::Signal,
    pub settings: TxnSettings,
}

/// Marks an id busy until dropped.
struct Busy<'a> {
    coordinator: &'a TxnCoordinator,
    id: String,
}

impl Drop for Busy<'_> {
    fn drop(&mut self) {
        self.coordinator.busy.borrow_mut().remove(&self.id);
        self.coordinator.freed.notify_all();
    }
}

impl TxnCoordinator {
    pub fn new(settings: TxnSettings) -> TxnCoordinator {
        TxnCoordinator {
            partitions: RefCell::new(HashMap::new()),
            txns: RefCell::new(HashMap::new()),
            busy: RefCell::new(HashSet::new()),
            freed: crate::signal::Signal::default(),
            settings,
        }
    }

    fn claim(&self, id: &str) -> Result<Busy<'_>, KafkaCode> {
        if !self.busy.borrow_mut().insert(id.to_string()) {
            return Err(KafkaCode::ConcurrentTransactions);
        }
        Ok(Busy {
            coordinator: self,
            id: id.to_string(),
        })
    }

    /// [`TxnCoordinator::claim`] once the id's change in flight is done, waiting at most
    /// [`TXN_BUSY_WAIT_MAX`]: a producer's next request after a commit usually arrives while
    /// the markers are being written.
    async fn claim_when_free(&self, id: &str) -> Result<Busy<'_>, KafkaCode> {
        let deadline = std::time::Instant::now() + TXN_BUSY_WAIT_MAX;
        loop {
            let freed = self.freed.wait();
            if let Ok(busy) = self.claim(id) {
                return Ok(busy);
            }
            tracing::debug!(target: "sluice::txn", "transaction {}: waiting for its change in flight", crate::text::escape(id));
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() || crate::runtime::timeout(left, freed).await.is_none() {
                return Err(KafkaCode::ConcurrentTransactions);
            }
        }
    }

    pub fn get(&self, id: &str) -> Option<TxnMetadata> {
        self.txns.borrow().get(id).cloned()
    }

    /// Every transactional id coordinated here.
    pub fn list(&self) -> Vec<TxnMetadata> {
        let mut all: Vec<TxnMetadata> = self.txns.borrow().values().cloned().collect();
        all.sort_by(|a, b| a.id.cmp(&b.id));
        all
    }

    /// Whether this coordinator serves the ids of state partition `partition`.
    pub fn readiness(&self, partition: i32) -> Result<(), KafkaCode> {
        match self.partitions.borrow().get(&partition) {
            Some((_, Load::Loaded)) => Ok(()),
            Some((_, Load::Loading)) => Err(KafkaCode::CoordinatorLoadInProgress),
            None => Err(KafkaCode::NotCoordinator),
        }
    }

    fn coordinator_epoch(&self, host: &impl TxnHost, id: &str) -> Option<i32> {
        let (partition, _) = TRANSACTIONS.locate(&host.metadata(), id).ok()?;
        self.partitions
            .borrow()
            .get(&partition.0)
            .filter(|(_, load)| *load == Load::Loaded)
            .map(|(epoch, _)| *epoch)
    }

    /// Persists `next` as the id's state and keeps it (a tombstone when `next` is None).
    async fn persist(&self, host: &Rc<impl TxnHost>, id: &str, next: Option<TxnMetadata>) -> Result<(), KafkaCode> {
        if let Some(next) = &next {
            next.check_invariants();
        }
        let value = next.as_ref().map(records::value);
        TRANSACTIONS.persist(host, id, vec![(records::key(id), value)]).await?;
        match next {
            Some(next) => self.txns.borrow_mut().insert(id.to_string(), next),
            None => self.txns.borrow_mut().remove(id),
        };
        Ok(())
    }

    /// InitProducerId with a transactional id: the producer id and the epoch to use. A new
    /// id gets a fresh producer id at epoch 0; a known one its epoch bumped, fencing any
    /// older producer. An ongoing transaction is aborted first (CONCURRENT_TRANSACTIONS until
    /// done, then the producer's retry gets its epoch).
    pub async fn init_producer_id(
        &self,
        host: &Rc<impl TxnHost>,
        id: &str,
        timeout_ms: i32,
        expected: Option<(i64, i16)>,
    ) -> Result<(i64, i16), KafkaCode> {
        if timeout_ms <= 0 || i64::from(timeout_ms) > self.settings.max_timeout_ms {
            return Err(KafkaCode::InvalidTransactionTimeout);
        }
        let busy = self.claim_when_free(id).await?;
        let now = now_ms();
        let next = match self.get(id) {
            None => {
                if expected.is_some() {
                    return Err(KafkaCode::InvalidProducerIdMapping);
                }
                let producer_id = host.allocate_producer_id().await?;
                TxnMetadata::new(id, producer_id, timeout_ms, now)
            }
            Some(txn) => {
                if let Some((producer_id, epoch)) = expected {
                    if (producer_id, epoch) != (txn.producer_id, txn.epoch) {
                        return Err(KafkaCode::ProducerFenced);
                    }
                }
                match txn.status {
                    status if status.is_preparing() => return Err(KafkaCode::ConcurrentTransactions),
                    TxnStatus::Ongoing => {
                        let fenced = txn.fence_and_abort(now);
                        tracing::info!(
                            target: "sluice::txn",
                            "transaction {}: a new producer fenced epoch {}; aborting its transaction",
                            crate::text::escape(id),
                            txn.epoch
                        );
                        self.persist(host, id, Some(fenced.clone())).await?;
                        drop(busy);
                        self.spawn_completion(host, fenced);
                        return Err(KafkaCode::ConcurrentTransactions);
                    }
                    _ => {
                        let fresh = if txn.epoch >= EPOCH_MAX {
                            Some(host.allocate_producer_id().await?)
                        } else {
                            None
                        };
                        txn.bumped(timeout_ms, || fresh.expect("allocated above"), now)
                    }
                }
            }
        };
        let answer = (next.producer_id, next.epoch);
        self.persist(host, id, Some(next)).await?;
        Ok(answer)
    }

    /// AddPartitionsToTxn and AddOffsetsToTxn: the partitions join the ongoing transaction
    /// (beginning one if none is); `tv2` when a leader adds them on the producer's behalf
    /// (KIP-890's implicit add).
    pub async fn add_partitions(
        &self,
        host: &Rc<impl TxnHost>,
        id: &str,
        producer_id: i64,
        epoch: i16,
        partitions: &[(String, i32)],
        tv2: bool,
    ) -> Result<(), KafkaCode> {
        tracing::debug!(target: "sluice::txn", "transaction {}: adding {partitions:?}", crate::text::escape(id));
        let _busy = self.claim_when_free(id).await?;
        let txn = self.get(id).ok_or(KafkaCode::InvalidProducerIdMapping)?;
        match txn.add_partitions(producer_id, epoch, partitions, tv2, now_ms())? {
            None => Ok(()),
            Some(next) => self.persist(host, id, Some(next)).await,
        }
    }

    /// Whether producer `producer_id` at `epoch` has `partition` in its ongoing transaction
    /// (AddPartitionsToTxn v4's verify-only question).
    pub fn verify(&self, id: &str, producer_id: i64, epoch: i16, partition: &(String, i32)) -> Result<(), KafkaCode> {
        let txn = self.get(id).ok_or(KafkaCode::InvalidProducerIdMapping)?;
        txn.check_producer(producer_id, epoch)?;
        if txn.status == TxnStatus::Ongoing && txn.partitions.contains(partition) {
            Ok(())
        } else {
            Err(KafkaCode::InvalidTxnState)
        }
    }

    /// EndTxn: persists the decision, answers, and completes it in the background. `tv2`:
    /// EndTxn v5+, which bumps the epoch; the answer is the producer id and epoch the producer
    /// goes on with.
    pub async fn end_txn(
        &self,
        host: &Rc<impl TxnHost>,
        id: &str,
        producer_id: i64,
        epoch: i16,
        commit: bool,
        tv2: bool,
    ) -> Result<(i64, i16), KafkaCode> {
        tracing::debug!(target: "sluice::txn", "transaction {}: ending (commit {commit})", crate::text::escape(id));
        let busy = self.claim_when_free(id).await?;
        let txn = self.get(id).ok_or(KafkaCode::InvalidProducerIdMapping)?;
        let fresh = if txn.needs_fresh_id(tv2) {
            Some(host.allocate_producer_id().await?)
        } else {
            None
        };
        let next = match txn.end(producer_id, epoch, commit, tv2, fresh, now_ms())? {
            Ending::Done => return Ok(txn.continues_as()),
            Ending::Prepare(next) => next,
        };
        self.persist(host, id, Some(next.clone())).await?;
        let answer = next.continues_as();
        drop(busy);
        self.spawn_completion(host, next);
        Ok(answer)
    }

    /// Writes the markers of a Prepare* transaction and persists its completion, retrying
    /// failed partitions until every one has its marker, or this coordinator lets go of the
    /// id (its successor resumes from the log).
    fn spawn_completion(&self, host: &Rc<impl TxnHost>, txn: TxnMetadata) {
        // Claimed here, before the task starts, so that no request slips in between the
        // decision and its markers (it waits for them instead).
        if !self.busy.borrow_mut().insert(txn.id.clone()) {
            // Another round for the same id is already running.
            return;
        }
        let host = host.clone();
        crate::runtime::spawn_detached(async move {
            let coordinator = host.transactions();
            let _busy = Busy {
                coordinator,
                id: txn.id.clone(),
            };
            let commit = txn.status == TxnStatus::PrepareCommit;
            let mut left: Vec<(String, i32)> = txn.partitions.iter().cloned().collect();
            loop {
                let Some(coordinator_epoch) = coordinator.coordinator_epoch(host.as_ref(), &txn.id) else {
                    return;
                };
                if coordinator.get(&txn.id).as_ref() != Some(&txn) {
                    return;
                }
                let results = host
                    .write_markers(MarkerWork {
                        producer_id: txn.producer_id,
                        epoch: txn.epoch,
                        coordinator_epoch,
                        commit,
                        partitions: left.clone(),
                    })
                    .await;
                if results
                    .iter()
                    .any(|(_, code)| *code == Some(KafkaCode::TransactionCoordinatorFenced))
                {
                    // A newer coordinator has written this producer's markers: the id is its.
                    tracing::info!(
                        target: "sluice::txn",
                        "transaction {}: fenced by a newer coordinator; leaving it to that one",
                        crate::text::escape(&txn.id)
                    );
                    return;
                }
                left = results
                    .into_iter()
                    .filter_map(|(partition, code)| match code {
                        None => None,
                        // The topic is gone: nothing there to end.
                        Some(KafkaCode::UnknownTopicOrPartition) if host.metadata().topic(&partition.0).is_none() => {
                            None
                        }
                        Some(code) => {
                            tracing::debug!(
                                "transaction {}: marker for {}-{}: {code:?}; retrying",
                                crate::text::escape(&txn.id),
                                partition.0,
                                partition.1
                            );
                            Some(partition)
                        }
                    })
                    .collect();
                if left.is_empty() {
                    break;
                }
                crate::runtime::sleep(MARKER_RETRY_DELAY).await;
            }
            tracing::debug!(target: "sluice::txn", "transaction {}: markers written", crate::text::escape(&txn.id));
            let done = txn.completed(now_ms());
            loop {
                if coordinator.coordinator_epoch(host.as_ref(), &txn.id).is_none() {
                    return;
                }
                match coordinator.persist(&host, &txn.id, Some(done.clone())).await {
                    Ok(()) => break,
                    Err(code) => {
                        tracing::warn!(
                            "transaction {}: persisting its completion: {code:?}; retrying",
                            crate::text::escape(&txn.id)
                        );
                        crate::runtime::sleep(MARKER_RETRY_DELAY).await;
                    }
                }
            }
            tracing::debug!(
                target: "sluice::txn",
                "transaction {}: {}",
                crate::text::escape(&txn.id),
                done.status.name()
            );
        });
    }

    /// Aborts transactions past their timeout (fencing their producers) and forgets ids idle
    /// past `transactional.id.expiration.ms`; run every cleanup interval.
    pub async fn tick(&self, host: &Rc<impl TxnHost>) {
        let now = now_ms();
        let expiration_ms = self.settings.id_expiration_ms;
        let due: Vec<TxnMetadata> = self
            .txns
            .borrow()
            .values()
            .filter(|t| !self.busy.borrow().contains(&t.id))
            .filter(|t| match t.status {
                TxnStatus::Ongoing => t.start_ms + i64::from(t.timeout_ms) <= now,
                TxnStatus::Empty | TxnStatus::CompleteCommit | TxnStatus::CompleteAbort => {
                    t.last_update_ms + expiration_ms <= now
                }
                _ => false,
            })
            .cloned()
            .collect();
        for txn in due {
            let Ok(busy) = self.claim(&txn.id) else { continue };
            if self.coordinator_epoch(host.as_ref(), &txn.id).is_none() {
                continue;
            }
            if txn.status == TxnStatus::Ongoing {
                tracing::info!(
                    target: "sluice::txn",
                    "transaction {}: past its timeout of {} ms; aborting it",
                    crate::text::escape(&txn.id),
                    txn.timeout_ms
                );
                let aborting = txn.fence_and_abort(now);
                if self.persist(host, &txn.id, Some(aborting.clone())).await.is_ok() {
                    drop(busy);
                    self.spawn_completion(host, aborting);
                }
            } else if self.persist(host, &txn.id, None).await.is_ok() {
                tracing::info!(
                    target: "sluice::txn",
                    "transactional id {} expired",
                    crate::text::escape(&txn.id)
                );
            }
        }
    }

    /// Takes up the state partitions this shard owns and its broker leads (`led`, with their
    /// leader epochs): ids of a partition no longer led are dropped; a newly led one is
    /// replayed and its Prepare* transactions resumed.
    pub async fn follow_leadership(&self, host: &Rc<impl TxnHost>, led: &[(i32, i32)], count: i32) {
        let gone: Vec<i32> = self
            .partitions
            .borrow()
            .iter()
            .filter(|(p, (epoch, _))| !led.contains(&(**p, *epoch)))
            .map(|(p, _)| *p)
            .collect();
        for partition in gone {
            self.partitions.borrow_mut().remove(&partition);
            let belongs = |id: &str| crate::coordinator::route::partition_for(id, count) == partition;
            self.txns.borrow_mut().retain(|id, _| !belongs(id));
        }
        for &(partition, epoch) in led {
            if self.partitions.borrow().contains_key(&partition) {
                continue;
            }
            self.partitions.borrow_mut().insert(partition, (epoch, Load::Loading));
            let mut loaded: HashMap<String, Option<TxnMetadata>> = HashMap::new();
            let replayed = TRANSACTIONS
                .replay_partition(host, PartitionId(partition), &mut |record| {
                    if let crate::coordinator::replay::Replayed::Record { key, value, .. } = record {
                        apply(&mut loaded, key, value);
                    }
                })
                .await;
            if let Err(e) = replayed {
                tracing::error!("loading the transactions of {}-{partition}: {e}", TRANSACTIONS.name);
                self.partitions.borrow_mut().remove(&partition);
                continue;
            }
            let resume: Vec<TxnMetadata> = {
                let mut txns = self.txns.borrow_mut();
                let mut resume = Vec::new();
                for (id, txn) in loaded {
                    let Some(txn) = txn else { continue };
                    if matches!(txn.status, TxnStatus::PrepareCommit | TxnStatus::PrepareAbort) {
                        resume.push(txn.clone());
                    }
                    txns.insert(id, txn);
                }
                resume
            };
            self.partitions.borrow_mut().insert(partition, (epoch, Load::Loaded));
            // Fifty partitions load at every start: only those with work left are worth a line.
            if resume.is_empty() {
                tracing::debug!(
                    target: "sluice::txn",
                    "{}-{partition}: coordinating its transactions (leader epoch {epoch})",
                    TRANSACTIONS.name
                );
            } else {
                tracing::info!(
                    target: "sluice::txn",
                    "{}-{partition}: coordinating its transactions (leader epoch {epoch}), completing {}",
                    TRANSACTIONS.name,
                    resume.len()
                );
            }
            for txn in resume {
                self.spawn_completion(host, txn);
            }
        }
    }
}

/// Applies one replayed record: the id's latest state, or None for a tombstone.
fn apply(loaded: &mut HashMap<String, Option<TxnMetadata>>, key: Option<Bytes>, value: Option<Bytes>) {
    let Some(id) = key.and_then(records::decode_key) else {
        return;
    };
    let txn = value.and_then(|v| records::decode_value(&id, v));
    loaded.insert(id, txn);
}

/// Drives one shard's timeouts and expirations until the shard stops.
pub async fn run_timer(host: Rc<impl TxnHost>) {
    loop {
        crate::runtime::sleep(host.transactions().settings.cleanup_interval).await;
        if host.is_closing() {
            return;
        }
        host.transactions().tick(&host).await;
    }
}
