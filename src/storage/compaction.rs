//! Log compaction (`cleanup.policy=compact`): in the closed segments, keep only the newest
//! record of each key. The pieces here are pure; [`crate::storage::log::PartitionLog::compact`]
//! drives them over a log's segments in the background task queue.
//!
//! A batch keeps its header: base offset, `lastOffsetDelta`, base timestamp and producer
//! fields stay as they were (as Kafka's cleaner does for v2 batches), so every kept record's
//! offset and timestamp deltas stay valid and its raw bytes are copied unchanged. Only the
//! record count, the batch length, the largest timestamp (under CreateTime) and the CRC are
//! rewritten; a compressed batch is decompressed, filtered and recompressed with its codec.
//! Offsets are preserved, so a compacted log has gaps, which fetch and recovery accept.
//!
//! Records without a key cannot be superseded and are kept. A tombstone (null value) that is
//! the newest for its key is removed once its timestamp is older than `delete.retention.ms`.
//! A batch whose records cannot be decoded is kept whole: compaction never drops what it
//! cannot read.

use std::collections::HashMap;
use std::ops::Range;

use bytes::{Bytes, BytesMut};
use kafka_protocol::compression::{Compressor, Decompressor, Gzip, Lz4, Snappy, Zstd};

use crate::constants::COMPACTION_KEY_MAP_BYTES_MAX;
use crate::record::{read_varint, BatchHeader, HEADER_BYTES, LOG_OVERHEAD_BYTES};

/// Bytes a key map entry costs besides the key itself (hash table slot, `Bytes` handle).
const KEY_ENTRY_OVERHEAD_BYTES: usize = 64;

/// One record inside a batch's (decompressed) records section.
#[derive(Debug, Clone, PartialEq, Eq)]
struct RecordSpan {
    /// The whole record, length prefix included.
    bytes: Range<usize>,
    timestamp_delta: i64,
    offset_delta: i32,
    key: Option<Range<usize>>,
    tombstone: bool,
}

/// A batch opened for compaction: its records section, decompressed, and where each record is.
struct OpenBatch {
    raw: Bytes,
    records: Vec<RecordSpan>,
}

fn open_batch(batch: &Bytes) -> Result<OpenBatch, String> {
    let header = BatchHeader::new(batch).map_err(|e| e.to_string())?;
    let section = batch.slice(HEADER_BYTES..);
    let raw = match header.compression() {
        0 => section,
        codec => decompress(codec, section)?,
    };
    let records = parse_records(&raw, header.record_count())?;
    Ok(OpenBatch { raw, records })
}

fn decompress(codec: u8, mut section: Bytes) -> Result<Bytes, String> {
    let take = |raw: &mut Bytes| Ok(raw.clone());
    match codec {
        1 => Gzip::decompress(&mut section, take),
        2 => Snappy::decompress(&mut section, take),
        3 => Lz4::decompress(&mut section, take),
        4 => Zstd::decompress(&mut section, take),
        other => return Err(format!("unknown compression codec {other}")),
    }
    .map_err(|e| format!("decompressing: {e}"))
}

fn compress(codec: u8, raw: &[u8]) -> Result<BytesMut, String> {
    let mut out = BytesMut::new();
    let put = |buffer: &mut BytesMut| {
        buffer.extend_from_slice(raw);
        Ok(())
    };
    match codec {
        1 => Gzip::compress(&mut out, put),
        2 => Snappy::compress(&mut out, put),
        3 => Lz4::compress(&mut out, put),
        4 => Zstd::compress(&mut out, put),
        other => return Err(format!("unknown compression codec {other}")),
    }
    .map_err(|e| format!("compressing: {e}"))?;
    Ok(out)
}

