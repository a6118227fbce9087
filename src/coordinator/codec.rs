//! The big-endian primitives of Kafka's internal record layouts (`__consumer_offsets`,
//! `__transaction_state`): i16-length strings and checked reads that answer None on short
//! input instead of panicking.

use bytes::{Buf, BufMut, Bytes, BytesMut};

pub fn put_string(out: &mut BytesMut, s: &str) {
    out.put_i16(s.len() as i16);
    out.put_slice(s.as_bytes());
}

pub fn put_nullable_string(out: &mut BytesMut, s: Option<&str>) {
    match s {
        Some(s) => put_string(out, s),
        None => out.put_i16(-1),
    }
}

pub fn get_string(input: &mut Bytes) -> Option<String> {
    let len = get_i16(input)?;
    if len < 0 || input.remaining() < len as usize {
        return None;
    }
    String::from_utf8(input.split_to(len as usize).to_vec()).ok()
}

pub fn get_nullable_string(input: &mut Bytes) -> Option<Option<String>> {
    if input.remaining() < 2 {
        return None;
    }
    if i16::from_be_bytes([input[0], input[1]]) == -1 {
        input.advance(2);
        return Some(None);
    }
    get_string(input).map(Some)
}

pub fn get_i16(input: &mut Bytes) -> Option<i16> {
    (input.remaining() >= 2).then(|| input.get_i16())
}
pub fn get_i32(input: &mut Bytes) -> Option<i32> {
    (input.remaining() >= 4).then(|| input.get_i32())
}
pub fn get_i64(input: &mut Bytes) -> Option<i64> {
    (input.remaining() >= 8).then(|| input.get_i64())
}

/// An unsigned varint, as flexible versions count lengths and tags.
pub fn put_uvarint(out: &mut BytesMut, mut value: u32) {
    while value >= 0x80 {
        out.put_u8((value as u8 & 0x7f) | 0x80);
        value >>= 7;
    }
    out.put_u8(value as u8);
}

pub fn get_uvarint(input: &mut Bytes) -> Option<u32> {
    let mut value = 0u32;
    for shift in (0..35).step_by(7) {
        if !input.has_remaining() {
            return None;
        }
        let byte = input.get_u8();
        value |= u32::from(byte & 0x7f).checked_shl(shift)?;
        if byte & 0x80 == 0 {
            return Some(value);
        }
    }
    None
}

/// A flexible version's string: its length + 1 as an unsigned varint, then the bytes.
pub fn put_compact_string(out: &mut BytesMut, s: &str) {
    put_uvarint(out, s.len() as u32 + 1);
    out.put_slice(s.as_bytes());
}

pub fn get_compact_string(input: &mut Bytes) -> Option<String> {
    let len = (get_uvarint(input)? as usize).checked_sub(1)?;
    if input.remaining() < len {
        return None;
    }
    String::from_utf8(input.split_to(len).to_vec()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_round_trip() {
        for value in [0u32, 1, 127, 128, 300, 16_383, 16_384, u32::MAX] {
            let mut out = BytesMut::new();
            put_uvarint(&mut out, value);
            assert_eq!(get_uvarint(&mut out.freeze()), Some(value));
        }
        let mut out = BytesMut::new();
        put_uvarint(&mut out, 300);
        assert_eq!(&out[..], &[0xac, 0x02]);
        assert_eq!(get_uvarint(&mut Bytes::from_static(&[0x80])), None, "cut short");
        assert_eq!(get_uvarint(&mut Bytes::from_static(&[0xff; 6])), None, "too long");
    }
}
