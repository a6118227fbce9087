//! The header view, validation and splitting of a run of batches.

use crate::error::KafkaCode;
use crate::ids::Offset;

/// Bytes of the fixed v2 header.
pub const HEADER_BYTES: usize = 61;
/// Bytes before `batchLength` counts: baseOffset and batchLength itself.
pub const LOG_OVERHEAD_BYTES: usize = 12;
/// Where the CRC'd region starts: `attributes`.
pub(super) const CRC_START: usize = 21;

/// Why a batch was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BatchError {
    #[error("batch of {0} bytes is shorter than a header")]
    TooShort(usize),
    #[error("batchLength {declared} does not match the {actual} bytes present")]
    LengthMismatch { declared: i64, actual: usize },
    #[error("magic {0} is not 2")]
    Magic(i8),
    #[error("CRC32C {stored:#010x} does not match computed {computed:#010x}")]
    Crc { stored: u32, computed: u32 },
    #[error("record count {count} does not fit lastOffsetDelta {last_offset_delta}")]
    Count { count: i32, last_offset_delta: i32 },
}

impl BatchError {
    /// The code a producer is answered with. A batch whose bytes do not match its length or
    /// CRC was damaged on the way and may be retried (CORRUPT_MESSAGE is retriable); one that
    /// is intact but malformed will fail the same way again (INVALID_RECORD), as in Kafka.
    pub fn kafka_code(&self) -> KafkaCode {
        match self {
            BatchError::TooShort(_) | BatchError::LengthMismatch { .. } | BatchError::Crc { .. } => {
                KafkaCode::CorruptMessage
            }
            BatchError::Magic(_) | BatchError::Count { .. } => KafkaCode::InvalidRecord,
        }
    }
}

/// A borrowed view of one batch's header. Construction checks only that a header is present;
/// [`validate`] checks the rest.
#[derive(Clone, Copy)]
pub struct BatchHeader<'a> {
    bytes: &'a [u8],
}

pub(super) fn be_i16(b: &[u8], at: usize) -> i16 {
    i16::from_be_bytes([b[at], b[at + 1]])
}
fn be_i32(b: &[u8], at: usize) -> i32 {
    i32::from_be_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}
fn be_i64(b: &[u8], at: usize) -> i64 {
    i64::from_be_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

impl<'a> BatchHeader<'a> {
    /// A view of the batch at the start of `bytes`; `bytes` may extend past the batch.
    pub fn new(bytes: &'a [u8]) -> Result<BatchHeader<'a>, BatchError> {
        if bytes.len() < HEADER_BYTES {
            return Err(BatchError::TooShort(bytes.len()));
        }
        Ok(BatchHeader { bytes })
    }

    pub fn base_offset(&self) -> Offset {
        Offset(be_i64(self.bytes, 0))
    }
    /// The `batchLength` field: bytes after the length field.
    pub fn batch_length(&self) -> i32 {
        be_i32(self.bytes, 8)
    }
    /// Bytes of the whole batch on the wire and on disk, if the length field is sane.
    pub fn total_bytes(&self) -> Option<usize> {
        let length = self.batch_length();
        let total = LOG_OVERHEAD_BYTES as i64 + i64::from(length);
        (total >= HEADER_BYTES as i64).then_some(total as usize)
    }
    pub fn partition_leader_epoch(&self) -> i32 {
        be_i32(self.bytes, 12)
    }
    pub fn magic(&self) -> i8 {
        self.bytes[16] as i8
    }
    pub fn crc(&self) -> u32 {
        be_i32(self.bytes, 17) as u32
    }
    pub fn attributes(&self) -> i16 {
        be_i16(self.bytes, 21)
    }
    /// Compression codec from the attributes: 0 none, 1 gzip, 2 snappy, 3 lz4, 4 zstd.
    pub fn compression(&self) -> u8 {
        (self.attributes() & 0x7) as u8
    }
    pub fn is_transactional(&self) -> bool {
        self.attributes() & 0x10 != 0
    }
    pub fn is_control(&self) -> bool {
        self.attributes() & 0x20 != 0
    }
    /// Whether the timestamp-type attribute says LogAppendTime (the broker's clock).
    pub fn is_log_append_time(&self) -> bool {
        self.attributes() & 0x08 != 0
    }
    pub fn last_offset_delta(&self) -> i32 {
        be_i32(self.bytes, 23)
    }
    pub fn base_timestamp(&self) -> i64 {
        be_i64(self.bytes, 27)
    }
    pub fn max_timestamp(&self) -> i64 {
        be_i64(self.bytes, 35)
    }
    pub fn producer_id(&self) -> i64 {
        be_i64(self.bytes, 43)
    }
    pub fn producer_epoch(&self) -> i16 {
        be_i16(self.bytes, 51)
    }
    pub fn base_sequence(&self) -> i32 {
        be_i32(self.bytes, 53)
    }
    pub fn record_count(&self) -> i32 {
        be_i32(self.bytes, 57)
    }
    /// Offset of the batch's last record.
    pub fn last_offset(&self) -> Offset {
        Offset(self.base_offset().0 + i64::from(self.last_offset_delta()))
    }
}

/// Checks the frame of one whole batch as a producer sent it (`bytes` must be exactly one
/// batch): header present, length, magic, CRC32C, and a record count that matches
/// `lastOffsetDelta`. The records inside are not opened; the produce path does that with
/// [`crate::kafka::record_validate::validate_produced`].
pub fn validate(bytes: &[u8]) -> Result<BatchHeader<'_>, BatchError> {
    let header = BatchHeader::new(bytes)?;
    if header.magic() != 2 {
        return Err(BatchError::Magic(header.magic()));
    }
    let declared = i64::from(header.batch_length()) + LOG_OVERHEAD_BYTES as i64;
    if declared != bytes.len() as i64 {
        return Err(BatchError::LengthMismatch {
            declared,
            actual: bytes.len(),
        });
    }
    let computed = crc32c::crc32c(&bytes[CRC_START..]);
    if computed != header.crc() {
        return Err(BatchError::Crc {
            stored: header.crc(),
            computed,
        });
    }
    let count = header.record_count();
    let last_offset_delta = header.last_offset_delta();
    if count <= 0 || last_offset_delta != count - 1 {
        return Err(BatchError::Count {
            count,
            last_offset_delta,
        });
    }
    Ok(header)
}

/// Reads a zig-zag varint (Kafka's record field encoding); returns the value and bytes used.
pub fn read_varint(bytes: &[u8]) -> Option<(i64, usize)> {
    let mut raw: u64 = 0;
    for (i, byte) in bytes.iter().take(10).enumerate() {
        raw |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            let value = ((raw >> 1) as i64) ^ -((raw & 1) as i64);
            return Some((value, i + 1));
        }
    }
    None
}