/// Walks `count` records: length, attributes, timestamp delta, offset delta, key, value.
fn parse_records(raw: &[u8], count: i32) -> Result<Vec<RecordSpan>, String> {
    let varint = |at: &mut usize, what: &str| -> Result<i64, String> {
        let (value, used) = read_varint(&raw[*at..]).ok_or_else(|| format!("bad {what} at byte {at}"))?;
        *at += used;
        Ok(value)
    };
    let mut records = Vec::with_capacity(usize::try_from(count).unwrap_or(0));
    let mut at = 0usize;
    for _ in 0..count {
        let start = at;
        let length = varint(&mut at, "record length")?;
        let end = usize::try_from(length)
            .ok()
            .and_then(|l| at.checked_add(l))
            .filter(|&end| end <= raw.len())
            .ok_or_else(|| format!("record at byte {start} runs past the batch"))?;
        at += 1; // attributes
        let timestamp_delta = varint(&mut at, "timestamp delta")?;
        let offset_delta = varint(&mut at, "offset delta")? as i32;
        let key_length = varint(&mut at, "key length")?;
        let key = if key_length < 0 {
            None
        } else {
            let key_end = at + key_length as usize;
            if key_end > end {
                return Err(format!("key of the record at byte {start} runs past it"));
            }
            let key = at..key_end;
            at = key_end;
            Some(key)
        };
        let value_length = varint(&mut at, "value length")?;
        if at > end {
            return Err(format!("record at byte {start} is shorter than its fields"));
        }
        records.push(RecordSpan {
            bytes: start..end,
            timestamp_delta,
            offset_delta,
            key,
            tombstone: value_length < 0,
        });
        at = end;
    }
    if at != raw.len() {
        return Err("bytes left after the last record".into());
    }
    Ok(records)
}

/// The newest offset of every key seen, within [`COMPACTION_KEY_MAP_BYTES_MAX`].
#[derive(Default)]
pub struct KeyMap {
    newest: HashMap<Bytes, i64>,
    bytes: usize,
}

impl KeyMap {
    /// Whether the map has reached its memory bound; later segments must wait for a later pass.
    pub fn is_full(&self) -> bool {
        self.bytes >= COMPACTION_KEY_MAP_BYTES_MAX
    }

    pub fn len(&self) -> usize {
        self.newest.len()
    }

    pub fn is_empty(&self) -> bool {
        self.newest.is_empty()
    }

    /// Notes the keys of a stored batch. Returns false (adding nothing) if it cannot be read.
    pub fn add_batch(&mut self, batch: &Bytes) -> bool {
        let Ok(header) = BatchHeader::new(batch) else {
            return false;
        };
        // A transactional record counts only once its marker commits it, and may be aborted:
        // it must not make an older value of its key look superseded.
        if header.is_control() || header.is_transactional() {
            return true;
        }
        let Ok(open) = open_batch(batch) else {
            return false;
        };
        let base = header.base_offset().0;
        for record in &open.records {
            if let Some(key) = &record.key {
                let offset = base + i64::from(record.offset_delta);
                let key = Bytes::copy_from_slice(&open.raw[key.clone()]);
                let added = key.len() + KEY_ENTRY_OVERHEAD_BYTES;
                if self.newest.insert(key, offset).is_none() {
                    self.bytes += added;
                }
            }
        }
        true
    }

    fn is_newest(&self, key: &[u8], offset: i64) -> bool {
        self.newest.get(key).is_none_or(|&newest| newest == offset)
    }
}

/// What compaction makes of one batch.
#[derive(Debug, PartialEq, Eq)]
pub enum Cleaned {
    /// Every record stays: keep the stored bytes.
    Unchanged,
    /// No record stays.
    Dropped,
    /// Some records stay: the rebuilt batch.
    Rebuilt(Bytes),
}

