//! Record batches built directly in wire format, so one client core can keep a broker core
//! busy: each record is a few varints and a copy of the payload; the batch gets its header,
//! optional compression and one CRC32C pass.
//!
//! Every value starts with the record's creation time in microseconds since the Unix epoch
//! (8 bytes, big-endian), which the consumer side reads back for produce-to-consume latency;
//! the record timestamp carries the same moment in milliseconds, as Kafka clients set it.

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::compression::{Compressor, Gzip, Lz4, Snappy, Zstd};

use crate::record::HEADER_BYTES;

/// Bytes of the creation time at the start of every value.
pub const STAMP_BYTES: usize = 8;

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Codec {
    None,
    Gzip,
    Snappy,
    Lz4,
    Zstd,
}

impl Codec {
    fn attribute(self) -> i16 {
        match self {
            Codec::None => 0,
            Codec::Gzip => 1,
            Codec::Snappy => 2,
            Codec::Lz4 => 3,
            Codec::Zstd => 4,
        }
    }
}

fn put_varint(out: &mut BytesMut, value: i64) {
    let mut raw = ((value << 1) ^ (value >> 63)) as u64;
    while raw >= 0x80 {
        out.put_u8((raw as u8) | 0x80);
        raw >>= 7;
    }
    out.put_u8(raw as u8);
}

fn varint_len(value: i64) -> usize {
    let raw = ((value << 1) ^ (value >> 63)) as u64;
    ((64 - raw.leading_zeros() as usize).max(1)).div_ceil(7)
}

/// Builds batches of records of one size; reuses its buffers between batches.
pub struct BatchBuilder {
    value: Vec<u8>,
    codec: Codec,
    records: BytesMut,
}

impl BatchBuilder {
    /// Records whose values are `record_bytes` long (at least [`STAMP_BYTES`]).
    pub fn new(record_bytes: usize, codec: Codec) -> BatchBuilder {
        let record_bytes = record_bytes.max(STAMP_BYTES);
        // Compressible but not trivially so: a repeating alphabet.
        let value = (0..record_bytes).map(|i| b'a' + (i % 26) as u8).collect();
        BatchBuilder {
            value,
            codec,
            records: BytesMut::new(),
        }
    }

    pub fn record_bytes(&self) -> usize {
        self.value.len()
    }

    /// One batch holding a record per creation time in `created_us` (microseconds since the
    /// epoch, oldest first), with base offset 0 and no producer id.
    pub fn build(&mut self, created_us: &[i64]) -> anyhow::Result<Bytes> {
        anyhow::ensure!(!created_us.is_empty(), "a batch needs a record");
        let base_ms = created_us[0] / 1000;
        let max_ms = created_us[created_us.len() - 1] / 1000;
        self.records.clear();
        for (i, &created) in created_us.iter().enumerate() {
            let timestamp_delta = created / 1000 - base_ms;
            let offset_delta = i as i64;
            let body = 1
                + varint_len(timestamp_delta)
                + varint_len(offset_delta)
                + 1
                + varint_len(self.value.len() as i64)
                + self.value.len()
                + 1;
            put_varint(&mut self.records, body as i64);
            self.records.put_u8(0); // attributes
            put_varint(&mut self.records, timestamp_delta);
            put_varint(&mut self.records, offset_delta);
            put_varint(&mut self.records, -1); // no key
            put_varint(&mut self.records, self.value.len() as i64);
            self.records.put_i64(created);
            self.records.put_slice(&self.value[STAMP_BYTES..]);
            put_varint(&mut self.records, 0); // no headers
        }
        let mut out = BytesMut::with_capacity(HEADER_BYTES + self.records.len());
        out.put_i64(0); // base offset
        out.put_i32(0); // batch length, patched below
        out.put_i32(-1); // partition leader epoch
        out.put_i8(2); // magic
        out.put_u32(0); // CRC, patched below
        out.put_i16(self.codec.attribute());
        out.put_i32(created_us.len() as i32 - 1);
        out.put_i64(base_ms);
        out.put_i64(max_ms);
        out.put_i64(-1); // producer id
        out.put_i16(-1); // producer epoch
        out.put_i32(-1); // base sequence
        out.put_i32(created_us.len() as i32);
        let records = &self.records[..];
        let put = |buffer: &mut BytesMut| {
            buffer.extend_from_slice(records);
            Ok(())
        };
        match self.codec {
            Codec::None => out.extend_from_slice(records),
            Codec::Gzip => Gzip::compress(&mut out, put)?,
            Codec::Snappy => Snappy::compress(&mut out, put)?,
            Codec::Lz4 => Lz4::compress(&mut out, put)?,
            Codec::Zstd => Zstd::compress(&mut out, put)?,
        }
        let length = (out.len() - 12) as i32;
        out[8..12].copy_from_slice(&length.to_be_bytes());
        let crc = crc32c::crc32c(&out[21..]);
        out[17..21].copy_from_slice(&crc.to_be_bytes());
        Ok(out.freeze())
    }
}

/// Appends the creation times (µs) stamped into the values of a fetched batch's records;
/// records too short to carry one are skipped.
pub fn read_stamps(batch: &Bytes, out: &mut Vec<i64>) -> anyhow::Result<()> {
    use kafka_protocol::records::RecordBatchDecoder;
    let set = RecordBatchDecoder::decode(&mut batch.clone())?;
    for record in set.records {
        if let Some(value) = record.value.filter(|v| v.len() >= STAMP_BYTES) {
            out.push(i64::from_be_bytes(value[..STAMP_BYTES].try_into().expect("8 bytes")));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::records::RecordBatchDecoder;

    #[test]
    fn built_batches_decode_with_their_stamps_for_every_codec() {
        for codec in [Codec::None, Codec::Gzip, Codec::Snappy, Codec::Lz4, Codec::Zstd] {
            let mut builder = BatchBuilder::new(100, codec);
            let created = [1_700_000_000_000_000, 1_700_000_000_000_500, 1_700_000_000_002_000];
            let batch = builder.build(&created).unwrap();
            let set = RecordBatchDecoder::decode(&mut batch.clone()).unwrap_or_else(|e| panic!("{codec:?}: {e}"));
            assert_eq!(set.records.len(), 3);
            assert_eq!(set.records[2].timestamp, 1_700_000_000_002);
            assert_eq!(set.records[1].value.as_ref().unwrap().len(), 100);
            let mut stamps = Vec::new();
            read_stamps(&batch, &mut stamps).unwrap();
            assert_eq!(stamps, created);
            let rules = crate::kafka::record_validate::Rules::for_topic(&Default::default(), 1_700_000_000_002);
            if let Err(e) = crate::kafka::record_validate::validate_produced(&batch, &rules) {
                panic!("{codec:?}: the broker refuses it: {e}");
            }
        }
    }

    #[test]
    fn varint_lengths_match_the_encoding() {
        for value in [0i64, 1, -1, 63, 64, -65, 300, 1 << 20, i64::from(i32::MAX)] {
            let mut out = BytesMut::new();
            put_varint(&mut out, value);
            assert_eq!(out.len(), varint_len(value), "{value}");
        }
    }
}
