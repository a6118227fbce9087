//! A batch as the log stores it: the producer's bytes, kept by reference, with the fields the
//! log assigns written into a copy of the 61-byte header alone.
//!
//! The appended bytes are copied once, into the direct-I/O buffer of the write; the batch
//! cache keeps the two pieces, so a fetch from the cache splices them into its response. What
//! a piece keeps alive is bounded by the produce path: a batch is kept as a slice of its
//! request frame only when it is most of that frame (see `handlers::produce`), otherwise it
//! is copied out first.

use bytes::{Bytes, BytesMut};

use crate::ids::Offset;
use crate::record::{self, BatchHeader, HEADER_BYTES};

#[derive(Clone, Debug)]
pub struct StoredBatch {
    /// The header with the base offset and leader epoch assigned (and, for LogAppendTime,
    /// the timestamp type, max timestamp and CRC).
    header: Bytes,
    /// Everything after the header, as the producer sent it.
    records: Bytes,
}

impl StoredBatch {
    /// `batch` (validated, so at least a header long) at `base_offset`.
    pub fn assign(
        batch: &Bytes,
        base_offset: Offset,
        leader_epoch: i32,
        log_append_time_ms: Option<i64>,
    ) -> StoredBatch {
        assert!(batch.len() >= HEADER_BYTES, "storing a {}-byte batch", batch.len());
        let mut header = BytesMut::from(&batch[..HEADER_BYTES]);
        let records = batch.slice(HEADER_BYTES..);
        record::patch_offsets(&mut header, base_offset, leader_epoch);
        if let Some(now) = log_append_time_ms {
            record::stamp_log_append_time(&mut header, &records, now);
        }
        StoredBatch {
            header: header.freeze(),
            records,
        }
    }

    /// `batch` (a whole, checked batch) exactly as it is: a follower's copy of its leader's.
    pub fn verbatim(batch: &Bytes) -> StoredBatch {
        assert!(batch.len() >= HEADER_BYTES, "storing a {}-byte batch", batch.len());
        StoredBatch {
            header: batch.slice(..HEADER_BYTES),
            records: batch.slice(HEADER_BYTES..),
        }
    }

    pub fn len(&self) -> usize {
        self.header.len() + self.records.len()
    }

    /// Never: a stored batch holds at least its header.
    pub fn is_empty(&self) -> bool {
        false
    }

    pub fn header(&self) -> BatchHeader<'_> {
        BatchHeader::new(&self.header).expect("a stored batch has a whole header")
    }

    /// The transaction marker a control batch carries (None for any other batch).
    pub fn marker(&self) -> Option<record::EndMarker> {
        self.header()
            .is_control()
            .then(|| record::marker_of(&self.to_bytes()))
            .flatten()
    }

    /// The batch's bytes in order, as two pieces.
    pub fn pieces(&self) -> [&Bytes; 2] {
        [&self.header, &self.records]
    }

    /// The batch as one contiguous buffer (a copy).
    pub fn to_bytes(&self) -> Bytes {
        let mut out = BytesMut::with_capacity(self.len());
        out.extend_from_slice(&self.header);
        out.extend_from_slice(&self.records);
        out.freeze()
    }
}

/// What a log read returns, in offset order: runs of whole batches read from disk, and
/// batches from the cache.
#[derive(Clone, Debug)]
pub enum Stored {
    /// One or more whole batches, contiguous.
    Run(Bytes),
    /// One batch, as appended.
    Batch(StoredBatch),
}

impl Stored {
    pub fn len(&self) -> usize {
        match self {
            Stored::Run(bytes) => bytes.len(),
            Stored::Batch(batch) => batch.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The bytes in order: the run, or the batch's two pieces.
    pub fn pieces(&self) -> impl Iterator<Item = &Bytes> {
        let (first, second) = match self {
            Stored::Run(bytes) => (bytes, None),
            Stored::Batch(batch) => {
                let [header, records] = batch.pieces();
                (header, Some(records))
            }
        };
        std::iter::once(first).chain(second)
    }

    /// The bytes as one buffer: the run itself, or a copy of the batch.
    pub fn contiguous(&self) -> Bytes {
        match self {
            Stored::Run(bytes) => bytes.clone(),
            Stored::Batch(batch) => batch.to_bytes(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{tests::encode_batch, validate};

    fn batch_of(records: usize) -> Bytes {
        encode_batch(records, kafka_protocol::records::Compression::None)
    }

    #[test]
    fn assigned_batches_match_a_patched_copy_and_share_the_producers_bytes() {
        let batch = batch_of(20);
        let stored = StoredBatch::assign(&batch, Offset(4242), 3, None);
        let mut expected = batch.to_vec();
        record::patch_offsets(&mut expected, Offset(4242), 3);
        assert_eq!(stored.to_bytes(), expected);
        assert_eq!(stored.len(), batch.len());
        assert_eq!(stored.header().base_offset(), Offset(4242));
        let [_, records] = stored.pieces();
        assert_eq!(
            records.as_ptr(),
            batch[HEADER_BYTES..].as_ptr(),
            "the records are the producer's bytes, not a copy"
        );
        validate(&stored.to_bytes()).expect("the CRC still holds");
    }

    #[test]
    fn log_append_time_is_stamped_with_a_crc_over_both_pieces() {
        let batch = batch_of(5);
        let stored = StoredBatch::assign(&batch, Offset(7), 0, Some(1_800_000_000_000));
        let whole = stored.to_bytes();
        let header = BatchHeader::new(&whole).unwrap();
        assert_eq!(header.max_timestamp(), 1_800_000_000_000);
        validate(&whole).expect("the recomputed CRC covers the records after the header");
        let mut in_one = batch.to_vec();
        record::patch_offsets(&mut in_one, Offset(7), 0);
        record::stamp_log_append_time(&mut in_one, &[], 1_800_000_000_000);
        assert_eq!(whole, in_one, "stamping in two pieces equals stamping the whole batch");
    }
}
