//! Kafka's RecordBatch v2 as bytes: a view of the header, CRC32C validation, in-place
//! offset and epoch patching, and the encoding of the broker's own internal batches.
//!
//! A leaf: the protocol layer, storage, the group coordinator and the bench all read batches
//! through it, and it imports nothing of theirs.
//!
//! Batches are stored exactly as producers sent them. The broker never re-encodes records:
//! [`validate`] checks the header and the CRC (the produce path then walks every record, see
//! [`crate::kafka::record_validate`]), and the log writes the base offset and leader epoch
//! into the header. Both fields lie before the CRC'd region (which starts at `attributes`),
//! so patching them leaves the CRC valid.
//!
//! Header layout (big-endian):
//! ```text
//! 0  baseOffset i64        8  batchLength i32      12 partitionLeaderEpoch i32
//! 16 magic i8              17 crc u32 (CRC32C of bytes 21..end)
//! 21 attributes i16        23 lastOffsetDelta i32  27 baseTimestamp i64
//! 35 maxTimestamp i64      43 producerId i64       51 producerEpoch i16
//! 53 baseSequence i32      57 recordCount i32      61 records...
//! ```

mod control;
mod encode;
mod header;
mod patch;

pub use control::{encode_marker, marker_of, EndMarker, Marker};
pub use encode::{encode_batch, encode_transactional_batch};
pub use header::{read_varint, split_batches, validate, BatchError, BatchHeader, HEADER_BYTES, LOG_OVERHEAD_BYTES};
pub use patch::{patch_offsets, set_max_timestamp, stamp_log_append_time};

#[cfg(test)]
pub(crate) mod tests {
    use bytes::Bytes;
    use kafka_protocol::records::Compression;

    /// Every codec a v2 batch may use.
    pub(crate) const COMPRESSIONS: [Compression; 5] = [
        Compression::None,
        Compression::Gzip,
        Compression::Snappy,
        Compression::Lz4,
        Compression::Zstd,
    ];

    /// `count` records with 100-byte values, as a producer would send them.
    pub(crate) fn encode_batch(count: usize, compression: Compression) -> Bytes {
        let records = (0..count).map(|i| {
            let key = Bytes::from(format!("key-{i}"));
            (
                Some(key),
                Some(Bytes::from(vec![b'v'; 100])),
                1_700_000_000_000 + i as i64,
            )
        });
        super::encode_batch(records, compression).unwrap()
    }
}
