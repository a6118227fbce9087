//! The records transaction coordinators keep in `__transaction_state`, in Kafka's layouts
//! (`TransactionLogKey` v0, `TransactionLogValue` v0) so Kafka's tools can read the log. A
//! record with a null value is a tombstone (an expired transactional id).
//!
//! ```text
//! key:   version i16 (0) | transactional_id string
//! value: version i16 (0) | producer_id i64 | producer_epoch i16 | timeout_ms i32 |
//!        status i8 | partitions [topic string | partitions [i32]] |
//!        last_update_ms i64 | start_ms i64
//! ```

use std::collections::BTreeSet;

use bytes::{BufMut, Bytes, BytesMut};

use super::state::{TxnMetadata, TxnStatus};
use crate::coordinator::codec::{get_i16, get_i32, get_i64, get_string, put_string};

pub fn key(transactional_id: &str) -> Bytes {
    let mut out = BytesMut::with_capacity(4 + transactional_id.len());
    out.put_i16(0);
    put_string(&mut out, transactional_id);
    out.freeze()
}

pub fn decode_key(mut key: Bytes) -> Option<String> {
    if get_i16(&mut key)? != 0 {
        return None;
    }
    get_string(&mut key)
}

pub fn value(txn: &TxnMetadata) -> Bytes {
    let mut out = BytesMut::with_capacity(64);
    out.put_i16(0);
    out.put_i64(txn.producer_id);
    out.put_i16(txn.epoch);
    out.put_i32(txn.timeout_ms);
    out.put_i8(txn.status.code());
    let mut topics: Vec<(&str, Vec<i32>)> = Vec::new();
    for (topic, partition) in &txn.partitions {
        match topics.last_mut() {
            Some((last, partitions)) if *last == topic.as_str() => partitions.push(*partition),
            _ => topics.push((topic.as_str(), vec![*partition])),
        }
    }
    out.put_i32(topics.len() as i32);
    for (topic, partitions) in topics {
        put_string(&mut out, topic);
        out.put_i32(partitions.len() as i32);
        for partition in partitions {
            out.put_i32(partition);
        }
    }
    out.put_i64(txn.last_update_ms);
    out.put_i64(txn.start_ms);
    out.freeze()
}

pub fn decode_value(id: &str, mut value: Bytes) -> Option<TxnMetadata> {
    if get_i16(&mut value)? != 0 {
        return None;
    }
    let producer_id = get_i64(&mut value)?;
    let epoch = get_i16(&mut value)?;
    let timeout_ms = get_i32(&mut value)?;
    let status = TxnStatus::from_code(*value.first()? as i8)?;
    let _ = bytes::Buf::get_i8(&mut value);
    let topics = get_i32(&mut value)?;
    let mut partitions = BTreeSet::new();
    for _ in 0..topics.max(0) {
        let topic = get_string(&mut value)?;
        let count = get_i32(&mut value)?;
        for _ in 0..count.max(0) {
            partitions.insert((topic.clone(), get_i32(&mut value)?));
        }
    }
    let last_update_ms = get_i64(&mut value)?;
    let start_ms = get_i64(&mut value)?;
    Some(TxnMetadata {
        id: id.to_string(),
        producer_id,
        epoch,
        timeout_ms,
        status,
        partitions,
        start_ms,
        last_update_ms,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Golden bytes: Kafka's TransactionLogKey/Value v0, which must never change silently.
    #[test]
    fn records_are_kafkas_layout() {
        assert_eq!(&key("t")[..], &[0, 0, 0, 1, b't']);
        let txn = TxnMetadata {
            id: "t".into(),
            producer_id: 5,
            epoch: 2,
            timeout_ms: 60_000,
            status: TxnStatus::Ongoing,
            partitions: [("a".to_string(), 0), ("a".to_string(), 3)].into_iter().collect(),
            start_ms: 9,
            last_update_ms: 10,
        };
        let bytes = value(&txn);
        let mut expected = vec![0, 0];
        expected.extend_from_slice(&5i64.to_be_bytes());
        expected.extend_from_slice(&2i16.to_be_bytes());
        expected.extend_from_slice(&60_000i32.to_be_bytes());
        expected.push(1); // Ongoing
        expected.extend_from_slice(&1i32.to_be_bytes());
        expected.extend_from_slice(&[0, 1, b'a']);
        expected.extend_from_slice(&2i32.to_be_bytes());
        expected.extend_from_slice(&0i32.to_be_bytes());
        expected.extend_from_slice(&3i32.to_be_bytes());
        expected.extend_from_slice(&10i64.to_be_bytes());
        expected.extend_from_slice(&9i64.to_be_bytes());
        assert_eq!(&bytes[..], &expected[..]);
        assert_eq!(decode_value("t", bytes), Some(txn));
        assert_eq!(decode_key(key("t")), Some("t".to_string()));
    }
}
