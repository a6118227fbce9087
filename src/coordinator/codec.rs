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
