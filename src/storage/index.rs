//! Sparse indexes of one segment, kept in memory and written beside the log when the segment
//! closes.
//!
//! The offset index maps a relative offset to the byte position of the batch that starts at
//! it, one entry per [`INDEX_INTERVAL_BYTES`](crate::constants::INDEX_INTERVAL_BYTES) of log.
//! The time index maps the largest timestamp seen so far to the batch where it was reached.
//! Both use Kafka's entry layouts (8 and 12 big-endian bytes). Entries only ever grow, which
//! is asserted on every push and checked when a file is loaded.

/// Offset index entry: (offset relative to the segment base, byte position in the log).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OffsetIndex {
    entries: Vec<(u32, u32)>,
}

const OFFSET_ENTRY_BYTES: usize = 8;
const TIME_ENTRY_BYTES: usize = 12;

impl OffsetIndex {
    pub fn push(&mut self, relative_offset: u32, position: u32) {
        if let Some(&(last_offset, last_position)) = self.entries.last() {
            assert!(
                relative_offset > last_offset && position > last_position,
                "offset index went backwards: ({relative_offset}, {position}) after ({last_offset}, {last_position})"
            );
        }
        self.entries.push((relative_offset, position));
    }

    /// Byte position of the last indexed batch at or before `relative_offset`; 0 if none.
    pub fn lookup(&self, relative_offset: u32) -> u32 {
        let after = self.entries.partition_point(|&(offset, _)| offset <= relative_offset);
        if after == 0 {
            0
        } else {
            self.entries[after - 1].1
        }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.entries.len() * OFFSET_ENTRY_BYTES);
        for &(offset, position) in &self.entries {
            out.extend_from_slice(&offset.to_be_bytes());
            out.extend_from_slice(&position.to_be_bytes());
        }
        out
    }

    /// Loads an index file, or None when it does not fit a log of `log_bytes` (stale, torn or
    /// from another log): the caller then rebuilds it from the log.
    pub fn decode(bytes: &[u8], log_bytes: u64) -> Option<OffsetIndex> {
        if bytes.len() % OFFSET_ENTRY_BYTES != 0 {
            return None;
        }
        let mut index = OffsetIndex::default();
        for entry in bytes.chunks_exact(OFFSET_ENTRY_BYTES) {
            let offset = u32::from_be_bytes(entry[0..4].try_into().ok()?);
            let position = u32::from_be_bytes(entry[4..8].try_into().ok()?);
            let grows = index.entries.last().is_none_or(|&(o, p)| offset > o && position > p);
            if !grows || u64::from(position) >= log_bytes {
                return None;
            }
            index.entries.push((offset, position));
        }
        Some(index)
    }
}

/// Time index entry: (largest timestamp so far, relative offset of the batch reaching it).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TimeIndex {
    entries: Vec<(i64, u32)>,
}

impl TimeIndex {
    /// Records that the segment's largest timestamp reached `timestamp` at `relative_offset`.
    /// Ignored unless the timestamp is larger than the last entry's.
    pub fn push(&mut self, timestamp: i64, relative_offset: u32) {
        if let Some(&(last_timestamp, last_offset)) = self.entries.last() {
            if timestamp <= last_timestamp {
                return;
            }
            assert!(
                relative_offset >= last_offset,
                "time index offset went backwards: {relative_offset} after {last_offset}"
            );
        }
        self.entries.push((timestamp, relative_offset));
    }

    /// Relative offset from which a scan for the first record at or after `timestamp` must
    /// start: the last entry whose timestamp is below it (every record before that entry's
    /// offset is older), or 0.
    pub fn lookup(&self, timestamp: i64) -> u32 {
        let below = self.entries.partition_point(|&(ts, _)| ts < timestamp);
        if below == 0 {
            0
        } else {
            self.entries[below - 1].1
        }
    }

    pub fn last(&self) -> Option<(i64, u32)> {
        self.entries.last().copied()
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.entries.len() * TIME_ENTRY_BYTES);
        for &(timestamp, offset) in &self.entries {
            out.extend_from_slice(&timestamp.to_be_bytes());
            out.extend_from_slice(&offset.to_be_bytes());
        }
        out
    }

    /// Loads a time index file, or None when it is torn or out of order.
    pub fn decode(bytes: &[u8]) -> Option<TimeIndex> {
        if bytes.len() % TIME_ENTRY_BYTES != 0 {
            return None;
        }
        let mut index = TimeIndex::default();
        for entry in bytes.chunks_exact(TIME_ENTRY_BYTES) {
            let timestamp = i64::from_be_bytes(entry[0..8].try_into().ok()?);
            let offset = u32::from_be_bytes(entry[8..12].try_into().ok()?);
            let grows = index.entries.last().is_none_or(|&(t, o)| timestamp > t && offset >= o);
            if !grows {
                return None;
            }
            index.entries.push((timestamp, offset));
        }
        Some(index)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offset_lookup_finds_the_last_entry_at_or_before() {
        let mut index = OffsetIndex::default();
        index.push(10, 4096);
        index.push(20, 8192);
        assert_eq!(index.lookup(0), 0);
        assert_eq!(index.lookup(10), 4096);
        assert_eq!(index.lookup(19), 4096);
        assert_eq!(index.lookup(500), 8192);
    }

    #[test]
    fn offset_index_golden_encoding_round_trips() {
        let mut index = OffsetIndex::default();
        index.push(1, 4096);
        let bytes = index.encode();
        assert_eq!(bytes, [0, 0, 0, 1, 0, 0, 0x10, 0]);
        assert_eq!(OffsetIndex::decode(&bytes, 8192), Some(index));
        assert_eq!(OffsetIndex::decode(&bytes, 4096), None, "position past the log");
        assert_eq!(OffsetIndex::decode(&bytes[..5], 8192), None, "torn entry");
    }

    #[test]
    fn time_index_golden_encoding_round_trips() {
        let mut index = TimeIndex::default();
        index.push(0x0102_0304_0506_0708, 9);
        let bytes = index.encode();
        assert_eq!(bytes, [1, 2, 3, 4, 5, 6, 7, 8, 0, 0, 0, 9]);
        assert_eq!(TimeIndex::decode(&bytes), Some(index));
    }

    #[test]
    fn time_lookup_starts_before_the_first_newer_record() {
        let mut index = TimeIndex::default();
        index.push(100, 0);
        index.push(90, 5);
        index.push(200, 10);
        assert_eq!(index.last(), Some((200, 10)));
        assert_eq!(index.lookup(50), 0);
        assert_eq!(index.lookup(150), 0);
        assert_eq!(index.lookup(201), 10);
        assert_eq!(TimeIndex::decode(&index.encode()), Some(index));
    }

    #[test]
    #[should_panic(expected = "went backwards")]
    fn offset_index_refuses_to_go_backwards() {
        let mut index = OffsetIndex::default();
        index.push(10, 100);
        index.push(5, 200);
    }
}
