//! Recent batches kept in memory so tailing consumers never touch disk.
//!
//! Each partition keeps a contiguous run of its newest batches ([`BatchCache`]); a fetch at
//! or after the run's first offset is answered from it, older fetches go to disk. All the
//! partitions of a shard share one byte budget ([`CacheBudget`], `batch.cache.bytes`):
//! when it is exceeded the oldest cached batch of the whole shard is evicted first, so the
//! memory a shard spends on caching is bounded however many partitions it owns.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::rc::{Rc, Weak};

use crate::ids::Offset;
use crate::storage::batch::StoredBatch;

/// Something whose oldest cached batch the budget can evict: a partition log.
pub trait Evict {
    /// Drops the cached batch starting at `base_offset` if it is still the oldest one.
    fn evict_cached(&self, base_offset: Offset);
}

/// A cached batch as the budget tracks it: its partition, base offset and size.
type Admitted = (Weak<dyn Evict>, Offset, usize);

/// One shard's cache byte budget, in insertion order across its partitions.
pub struct CacheBudget {
    bytes: Cell<usize>,
    bytes_max: usize,
    order: RefCell<VecDeque<Admitted>>,
}

impl CacheBudget {
    pub fn new(bytes_max: usize) -> Rc<CacheBudget> {
        Rc::new(CacheBudget {
            bytes: Cell::new(0),
            bytes_max,
            order: RefCell::new(VecDeque::new()),
        })
    }

    pub fn bytes(&self) -> usize {
        self.bytes.get()
    }

    /// Records a batch just cached by `owner`, then evicts the shard's oldest batches until
    /// the budget holds. Entries of closed partitions are dropped as they come up.
    pub fn admit(&self, owner: Weak<dyn Evict>, base_offset: Offset, bytes: usize) {
        self.bytes.set(self.bytes.get() + bytes);
        self.order.borrow_mut().push_back((owner, base_offset, bytes));
        while self.bytes.get() > self.bytes_max {
            let Some((owner, base, size)) = self.order.borrow_mut().pop_front() else {
                break;
            };
            self.bytes.set(self.bytes.get() - size);
            if let Some(owner) = owner.upgrade() {
                owner.evict_cached(base);
            }
        }
    }
}

pub struct BatchCache {
    batches: VecDeque<CachedBatch>,
}

struct CachedBatch {
    base_offset: Offset,
    last_offset: Offset,
    batch: StoredBatch,
}

impl Default for BatchCache {
    fn default() -> Self {
        BatchCache::new()
    }
}

impl BatchCache {
    pub fn new() -> BatchCache {
        BatchCache {
            batches: VecDeque::new(),
        }
    }

    /// Adds the newest batch; the shard's [`CacheBudget`] decides when it leaves.
    pub fn push(&mut self, base_offset: Offset, last_offset: Offset, batch: StoredBatch) {
        if let Some(newest) = self.batches.back() {
            assert!(
                base_offset > newest.last_offset,
                "cache batch {base_offset} does not follow {}",
                newest.last_offset
            );
        }
        self.batches.push_back(CachedBatch {
            base_offset,
            last_offset,
            batch,
        });
    }

    /// Drops the oldest batch if it starts at `base_offset` (it may be gone already).
    pub fn evict(&mut self, base_offset: Offset) {
        if self.batches.front().is_some_and(|b| b.base_offset == base_offset) {
            self.batches.pop_front();
        }
    }

    /// Drops every cached batch (the log's tail was cut). The budget still counts them until
    /// their turn to leave comes, as [`BatchCache::forget_below`]'s.
    pub fn clear(&mut self) {
        self.batches.clear();
    }

    /// Drops every cached batch below `offset` (a compacted range, now different on disk).
    /// The budget still counts them until their turn to leave comes; evicting then is a no-op.
    pub fn forget_below(&mut self, offset: Offset) {
        while self.batches.front().is_some_and(|b| b.last_offset < offset) {
            self.batches.pop_front();
        }
    }

    /// The batches from the one holding `offset` onwards, at most `max_bytes` of them but
    /// always at least one; None when `offset` is older than the cache.
    pub fn read(&self, offset: Offset, max_bytes: usize) -> Option<Vec<StoredBatch>> {
        let first = self.batches.front()?;
        if offset < first.base_offset {
            return None;
        }
        let start = self.batches.partition_point(|b| b.last_offset < offset);
        let mut out = Vec::new();
        let mut total = 0usize;
        for batch in self.batches.range(start..) {
            if !out.is_empty() && total + batch.batch.len() > max_bytes {
                break;
            }
            total += batch.batch.len();
            out.push(batch.batch.clone());
        }
        Some(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    struct Partition {
        cache: RefCell<BatchCache>,
    }

    impl Evict for Partition {
        fn evict_cached(&self, base_offset: Offset) {
            self.cache.borrow_mut().evict(base_offset);
        }
    }

    fn push(budget: &CacheBudget, partition: &Rc<Partition>, base: i64, size: usize) {
        partition
            .cache
            .borrow_mut()
            .push(Offset(base), Offset(base + 9), stored(base, size));
        let owner: Rc<dyn Evict> = partition.clone();
        budget.admit(Rc::downgrade(&owner), Offset(base), size);
    }

    /// A stand-in batch of `size` bytes (a zeroed header but for its base offset).
    fn stored(base: i64, size: usize) -> StoredBatch {
        StoredBatch::assign(&Bytes::from(vec![0u8; size]), Offset(base), 0, None)
    }

    fn partition() -> Rc<Partition> {
        Rc::new(Partition {
            cache: RefCell::new(BatchCache::new()),
        })
    }

    #[test]
    fn read_starts_at_the_batch_holding_the_offset() {
        let budget = CacheBudget::new(10_000);
        let p = partition();
        for base in [0, 10, 20] {
            push(&budget, &p, base, 100);
        }
        assert_eq!(p.cache.borrow().read(Offset(15), 10_000).unwrap().len(), 2);
        assert_eq!(p.cache.borrow().read(Offset(30), 10_000).unwrap().len(), 0);
    }

    #[test]
    fn read_always_returns_one_batch_even_past_max_bytes() {
        let budget = CacheBudget::new(10_000);
        let p = partition();
        push(&budget, &p, 0, 500);
        push(&budget, &p, 10, 500);
        assert_eq!(p.cache.borrow().read(Offset(0), 10).unwrap().len(), 1);
        assert_eq!(p.cache.borrow().read(Offset(0), 1000).unwrap().len(), 2);
    }

    #[test]
    fn the_shard_budget_evicts_the_oldest_batch_of_any_partition() {
        let budget = CacheBudget::new(250);
        let (a, b) = (partition(), partition());
        push(&budget, &a, 0, 100);
        push(&budget, &b, 0, 100);
        push(&budget, &a, 10, 100);
        assert_eq!(budget.bytes(), 200, "a's oldest batch was evicted to stay within 250");
        assert!(a.cache.borrow().read(Offset(0), 10_000).is_none());
        assert_eq!(a.cache.borrow().read(Offset(10), 10_000).unwrap().len(), 1);
        assert_eq!(b.cache.borrow().read(Offset(0), 10_000).unwrap().len(), 1);
    }

    #[test]
    fn entries_of_dropped_partitions_free_their_bytes() {
        let budget = CacheBudget::new(150);
        let gone = partition();
        push(&budget, &gone, 0, 100);
        drop(gone);
        let kept = partition();
        push(&budget, &kept, 0, 100);
        assert_eq!(budget.bytes(), 100);
    }
}
