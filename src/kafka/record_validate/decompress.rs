//! Bounded decompression of a produced batch's records, for validation only: what the log
//! stores is always the producer's compressed bytes.
//!
//! A decompression bomb must cost at most the bound, never more. Gzip, lz4 and zstd are
//! decoded as streams into the scratch buffer, which grows geometrically but never past
//! `max + 1` bytes (one byte more than allowed is how "too large" is seen); snappy blocks
//! declare their decompressed length up front, which is checked before any memory is given
//! to them. The decoders' own state is bounded too: 32 KiB for gzip, 4 MiB blocks for lz4,
//! and a window of at most 2^[`ZSTD_WINDOW_LOG_MAX`] bytes for zstd.
//!
//! The formats are the ones Kafka clients write: gzip members (RFC 1952, possibly several),
//! one LZ4 frame, zstd frames, and snappy either in snappy-java's (xerial) framing, which Java
//! clients write, or as one raw block, which librdkafka writes.

use std::io::{self, Read};

use super::Fault;

/// Largest zstd window accepted (128 MiB), the default of the zstd library and of the
/// zstd-jni decoder Kafka's consumers use, so whatever a producer may write at its highest
/// level still decodes.
const ZSTD_WINDOW_LOG_MAX: u32 = 27;

/// Smallest step by which the scratch buffer grows, so small batches do not reallocate on
/// every few bytes.
const GROWTH_MIN_BYTES: usize = 64 * 1024;

/// The magic that opens snappy-java's framing, followed by two 4-byte version fields.
const XERIAL_MAGIC: &[u8; 8] = b"\x82SNAPPY\x00";
const XERIAL_HEADER_BYTES: usize = 16;

/// Bytes of the big-endian length before each block of snappy-java's framing.
const XERIAL_BLOCK_LENGTH_BYTES: usize = 4;

/// The codec's name, for messages.
fn codec_name(codec: u8) -> &'static str {
    match codec {
        1 => "gzip",
        2 => "snappy",
        3 => "lz4",
        4 => "zstd",
        _ => unreachable!("codec {codec} is checked by the caller"),
    }
}

/// Decompresses `payload` (records compressed with `codec`, 1 to 4) into a new buffer of at
/// most `max` bytes: for readers of batches from elsewhere (the CLI consumer), whose input is
/// as untrusted as a producer's.
pub fn decompress_owned(codec: u8, payload: &[u8], max: usize) -> Result<Vec<u8>, Fault> {
    if !(1..=4).contains(&codec) {
        return Err(Fault::UnknownCodec(codec));
    }
    let mut out = Vec::new();
    let length = decompress(codec, payload, &mut out, max)?.len();
    out.truncate(length);
    Ok(out)
}

/// Decompresses `payload` (the records of a batch compressed with `codec`, 1 to 4) into
/// `out`, which is scratch space: its contents on entry do not matter and its length stays
/// at what it grew to. Returns the decompressed records, at most `max` bytes.
pub(super) fn decompress<'a>(codec: u8, payload: &[u8], out: &'a mut Vec<u8>, max: usize) -> Result<&'a [u8], Fault> {
    let name = codec_name(codec);
    let broken = |source: io::Error| Fault::Decompress { codec: name, source };
    let filled = match codec {
        1 => read_bounded(flate2::bufread::MultiGzDecoder::new(payload), out, max).map_err(broken)?,
        2 => snappy(payload, out, max).map_err(broken)?,
        3 => {
            let mut decoder = lz4::Decoder::new(payload).map_err(broken)?;
            let filled = read_bounded(&mut decoder, out, max).map_err(broken)?;
            // The decoder reports a cut-off frame as an end of stream; finishing tells them
            // apart, and whatever it did not read follows the frame.
            if filled.is_some() {
                let (rest, finished) = decoder.finish();
                finished.map_err(broken)?;
                if !rest.is_empty() {
                    return Err(broken(invalid(format!("{} bytes follow the LZ4 frame", rest.len()))));
                }
            }
            filled
        }
        4 => {
            let mut decoder = zstd::stream::read::Decoder::with_buffer(payload).map_err(broken)?;
            decoder.window_log_max(ZSTD_WINDOW_LOG_MAX).map_err(broken)?;
            read_bounded(decoder, out, max).map_err(broken)?
        }
        _ => unreachable!("codec {codec} is checked by the caller"),
    }
    .ok_or(Fault::DecompressedTooLarge { codec: name, max })?;
    Ok(&out[..filled])
}

fn invalid(reason: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, reason)
}

/// Grows `out` (zero-filled, so it is initialized) to at least `needed` bytes, at least
/// doubling, never past `cap`.
fn grow(out: &mut Vec<u8>, needed: usize, cap: usize) {
    assert!(needed <= cap, "growing scratch to {needed} bytes past its cap {cap}");
    if out.len() >= needed {
        return;
    }
    let target = needed.max(out.len() * 2).max(GROWTH_MIN_BYTES).min(cap);
    out.reserve_exact(target - out.len());
    out.resize(target, 0);
}

