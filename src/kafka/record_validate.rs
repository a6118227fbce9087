//! Validation of every record inside a produced batch, as Kafka's `LogValidator` does, so a
//! batch whose CRC is valid but whose content is not can never reach the log (a consumer that
//! meets such a batch hangs or fails with CorruptRecordError, and the partition is poisoned).
//!
//! [`validate_produced`] runs on the connection's shard before anything is written. It is
//! synchronous CPU work over bytes that are already in cache: one pass over the records of an
//! uncompressed batch (the hot path), or one bounded decompression into a per-thread scratch
//! buffer and one pass over that. Nothing is re-encoded: the stored batch is always the
//! producer's bytes.
//!
//! Record layout inside a v2 batch, after the 61-byte header (varints are zig-zag):
//! ```text
//! length varint, attributes i8, timestampDelta varlong, offsetDelta varint,
//! keyLength varint (-1 = null), key, valueLength varint (-1 = null), value,
//! headerCount varint, then per header: keyLength varint (>= 0), key,
//! valueLength varint (-1 = null), value
//! ```
//! A record must consume exactly `length` bytes, and the records exactly the batch.
//!
//! Where Sluice is stricter than Kafka, it is because Sluice stores what it validated and
//! does not re-encode it: `offsetDelta` must equal the record's index (Kafka reassigns inner
//! offsets), a producer may not set the LogAppendTime attribute (Kafka clears it), and
//! lengths below -1 are refused rather than read as null. The one field it does rewrite, as
//! Kafka does, is a `maxTimestamp` that is not the largest record timestamp (a copy of that
//! batch, with its CRC recomputed).

mod decompress;

pub use decompress::decompress_owned;

use std::cell::RefCell;

use crate::config::{TimestampType, TopicConfig};
use crate::constants::{BATCH_DECOMPRESSED_BYTES_MAX, DECOMPRESSED_SCRATCH_BYTES_KEPT};
use crate::error::KafkaCode;
use crate::record::{self, BatchError, BatchHeader, HEADER_BYTES};

/// Smallest record body: attributes, and one byte each for timestampDelta, offsetDelta,
/// keyLength, valueLength and headerCount.
const RECORD_BODY_BYTES_MIN: usize = 6;

/// Smallest header inside a record: one byte each for its keyLength and valueLength.
const RECORD_HEADER_BYTES_MIN: usize = 2;

/// What a topic's configuration and the broker's clock require of a produced batch.
#[derive(Clone, Debug)]
pub struct Rules {
    /// The broker's clock, read once per request.
    pub now_ms: i64,
    /// CreateTime checks each record's timestamp against the bounds below; LogAppendTime
    /// ignores producer timestamps (the log stamps the batch with its own clock).
    pub timestamp_type: TimestampType,
    /// How far before `now_ms` a record's timestamp may lie.
    pub timestamp_before_max_ms: i64,
    /// How far after `now_ms` a record's timestamp may lie.
    pub timestamp_after_max_ms: i64,
    /// Bytes a compressed batch may decompress to.
    pub decompressed_bytes_max: usize,
}

impl Rules {
    /// The rules of a topic with `config`, at broker time `now_ms`.
    pub fn for_topic(config: &TopicConfig, now_ms: i64) -> Rules {
        Rules {
            now_ms,
            timestamp_type: config.message_timestamp_type,
            timestamp_before_max_ms: config.message_timestamp_before_max_ms,
            timestamp_after_max_ms: config.message_timestamp_after_max_ms,
            decompressed_bytes_max: BATCH_DECOMPRESSED_BYTES_MAX,
        }
    }

    /// The oldest and newest record timestamps accepted, inclusive. Saturation is exact here:
    /// a bound past the range of i64 excludes no timestamp.
    fn timestamp_range(&self) -> (i64, i64) {
        (
            self.now_ms.saturating_sub(self.timestamp_before_max_ms),
            self.now_ms.saturating_add(self.timestamp_after_max_ms),
        )
    }
}

/// Why a produced batch was refused: the fault, and the index of the record it is in when it
/// is in one.
#[derive(Debug, thiserror::Error)]
#[error("{}{fault}", record.map(|i| format!("record {i}: ")).unwrap_or_default())]
pub struct Refusal {
    /// The failing record's index within its batch (Kafka's `batch_index`).
    pub record: Option<i32>,
    pub fault: Fault,
}

