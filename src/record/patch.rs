//! Rewrites of header fields in place: the offsets and epoch the log assigns (outside the
//! CRC) and the timestamps the broker sets (inside it, so the CRC is recomputed).

use super::header::{be_i16, CRC_START, HEADER_BYTES};
use crate::ids::Offset;

/// Writes the offset the log assigned and the current leader epoch into the header.
/// Neither is covered by the CRC, so the batch stays valid.
pub fn patch_offsets(batch: &mut [u8], base_offset: Offset, leader_epoch: i32) {
    assert!(batch.len() >= HEADER_BYTES, "patching a {}-byte batch", batch.len());
    batch[0..8].copy_from_slice(&base_offset.0.to_be_bytes());
    batch[12..16].copy_from_slice(&leader_epoch.to_be_bytes());
}

/// Marks a batch as stamped with the broker's clock (LogAppendTime): sets the timestamp-type
/// attribute and `maxTimestamp`, which lie inside the CRC'd region, so the CRC is recomputed.
/// The batch is `head` followed by `rest` (the log patches a copy of the header alone);
/// `head` holds at least the header.
pub fn stamp_log_append_time(head: &mut [u8], rest: &[u8], now_ms: i64) {
    assert!(head.len() >= HEADER_BYTES, "stamping a {}-byte header", head.len());
    let attributes = be_i16(head, 21) | 0x08;
    head[21..23].copy_from_slice(&attributes.to_be_bytes());
    head[35..43].copy_from_slice(&now_ms.to_be_bytes());
    let crc = crc32c::crc32c_append(crc32c::crc32c(&head[CRC_START..]), rest);
    head[17..21].copy_from_slice(&crc.to_be_bytes());
}

/// Sets `maxTimestamp` (inside the CRC'd region, so the CRC is recomputed), as Kafka's log
/// validator rewrites it to the largest record timestamp.
pub fn set_max_timestamp(batch: &mut [u8], max_timestamp: i64) {
    assert!(batch.len() >= HEADER_BYTES, "rewriting a {}-byte batch", batch.len());
    batch[35..43].copy_from_slice(&max_timestamp.to_be_bytes());
    let crc = crc32c::crc32c(&batch[CRC_START..]);
    batch[17..21].copy_from_slice(&crc.to_be_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::tests::encode_batch;
    use crate::record::validate;
    use kafka_protocol::records::Compression;

    #[test]
    fn patching_offsets_keeps_the_crc_valid() {
        let mut batch = encode_batch(3, Compression::None).to_vec();
        patch_offsets(&mut batch, Offset(1234), 7);
        let header = validate(&batch).unwrap();
        assert_eq!(header.base_offset(), Offset(1234));
        assert_eq!(header.last_offset(), Offset(1236));
        assert_eq!(header.partition_leader_epoch(), 7);
    }
}