/// Reads `reader` to its end into `out`; None if it yields more than `max` bytes, having
/// read (and allocated) at most `max + 1`.
fn read_bounded(mut reader: impl Read, out: &mut Vec<u8>, max: usize) -> io::Result<Option<usize>> {
    let cap = max.saturating_add(1);
    let mut filled = 0;
    loop {
        if filled == out.len().min(cap) {
            if filled == cap {
                return Ok(None);
            }
            grow(out, filled + 1, cap);
        }
        let end = out.len().min(cap);
        match reader.read(&mut out[filled..end]) {
            Ok(0) => return Ok(Some(filled)),
            Ok(read) => filled += read,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// Snappy in snappy-java's framing (magic, versions, then blocks each behind a 4-byte
/// length) or, without the magic, one raw block, as snappy-java itself falls back to.
fn snappy(payload: &[u8], out: &mut Vec<u8>, max: usize) -> io::Result<Option<usize>> {
    if payload.len() < XERIAL_HEADER_BYTES || payload[..XERIAL_MAGIC.len()] != XERIAL_MAGIC[..] {
        return snappy_block(payload, out, 0, max);
    }
    let mut at = XERIAL_HEADER_BYTES;
    let mut filled = 0;
    while at < payload.len() {
        let Some(length) = payload.get(at..at + XERIAL_BLOCK_LENGTH_BYTES) else {
            return Err(invalid(format!("a block length is cut off at byte {at}")));
        };
        let length = u32::from_be_bytes(length.try_into().expect("4 bytes")) as usize;
        at += XERIAL_BLOCK_LENGTH_BYTES;
        let Some(block) = payload.get(at..at.saturating_add(length)) else {
            return Err(invalid(format!("a block of {length} bytes runs past the batch")));
        };
        at += length;
        match snappy_block(block, out, filled, max)? {
            Some(end) => filled = end,
            None => return Ok(None),
        }
    }
    Ok(Some(filled))
}

/// Decompresses one raw snappy block after the `filled` bytes already in `out`; None if the
/// total would pass `max`, which is known from the block's header before anything is
/// allocated.
fn snappy_block(block: &[u8], out: &mut Vec<u8>, filled: usize, max: usize) -> io::Result<Option<usize>> {
    let length = snap::raw::decompress_len(block)?;
    if length > max - filled {
        return Ok(None);
    }
    grow(out, filled + length, max);
    let written = snap::raw::Decoder::new().decompress(block, &mut out[filled..filled + length])?;
    Ok(Some(filled + written))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kafka::record_validate::tests::compress;

    const MIB: usize = 1 << 20;

    #[test]
    fn a_bomb_never_gets_more_than_the_bound_of_scratch() {
        let zeros = vec![0u8; 4 * MIB];
        for codec in 1..=4u8 {
            let payload = compress(codec, &zeros);
            let mut out = Vec::new();
            let refused = decompress(codec, &payload, &mut out, MIB).unwrap_err();
            assert!(
                matches!(refused, Fault::DecompressedTooLarge { max: MIB, .. }),
                "codec {codec}: {refused}"
            );
            assert!(
                out.capacity() <= MIB + 1,
                "codec {codec}: {} bytes of scratch",
                out.capacity()
            );
        }
    }

    #[test]
    fn exactly_the_bound_is_accepted() {
        let data: Vec<u8> = (0..MIB).map(|i| (i % 251) as u8).collect();
        for codec in 1..=4u8 {
            let payload = compress(codec, &data);
            let mut out = Vec::new();
            let records = decompress(codec, &payload, &mut out, MIB).unwrap_or_else(|e| panic!("codec {codec}: {e}"));
            assert_eq!(records, &data[..], "codec {codec}");
            let mut out = Vec::new();
            assert!(decompress(codec, &payload, &mut out, MIB - 1).is_err(), "codec {codec}");
        }
    }

    #[test]
    fn a_snappy_block_declaring_too_much_is_refused_before_any_allocation() {
        // A raw block whose header claims 1 GiB, then nothing.
        let mut raw = Vec::new();
        let mut length = 1u64 << 30;
        while length >= 0x80 {
            raw.push((length as u8) | 0x80);
            length >>= 7;
        }
        raw.push(length as u8);
        let mut xerial = b"\x82SNAPPY\x00\x00\x00\x00\x01\x00\x00\x00\x01".to_vec();
        xerial.extend_from_slice(&(raw.len() as u32).to_be_bytes());
        xerial.extend_from_slice(&raw);
        for payload in [raw, xerial] {
            let mut out = Vec::new();
            let refused = decompress(2, &payload, &mut out, 256 * MIB).unwrap_err();
            assert!(matches!(refused, Fault::DecompressedTooLarge { .. }), "{refused}");
            assert_eq!(out.capacity(), 0);
        }
    }

    #[test]
    fn broken_snappy_framing_and_trailing_lz4_bytes_are_refused() {
        let records = b"some records".repeat(10);
        let xerial = compress(2, &records);
        for cut in [xerial.len() - 1, 18] {
            let mut out = Vec::new();
            let refused = decompress(2, &xerial[..cut], &mut out, MIB).unwrap_err();
            assert!(matches!(refused, Fault::Decompress { .. }), "cut at {cut}: {refused}");
        }
        let mut lz4 = compress(3, &records);
        lz4.extend_from_slice(b"junk");
        let refused = decompress(3, &lz4, &mut Vec::new(), MIB).unwrap_err();
        assert!(
            refused.to_string().contains("4 bytes follow the LZ4 frame"),
            "{refused}"
        );
    }
}