impl Refusal {
    fn batch(fault: impl Into<Fault>) -> Refusal {
        Refusal {
            record: None,
            fault: fault.into(),
        }
    }

    /// The code the producer is answered with.
    pub fn kafka_code(&self) -> KafkaCode {
        self.fault.kafka_code()
    }
}

/// What is wrong with a batch or one of its records.
#[derive(Debug, thiserror::Error)]
pub enum Fault {
    #[error(transparent)]
    Batch(#[from] BatchError),
    #[error("clients are not allowed to write control records")]
    Control,
    #[error("compression codec {0} is unknown")]
    UnknownCodec(u8),
    #[error("invalid sequence number {base_sequence} in a batch with producer id {producer_id}")]
    Sequence { producer_id: i64, base_sequence: i32 },
    #[error("the batch's timestamp type is LogAppendTime; a producer must not set it")]
    LogAppendTime,
    #[error("{codec} records do not decompress: {source}")]
    Decompress {
        codec: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("{codec} records decompress to more than {max} bytes")]
    DecompressedTooLarge { codec: &'static str, max: usize },
    #[error("the batch ends after {read} of its {count} records")]
    Missing { read: i32, count: i32 },
    #[error("{0} is not a valid varint (overlong, out of range or cut off)")]
    Varint(&'static str),
    #[error("record length {0} is below the minimum of {RECORD_BODY_BYTES_MIN} bytes")]
    RecordTooShort(i32),
    #[error("record of {length} bytes runs past the {left} bytes left in the batch")]
    RecordPastEnd { length: i32, left: usize },
    #[error("{field} length {length} does not fit the {left} bytes left in the record")]
    Length {
        field: &'static str,
        length: i32,
        left: usize,
    },
    #[error("header count {count} is negative or cannot fit the {left} bytes left in the record")]
    HeaderCount { count: i32, left: usize },
    #[error("header {0} has a null key")]
    NullHeaderKey(i32),
    #[error("offsetDelta {0} is not the record's index")]
    OffsetDelta(i32),
    #[error("{0} bytes are left over inside the record")]
    RecordLeftover(usize),
    #[error("{0} bytes are left after the last record")]
    BatchLeftover(usize),
    #[error("timestamp {timestamp} is out of range: it must be within [{low}, {high}]")]
    Timestamp { timestamp: i64, low: i64, high: i64 },
    #[error("maxTimestamp {stored} does not equal the largest record timestamp {largest}")]
    MaxTimestamp { stored: i64, largest: i64 },
}

impl Fault {
    /// INVALID_TIMESTAMP for timestamps (as Kafka's `RecordValidationException` carries),
    /// the batch frame's own code for frame faults, INVALID_RECORD for everything else: an
    /// intact batch that is malformed fails the same way on every retry.
    pub fn kafka_code(&self) -> KafkaCode {
        match self {
            Fault::Batch(e) => e.kafka_code(),
            Fault::LogAppendTime | Fault::Timestamp { .. } => KafkaCode::InvalidTimestamp,
            _ => KafkaCode::InvalidRecord,
        }
    }
}

thread_local! {
    /// Decompressed records of the batch being validated. One per shard thread, reused from
    /// batch to batch; validation never awaits, so it is never borrowed twice.
    static SCRATCH: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// Checks one whole batch as a producer sent it (`bytes` must be exactly one batch): its frame
/// ([`record::validate`]), its attributes, and every record inside, decompressing within
/// `rules.decompressed_bytes_max` when the batch is compressed.
pub fn validate_produced<'a>(bytes: &'a [u8], rules: &Rules) -> Result<BatchHeader<'a>, Refusal> {
    let header = record::validate(bytes).map_err(Refusal::batch)?;
    if header.is_control() {
        return Err(Refusal::batch(Fault::Control));
    }
    if header.is_log_append_time() {
        return Err(Refusal::batch(Fault::LogAppendTime));
    }
    if header.producer_id() >= 0 && header.base_sequence() < 0 {
        return Err(Refusal::batch(Fault::Sequence {
            producer_id: header.producer_id(),
            base_sequence: header.base_sequence(),
        }));
    }
    let payload = &bytes[HEADER_BYTES..];
    let largest = match header.compression() {
        0 => walk_records(payload, &header, rules)?,
        codec @ 1..=4 => SCRATCH.with(|scratch| {
            let mut scratch = scratch.borrow_mut();
            let walked = decompress::decompress(codec, payload, &mut scratch, rules.decompressed_bytes_max)
                .map_err(Refusal::batch)
                .and_then(|records| walk_records(records, &header, rules));
            // A rare huge batch must not pin its memory to the thread for good.
            if scratch.len() > DECOMPRESSED_SCRATCH_BYTES_KEPT {
                *scratch = Vec::new();
            }
            walked
        })?,
        codec => return Err(Refusal::batch(Fault::UnknownCodec(codec))),
    };
    // LogAppendTime topics overwrite maxTimestamp with the broker's clock when appending. A
    // CreateTime batch whose maximum is not its records' is refused here with the true one
    // (Fault::MaxTimestamp), which the produce handler writes in, as Kafka does.
    if rules.timestamp_type == TimestampType::CreateTime {
        let stored = header.max_timestamp();
        // Java clients start their maximum at -1 (no timestamp), so for records all stamped
        // below -1 they write -1; other encoders write the true maximum. Either is accepted.
        if stored != largest && stored != largest.max(-1) {
            return Err(Refusal::batch(Fault::MaxTimestamp { stored, largest }));
        }
    }
    Ok(header)
}

/// Walks the `count` records of `records`; returns the largest record timestamp.
fn walk_records(records: &[u8], header: &BatchHeader<'_>, rules: &Rules) -> Result<i64, Refusal> {
    let count = header.record_count();
    let base_timestamp = header.base_timestamp();
    let check_timestamps = rules.timestamp_type == TimestampType::CreateTime;
    let (low, high) = rules.timestamp_range();
    let mut largest = i64::MIN;
    let mut at = 0;
    for index in 0..count {
        let refuse = |fault| Refusal {
            record: Some(index),
            fault,
        };
        if at == records.len() {
            return Err(Refusal::batch(Fault::Missing { read: index, count }));
        }
        let length = read_varint(records, &mut at).ok_or_else(|| refuse(Fault::Varint("record length")))?;
        if length < RECORD_BODY_BYTES_MIN as i32 {
            return Err(refuse(Fault::RecordTooShort(length)));
        }
        let left = records.len() - at;
        if length as usize > left {
            return Err(refuse(Fault::RecordPastEnd { length, left }));
        }
        let body = &records[at..at + length as usize];
        at += length as usize;
        let timestamp = base_timestamp.wrapping_add(walk_record(body, index).map_err(refuse)?);
        if check_timestamps && timestamp != -1 && !(low..=high).contains(&timestamp) {
            return Err(refuse(Fault::Timestamp { timestamp, low, high }));
        }
        largest = largest.max(timestamp);
    }
    if at != records.len() {
        return Err(Refusal::batch(Fault::BatchLeftover(records.len() - at)));
    }
    Ok(largest)
}

/// Checks one record's body (the bytes its length covers); returns its timestampDelta.
fn walk_record(body: &[u8], index: i32) -> Result<i64, Fault> {
    // The attributes byte is present (the body has at least the minimum length) and unused
    // in v2, as Kafka leaves it.
    let mut at = 1;
    let timestamp_delta = read_varlong(body, &mut at).ok_or(Fault::Varint("timestampDelta"))?;
    let offset_delta = read_varint(body, &mut at).ok_or(Fault::Varint("offsetDelta"))?;
    if offset_delta != index {
        return Err(Fault::OffsetDelta(offset_delta));
    }
    let key = read_varint(body, &mut at).ok_or(Fault::Varint("key length"))?;
    skip(body, &mut at, key, "key")?;
    let value = read_varint(body, &mut at).ok_or(Fault::Varint("value length"))?;
    skip(body, &mut at, value, "value")?;
    let headers = read_varint(body, &mut at).ok_or(Fault::Varint("header count"))?;
    let left = body.len() - at;
    if headers < 0 || headers as usize > left / RECORD_HEADER_BYTES_MIN {
        return Err(Fault::HeaderCount { count: headers, left });
    }
    for header in 0..headers {
        let key = read_varint(body, &mut at).ok_or(Fault::Varint("header key length"))?;
        if key == -1 {
            return Err(Fault::NullHeaderKey(header));
        }
        skip(body, &mut at, key, "header key")?;
        let value = read_varint(body, &mut at).ok_or(Fault::Varint("header value length"))?;
        skip(body, &mut at, value, "header value")?;
    }
    if at != body.len() {
        return Err(Fault::RecordLeftover(body.len() - at));
    }
    Ok(timestamp_delta)
}

/// Steps over a length-prefixed field of `length` bytes, -1 being null.
fn skip(body: &[u8], at: &mut usize, length: i32, field: &'static str) -> Result<(), Fault> {
    if length == -1 {
        return Ok(());
    }
    let left = body.len() - *at;
    if length < 0 || length as usize > left {
        return Err(Fault::Length { field, length, left });
    }
    *at += length as usize;
    Ok(())
}

/// Reads a zig-zag varint that must fit an i32, as Kafka's `readVarint`: at most 5 bytes,
/// and the fifth may carry only the top 4 bits. None if it is longer, larger or cut off.
#[inline(always)]
fn read_varint(bytes: &[u8], at: &mut usize) -> Option<i32> {
    let first = *bytes.get(*at)?;
    if first & 0x80 == 0 {
        *at += 1;
        return Some(unzigzag32(u32::from(first)));
    }
    // Two bytes carry record lengths and offset deltas up to 8191, most of those in a batch.
    let second = *bytes.get(*at + 1)?;
    if second & 0x80 == 0 {
        *at += 2;
        return Some(unzigzag32(u32::from(first & 0x7f) | (u32::from(second) << 7)));
    }
    // The position goes by value and comes back as a count, so the caller's position can
    // stay in a register.
    let (value, used) = read_varint_long_form(bytes, *at)?;
    *at += usize::from(used);
    Some(value)
}

/// The longer forms of [`read_varint`], kept out of line so the short ones (nearly every
/// field of nearly every record) inline small. Returns the value and the bytes it took.
#[inline(never)]
fn read_varint_long_form(bytes: &[u8], at: usize) -> Option<(i32, u8)> {
    let mut raw: u32 = 0;
    for i in 0..5 {
        let byte = *bytes.get(at + i)?;
        if i == 4 && byte > 0x0f {
            return None;
        }
        raw |= u32::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return Some((unzigzag32(raw), i as u8 + 1));
        }
    }
    None
}

/// Reads a zig-zag varlong, as Kafka's `readVarlong`: at most 10 bytes, the tenth carrying
/// only the top bit. None if it is longer or cut off.
#[inline(always)]
fn read_varlong(bytes: &[u8], at: &mut usize) -> Option<i64> {
    // Timestamp deltas within a batch are nearly always under 8 s: one or two bytes.
    let first = *bytes.get(*at)?;
    if first & 0x80 == 0 {
        *at += 1;
        return Some(unzigzag64(u64::from(first)));
    }
    let second = *bytes.get(*at + 1)?;
    if second & 0x80 == 0 {
        *at += 2;
        return Some(unzigzag64(u64::from(first & 0x7f) | (u64::from(second) << 7)));
    }
    let (value, used) = read_varlong_long_form(bytes, *at)?;
    *at += usize::from(used);
    Some(value)
}

/// The longer forms of [`read_varlong`]; returns the value and the bytes it took.
#[inline(never)]
fn read_varlong_long_form(bytes: &[u8], at: usize) -> Option<(i64, u8)> {
    let mut raw: u64 = 0;
    for i in 0..10 {
        let byte = *bytes.get(at + i)?;
        if i == 9 && byte > 0x01 {
            return None;
        }
        raw |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return Some((unzigzag64(raw), i as u8 + 1));
        }
    }
    None
}

fn unzigzag64(raw: u64) -> i64 {
    ((raw >> 1) as i64) ^ -((raw & 1) as i64)
}

fn unzigzag32(raw: u32) -> i32 {
    ((raw >> 1) as i32) ^ -((raw & 1) as i32)
}

#[cfg(test)]
pub(crate) mod tests;