/// Applies the key map to one stored batch. Tombstones older than `tombstone_cutoff_ms` go;
/// the earliest time a kept tombstone may go (timestamp + `delete_retention_ms`) lowers
/// `next_tombstone_ms`.
pub fn clean_batch(
    batch: &Bytes,
    keys: &KeyMap,
    tombstone_cutoff_ms: i64,
    delete_retention_ms: i64,
    next_tombstone_ms: &mut Option<i64>,
) -> Cleaned {
    let Ok(header) = BatchHeader::new(batch) else {
        return Cleaned::Unchanged;
    };
    // Markers, and the transactional batches whose fate they decide, are kept whole: until
    // compaction knows which transactions were aborted, dropping none of them is what keeps
    // a read_committed consumer (and a coordinator's replay) right.
    if header.is_control() || header.is_transactional() {
        return Cleaned::Unchanged;
    }
    let Ok(open) = open_batch(batch) else {
        tracing::warn!(
            "compaction keeps the undecodable batch at offset {} whole",
            header.base_offset()
        );
        return Cleaned::Unchanged;
    };
    let base = header.base_offset().0;
    let base_timestamp = header.base_timestamp();
    let kept: Vec<&RecordSpan> = open
        .records
        .iter()
        .filter(|record| {
            let Some(key) = &record.key else {
                return true;
            };
            if !keys.is_newest(&open.raw[key.clone()], base + i64::from(record.offset_delta)) {
                return false;
            }
            if record.tombstone {
                let timestamp = base_timestamp.saturating_add(record.timestamp_delta);
                if timestamp < tombstone_cutoff_ms {
                    return false;
                }
                let due = timestamp.saturating_add(delete_retention_ms);
                *next_tombstone_ms = Some(next_tombstone_ms.map_or(due, |d| d.min(due)));
            }
            true
        })
        .collect();
    if kept.len() == open.records.len() {
        return Cleaned::Unchanged;
    }
    if kept.is_empty() {
        return Cleaned::Dropped;
    }
    let raw: Vec<u8> = kept.iter().flat_map(|r| &open.raw[r.bytes.clone()]).copied().collect();
    let body = match header.compression() {
        0 => BytesMut::from(&raw[..]),
        codec => match compress(codec, &raw) {
            Ok(body) => body,
            Err(e) => {
                tracing::warn!("compaction keeps the batch at offset {base} whole: {e}");
                return Cleaned::Unchanged;
            }
        },
    };
    let mut out = BytesMut::with_capacity(HEADER_BYTES + body.len());
    out.extend_from_slice(&batch[..HEADER_BYTES]);
    out.extend_from_slice(&body);
    let length = (out.len() - LOG_OVERHEAD_BYTES) as i32;
    out[8..12].copy_from_slice(&length.to_be_bytes());
    out[57..61].copy_from_slice(&(kept.len() as i32).to_be_bytes());
    let log_append_time = header.attributes() & 0x08 != 0;
    if !log_append_time {
        let newest = kept.iter().map(|r| r.timestamp_delta).max().expect("kept is not empty");
        out[35..43].copy_from_slice(&base_timestamp.saturating_add(newest).to_be_bytes());
    }
    let crc = crc32c::crc32c(&out[21..]);
    out[17..21].copy_from_slice(&crc.to_be_bytes());
    Cleaned::Rebuilt(out.freeze())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::Offset;
    use crate::record::{encode_batch, patch_offsets};
    use kafka_protocol::records::{Compression, RecordBatchDecoder};

    /// A stored batch of `(key, value)` records at `base_offset`, timestamps 1000 + i.
    fn stored(base_offset: i64, records: &[(&str, Option<&str>)], compression: Compression) -> Bytes {
        let records = records.iter().enumerate().map(|(i, (key, value))| {
            (
                Some(Bytes::copy_from_slice(key.as_bytes())),
                value.map(|v| Bytes::copy_from_slice(v.as_bytes())),
                1000 + i as i64,
            )
        });
        let mut bytes = encode_batch(records, compression).unwrap().to_vec();
        patch_offsets(&mut bytes, Offset(base_offset), 0);
        Bytes::from(bytes)
    }

    fn decoded(batch: &Bytes) -> Vec<(i64, String, Option<String>, i64)> {
        let set = RecordBatchDecoder::decode(&mut batch.clone()).unwrap();
        set.records
            .into_iter()
            .map(|r| {
                let text = |b: Bytes| String::from_utf8(b.to_vec()).unwrap();
                (r.offset, text(r.key.unwrap()), r.value.map(text), r.timestamp)
            })
            .collect()
    }

    #[test]
    fn the_newest_record_per_key_stays_with_its_offset_for_every_codec() {
        for compression in crate::record::tests::COMPRESSIONS {
            let old = stored(
                10,
                &[("a", Some("a1")), ("b", Some("b1")), ("c", Some("c1"))],
                compression,
            );
            let new = stored(13, &[("a", Some("a2")), ("c", None)], compression);
            let mut keys = KeyMap::default();
            assert!(keys.add_batch(&old) && keys.add_batch(&new));
            assert_eq!(keys.len(), 3);
            let mut next = None;
            let Cleaned::Rebuilt(cleaned) = clean_batch(&old, &keys, 0, 500, &mut next) else {
                panic!("{compression:?}: the old batch loses records");
            };
            let header = BatchHeader::new(&cleaned).unwrap();
            assert_eq!(header.base_offset(), Offset(10), "{compression:?}");
            assert_eq!(header.last_offset(), Offset(12), "the header keeps its offset range");
            assert_eq!(header.record_count(), 1);
            assert_eq!(header.max_timestamp(), 1001, "the largest kept timestamp");
            assert_eq!(header.crc(), crc32c::crc32c(&cleaned[21..]));
            assert_eq!(decoded(&cleaned), vec![(11, "b".into(), Some("b1".into()), 1001)]);
            // The newest batch keeps everything; its tombstone is young, so due later.
            assert_eq!(clean_batch(&new, &keys, 0, 500, &mut next), Cleaned::Unchanged);
            assert_eq!(next, Some(1001 + 500));
        }
    }

    #[test]
    fn old_tombstones_go_and_keyless_records_stay() {
        let tombstones = stored(0, &[("a", None), ("b", None)], Compression::None);
        let mut keys = KeyMap::default();
        keys.add_batch(&tombstones);
        let mut next = None;
        assert_eq!(clean_batch(&tombstones, &keys, 5_000, 100, &mut next), Cleaned::Dropped);
        assert_eq!(next, None);

        let keyless = encode_batch(
            [
                (None, Some(Bytes::from_static(b"x"))),
                (None, Some(Bytes::from_static(b"y"))),
            ]
            .into_iter()
            .map(|(k, v)| (k, v, 1)),
            Compression::None,
        )
        .unwrap();
        let mut keys = KeyMap::default();
        keys.add_batch(&keyless);
        assert!(keys.is_empty());
        assert_eq!(clean_batch(&keyless, &keys, 5_000, 100, &mut next), Cleaned::Unchanged);
    }

    #[test]
    fn undecodable_batches_are_kept_whole() {
        let mut bytes = stored(0, &[("a", Some("1")), ("a", Some("2"))], Compression::None).to_vec();
        bytes[HEADER_BYTES] = 0x7f; // a record length past the batch
        let bytes = Bytes::from(bytes);
        let mut keys = KeyMap::default();
        assert!(!keys.add_batch(&bytes));
        assert_eq!(clean_batch(&bytes, &keys, 0, 0, &mut None), Cleaned::Unchanged);
    }

    #[test]
    fn transactional_records_never_supersede_and_are_kept_with_their_markers() {
        let committed = stored(0, &[("a", Some("committed"))], Compression::None);
        let mut transactional = crate::record::encode_transactional_batch(
            [(
                Some(Bytes::from_static(b"a")),
                Some(Bytes::from_static(b"maybe-aborted")),
                1,
            )],
            7,
            0,
        )
        .unwrap()
        .to_vec();
        patch_offsets(&mut transactional, Offset(1), 0);
        let transactional = Bytes::from(transactional);
        let mut marker = crate::record::encode_marker(7, 0, 0, crate::record::Marker::Abort, 2).to_vec();
        patch_offsets(&mut marker, Offset(2), 0);
        let marker = Bytes::from(marker);
        let mut keys = KeyMap::default();
        for batch in [&committed, &transactional, &marker] {
            assert!(keys.add_batch(batch));
        }
        let mut next = None;
        assert_eq!(
            clean_batch(&committed, &keys, 0, 0, &mut next),
            Cleaned::Unchanged,
            "still the newest committed value"
        );
        assert_eq!(clean_batch(&transactional, &keys, 0, 0, &mut next), Cleaned::Unchanged);
        assert_eq!(clean_batch(&marker, &keys, 0, 0, &mut next), Cleaned::Unchanged);
    }
}
