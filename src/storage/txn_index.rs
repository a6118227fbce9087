//! The aborted-transaction index of a partition: for every transaction that ended with an
//! abort marker, the producer and the offsets it spanned, so a read_committed Fetch can tell
//! the consumer which records to drop ([`AbortedIndex::overlapping`]).
//!
//! On disk, each segment's aborts (those whose marker lies in it) are a `.txnindex` file in
//! Kafka's layout: entries of [`ENTRY_BYTES`] bytes,
//! `version i16 (0) | producerId i64 | firstOffset i64 | lastOffset i64 | lastStableOffset i64`,
//! where `lastOffset` is the marker's offset. A segment's file is written whole when the
//! segment is sealed (roll) and for the active segment on a clean close; aborts past the last
//! producer snapshot are rebuilt by recovery's replay, so the files need be complete only up
//! to that snapshot.

use std::path::Path;

use crate::error::StorageError;
use crate::ids::Offset;

/// Bytes of one `.txnindex` entry.
pub const ENTRY_BYTES: usize = 34;

/// One aborted transaction of one producer in this partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AbortedTxn {
    pub producer_id: i64,
    pub first_offset: Offset,
    /// The abort marker's offset.
    pub last_offset: Offset,
    /// The partition's last stable offset once the marker was written.
    pub last_stable_offset: Offset,
}

/// The partition's aborted transactions, ordered by marker offset.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct AbortedIndex {
    entries: Vec<AbortedTxn>,
}

impl AbortedIndex {
    /// Adds an abort whose marker follows every one indexed.
    pub fn push(&mut self, aborted: AbortedTxn) {
        if let Some(last) = self.entries.last() {
            assert!(
                last.last_offset < aborted.last_offset,
                "abort markers out of order: {} after {}",
                aborted.last_offset,
                last.last_offset
            );
        }
        self.entries.push(aborted);
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The aborts a read of `[from, upto)` must report: those whose records may lie in it
    /// (marker at or past `from`, first record below `upto`), in marker order.
    pub fn overlapping(&self, from: Offset, upto: Offset) -> Vec<AbortedTxn> {
        let start = self.entries.partition_point(|e| e.last_offset < from);
        self.entries[start..]
            .iter()
            .filter(|e| e.first_offset < upto)
            .copied()
            .collect()
    }

    /// Forgets the aborts whose marker is below `log_start` (retention, DeleteRecords).
    pub fn drop_below(&mut self, log_start: Offset) {
        self.entries.retain(|e| e.last_offset >= log_start);
    }

    /// Forgets the aborts whose marker is at or past `offset` (truncation, replay).
    pub fn drop_from(&mut self, offset: Offset) {
        self.entries.retain(|e| e.last_offset < offset);
    }

    /// The aborts whose marker lies in `[base, end)`: one segment's file.
    pub fn in_segment(&self, base: Offset, end: Offset) -> Vec<AbortedTxn> {
        self.entries
            .iter()
            .filter(|e| e.last_offset >= base && e.last_offset < end)
            .copied()
            .collect()
    }

    /// Adds the entries of one segment's file (loaded in segment order).
    pub fn extend(&mut self, entries: Vec<AbortedTxn>) {
        for entry in entries {
            self.push(entry);
        }
    }
}

/// A `.txnindex` file's bytes.
pub fn encode(entries: &[AbortedTxn]) -> Vec<u8> {
    let mut out = Vec::with_capacity(entries.len() * ENTRY_BYTES);
    for entry in entries {
        out.extend_from_slice(&0i16.to_be_bytes());
        out.extend_from_slice(&entry.producer_id.to_be_bytes());
        out.extend_from_slice(&entry.first_offset.0.to_be_bytes());
        out.extend_from_slice(&entry.last_offset.0.to_be_bytes());
        out.extend_from_slice(&entry.last_stable_offset.0.to_be_bytes());
    }
    out
}

/// Reads a `.txnindex` file's bytes; a file that is not whole entries of version 0, or whose
/// markers are out of order, is corrupt.
pub fn decode(bytes: &[u8], path: &Path) -> Result<Vec<AbortedTxn>, StorageError> {
    let corrupt = |position: usize, reason: String| StorageError::Corrupt {
        path: path.to_path_buf(),
        position: position as u64,
        reason,
    };
    if bytes.len() % ENTRY_BYTES != 0 {
        return Err(corrupt(
            bytes.len(),
            format!(
                "{} bytes is not a whole number of {ENTRY_BYTES}-byte entries",
                bytes.len()
            ),
        ));
    }
    let mut entries: Vec<AbortedTxn> = Vec::with_capacity(bytes.len() / ENTRY_BYTES);
    for (i, chunk) in bytes.chunks_exact(ENTRY_BYTES).enumerate() {
        let i64_at = |at: usize| i64::from_be_bytes(chunk[at..at + 8].try_into().expect("8 bytes"));
        let version = i16::from_be_bytes([chunk[0], chunk[1]]);
        if version != 0 {
            return Err(corrupt(i * ENTRY_BYTES, format!("entry version {version}")));
        }
        let entry = AbortedTxn {
            producer_id: i64_at(2),
            first_offset: Offset(i64_at(10)),
            last_offset: Offset(i64_at(18)),
            last_stable_offset: Offset(i64_at(26)),
        };
        if entries.last().is_some_and(|last| last.last_offset >= entry.last_offset) {
            return Err(corrupt(i * ENTRY_BYTES, "entries out of marker order".to_string()));
        }
        entries.push(entry);
    }
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn aborted(producer_id: i64, first: i64, last: i64) -> AbortedTxn {
        AbortedTxn {
            producer_id,
            first_offset: Offset(first),
            last_offset: Offset(last),
            last_stable_offset: Offset(last + 1),
        }
    }

    #[test]
    fn a_read_gets_the_aborts_overlapping_it() {
        let mut index = AbortedIndex::default();
        index.push(aborted(1, 0, 5));
        index.push(aborted(2, 3, 9));
        index.push(aborted(3, 20, 25));
        assert_eq!(index.overlapping(Offset(6), Offset(20)), vec![aborted(2, 3, 9)]);
        assert_eq!(index.overlapping(Offset(0), Offset(4)).len(), 2);
        assert_eq!(index.overlapping(Offset(26), Offset(30)), vec![]);
        index.drop_below(Offset(6));
        index.drop_from(Offset(25));
        assert_eq!(index.in_segment(Offset(0), Offset(100)), vec![aborted(2, 3, 9)]);
    }

    /// Golden bytes of a `.txnindex` entry: Kafka's layout, which must never change silently.
    #[test]
    fn the_file_layout_is_kafkas() {
        let entry = aborted(7, 10, 12);
        let bytes = encode(&[entry]);
        let mut expected = vec![0, 0];
        for value in [7i64, 10, 12, 13] {
            expected.extend_from_slice(&value.to_be_bytes());
        }
        assert_eq!(bytes, expected);
        assert_eq!(decode(&bytes, Path::new("x.txnindex")).unwrap(), vec![entry]);
        assert!(decode(&bytes[..33], Path::new("x.txnindex")).is_err());
        let mut twice = bytes.clone();
        twice.extend_from_slice(&bytes);
        assert!(decode(&twice, Path::new("x.txnindex")).is_err(), "same marker twice");
    }
}
