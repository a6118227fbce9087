//! Recent batches of one partition, kept in memory so tailing consumers never touch disk.
//!
//! The cache holds a contiguous run of the newest batches, oldest first, bounded in bytes.
//! A fetch at or after its first offset is answered from it; older fetches go to disk.

use std::collections::VecDeque;

use bytes::Bytes;

use crate::ids::Offset;

pub struct BatchCache {
    batches: VecDeque<CachedBatch>,
    bytes: usize,
    bytes_max: usize,
}

struct CachedBatch {
    base_offset: Offset,
    last_offset: Offset,
    bytes: Bytes,
}

impl BatchCache {
    pub fn new(bytes_max: usize) -> BatchCache {
        BatchCache {
            batches: VecDeque::new(),
            bytes: 0,
            bytes_max,
        }
    }

    /// Adds the newest batch, evicting the oldest ones past the byte budget.
    pub fn push(&mut self, base_offset: Offset, last_offset: Offset, bytes: Bytes) {
        if let Some(newest) = self.batches.back() {
            assert!(
                base_offset > newest.last_offset,
                "cache batch {base_offset} does not follow {}",
                newest.last_offset
            );
        }
        self.bytes += bytes.len();
        self.batches.push_back(CachedBatch {
            base_offset,
            last_offset,
            bytes,
        });
        while self.bytes > self.bytes_max && self.batches.len() > 1 {
            let oldest = self.batches.pop_front().expect("more than one batch");
            self.bytes -= oldest.bytes.len();
        }
    }

    /// Drops everything, e.g. when the log is truncated.
    pub fn clear(&mut self) {
        self.batches.clear();
        self.bytes = 0;
    }

    /// The batches from the one holding `offset` onwards, at most `max_bytes` of them but
    /// always at least one; None when `offset` is older than the cache.
    pub fn read(&self, offset: Offset, max_bytes: usize) -> Option<Vec<Bytes>> {
        let first = self.batches.front()?;
        if offset < first.base_offset {
            return None;
        }
        let start = self.batches.partition_point(|b| b.last_offset < offset);
        let mut out = Vec::new();
        let mut total = 0usize;
        for batch in self.batches.range(start..) {
            if !out.is_empty() && total + batch.bytes.len() > max_bytes {
                break;
            }
            total += batch.bytes.len();
            out.push(batch.bytes.clone());
        }
        Some(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cache_with(sizes: &[usize], bytes_max: usize) -> BatchCache {
        let mut cache = BatchCache::new(bytes_max);
        let mut offset = 0;
        for &size in sizes {
            cache.push(Offset(offset), Offset(offset + 9), Bytes::from(vec![0u8; size]));
            offset += 10;
        }
        cache
    }

    #[test]
    fn read_starts_at_the_batch_holding_the_offset() {
        let cache = cache_with(&[100, 100, 100], 10_000);
        assert_eq!(cache.read(Offset(15), 10_000).unwrap().len(), 2);
        assert_eq!(cache.read(Offset(30), 10_000).unwrap().len(), 0);
    }

    #[test]
    fn read_always_returns_one_batch_even_past_max_bytes() {
        let cache = cache_with(&[500, 500], 10_000);
        assert_eq!(cache.read(Offset(0), 10).unwrap().len(), 1);
        assert_eq!(cache.read(Offset(0), 1000).unwrap().len(), 2);
    }

    #[test]
    fn eviction_keeps_the_newest_within_budget() {
        let cache = cache_with(&[100, 100, 100], 250);
        assert!(cache.read(Offset(0), 10_000).is_none(), "oldest batch evicted");
        assert_eq!(cache.read(Offset(10), 10_000).unwrap().len(), 2);
    }
}