/// Splits a produce request's `records` field into its batches. Each element is one whole
/// batch by its length field; a trailing fragment is an error.
pub fn split_batches(records: &[u8]) -> Result<Vec<std::ops::Range<usize>>, BatchError> {
    let mut ranges = Vec::new();
    let mut at = 0;
    while at < records.len() {
        let header = BatchHeader::new(&records[at..])?;
        let total = header.total_bytes().ok_or(BatchError::LengthMismatch {
            declared: i64::from(header.batch_length()),
            actual: records.len() - at,
        })?;
        if total > records.len() - at {
            return Err(BatchError::LengthMismatch {
                declared: total as i64,
                actual: records.len() - at,
            });
        }
        ranges.push(at..at + total);
        at += total;
    }
    Ok(ranges)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::tests::encode_batch;
    use kafka_protocol::records::Compression;

    #[test]
    fn flipped_bit_fails_the_crc() {
        let mut batch = encode_batch(3, Compression::None).to_vec();
        let last = batch.len() - 1;
        batch[last] ^= 1;
        assert!(matches!(validate(&batch), Err(BatchError::Crc { .. })));
    }

    #[test]
    fn wrong_count_and_lengths_are_refused() {
        let batch = encode_batch(3, Compression::None);
        assert!(matches!(validate(&batch[..40]), Err(BatchError::TooShort(40))));
        assert!(matches!(
            validate(&batch[..batch.len() - 1]),
            Err(BatchError::LengthMismatch { .. })
        ));
        let mut wrong_magic = batch.to_vec();
        wrong_magic[16] = 1;
        assert!(matches!(validate(&wrong_magic), Err(BatchError::Magic(1))));
    }

    #[test]
    fn split_finds_each_batch_and_refuses_fragments() {
        let one = encode_batch(2, Compression::None);
        let two = encode_batch(5, Compression::Lz4);
        let joined = [one.as_ref(), two.as_ref()].concat();
        let ranges = split_batches(&joined).unwrap();
        assert_eq!(ranges, vec![0..one.len(), one.len()..joined.len()]);
        assert!(split_batches(&joined[..joined.len() - 3]).is_err());
    }

    #[test]
    fn varints_decode_zig_zag() {
        assert_eq!(read_varint(&[0x00]), Some((0, 1)));
        assert_eq!(read_varint(&[0x01]), Some((-1, 1)));
        assert_eq!(read_varint(&[0x02]), Some((1, 1)));
        assert_eq!(read_varint(&[0xac, 0x02]), Some((150, 2)));
        assert_eq!(read_varint(&[0x80]), None);
    }
}
