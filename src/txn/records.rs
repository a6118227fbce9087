//! The records transaction coordinators keep in `__transaction_state`, in Kafka's layouts
//! (`TransactionLogKey` v0, `TransactionLogValue` v0 and v1) so Kafka's tools can read the
//! log. A record with a null value is a tombstone (an expired transactional id).
//!
//! ```text
//! key:   version i16 (0) | transactional_id string
//! value: version i16 (0) | producer_id i64 | producer_epoch i16 | timeout_ms i32 |
//!        status i8 | partitions [topic string | partitions [i32]] |
//!        last_update_ms i64 | start_ms i64
//! ```
//!
//! Version 1 (flexible: lengths as unsigned varints + 1, each struct ending in tagged
//! fields) is written for a transaction of a transaction-version-2 client, whose extra state
//! is tagged: 0 PreviousProducerId i64, 1 NextProducerId i64, 2 ClientTransactionVersion i16.

use std::collections::BTreeSet;

use bytes::{BufMut, Bytes, BytesMut};

use super::state::{TxnMetadata, TxnStatus};
use crate::coordinator::codec::{
    get_compact_string, get_i16, get_i32, get_i64, get_string, get_uvarint, put_compact_string, put_string, put_uvarint,
};

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

/// The client transaction version a v1 value records for a transaction-version-2 client.
const CLIENT_TRANSACTION_VERSION_2: i16 = 2;

pub fn value(txn: &TxnMetadata) -> Bytes {
    let flexible = txn.tv2 || txn.previous_producer_id >= 0 || txn.next_producer_id >= 0;
    let mut out = BytesMut::with_capacity(64);
    out.put_i16(if flexible { 1 } else { 0 });
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
    if flexible {
        put_uvarint(&mut out, topics.len() as u32 + 1);
    } else {
        out.put_i32(topics.len() as i32);
    }
    for (topic, partitions) in topics {
        if flexible {
            put_compact_string(&mut out, topic);
            put_uvarint(&mut out, partitions.len() as u32 + 1);
        } else {
            put_string(&mut out, topic);
            out.put_i32(partitions.len() as i32);
        }
        for partition in partitions {
            out.put_i32(partition);
        }
        if flexible {
            put_uvarint(&mut out, 0); // the topic's tagged fields: none
        }
    }
    out.put_i64(txn.last_update_ms);
    out.put_i64(txn.start_ms);
    if flexible {
        let mut tags: Vec<(u32, Vec<u8>)> = Vec::new();
        if txn.previous_producer_id >= 0 {
            tags.push((0, txn.previous_producer_id.to_be_bytes().to_vec()));
        }
        if txn.next_producer_id >= 0 {
            tags.push((1, txn.next_producer_id.to_be_bytes().to_vec()));
        }
        if txn.tv2 {
            tags.push((2, CLIENT_TRANSACTION_VERSION_2.to_be_bytes().to_vec()));
        }
        put_uvarint(&mut out, tags.len() as u32);
        for (tag, data) in tags {
            put_uvarint(&mut out, tag);
            put_uvarint(&mut out, data.len() as u32);
            out.put_slice(&data);
        }
    }
    out.freeze()
}

/// A v0 or v1 value; None for anything else or a value cut short.
pub fn decode_value(id: &str, mut value: Bytes) -> Option<TxnMetadata> {
    let flexible = match get_i16(&mut value)? {
        0 => false,
        1 => true,
        _ => return None,
    };
    let producer_id = get_i64(&mut value)?;
    let epoch = get_i16(&mut value)?;
    let timeout_ms = get_i32(&mut value)?;
    let status = TxnStatus::from_code(*value.first()? as i8)?;
    let _ = bytes::Buf::get_i8(&mut value);
    let topics = if flexible {
        i64::from(get_uvarint(&mut value)?) - 1
    } else {
        i64::from(get_i32(&mut value)?)
    };
    let mut partitions = BTreeSet::new();
    for _ in 0..topics.max(0) {
        let (topic, count) = if flexible {
            (get_compact_string(&mut value)?, i64::from(get_uvarint(&mut value)?) - 1)
        } else {
            (get_string(&mut value)?, i64::from(get_i32(&mut value)?))
        };
        for _ in 0..count.max(0) {
            partitions.insert((topic.clone(), get_i32(&mut value)?));
        }
        if flexible {
            skip_tagged_fields(&mut value)?;
        }
    }
    let last_update_ms = get_i64(&mut value)?;
    let start_ms = get_i64(&mut value)?;
    let mut txn = TxnMetadata {
        id: id.to_string(),
        producer_id,
        epoch,
        timeout_ms,
        status,
        partitions,
        start_ms,
        last_update_ms,
        tv2: false,
        previous_producer_id: -1,
        next_producer_id: -1,
    };
    if flexible {
        let count = get_uvarint(&mut value)?;
        for _ in 0..count {
            let tag = get_uvarint(&mut value)?;
            let size = get_uvarint(&mut value)? as usize;
            if value.len() < size {
                return None;
            }
            let mut data = value.split_to(size);
            match tag {
                0 => txn.previous_producer_id = get_i64(&mut data)?,
                1 => txn.next_producer_id = get_i64(&mut data)?,
                2 => txn.tv2 = get_i16(&mut data)? >= CLIENT_TRANSACTION_VERSION_2,
                _ => {}
            }
        }
    }
    Some(txn)
}

fn skip_tagged_fields(value: &mut Bytes) -> Option<()> {
    for _ in 0..get_uvarint(value)? {
        get_uvarint(value)?;
        let size = get_uvarint(value)? as usize;
        if value.len() < size {
            return None;
        }
        bytes::Buf::advance(value, size);
    }
    Some(())
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
            tv2: false,
            previous_producer_id: -1,
            next_producer_id: -1,
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

    /// Golden bytes of a v1 value: a transaction-version-2 transaction moving to a fresh id.
    #[test]
    fn flexible_records_are_kafkas_layout() {
        let txn = TxnMetadata {
            id: "t".into(),
            producer_id: 5,
            epoch: i16::MAX,
            timeout_ms: 1_000,
            status: TxnStatus::PrepareAbort,
            partitions: [("a".to_string(), 1)].into_iter().collect(),
            start_ms: 9,
            last_update_ms: 10,
            tv2: true,
            previous_producer_id: -1,
            next_producer_id: 6,
        };
        let bytes = value(&txn);
        let mut expected = vec![0, 1];
        expected.extend_from_slice(&5i64.to_be_bytes());
        expected.extend_from_slice(&i16::MAX.to_be_bytes());
        expected.extend_from_slice(&1_000i32.to_be_bytes());
        expected.push(3); // PrepareAbort
        expected.extend_from_slice(&[2, 2, b'a', 2]); // one topic "a", one partition
        expected.extend_from_slice(&1i32.to_be_bytes());
        expected.push(0); // the topic's tagged fields
        expected.extend_from_slice(&10i64.to_be_bytes());
        expected.extend_from_slice(&9i64.to_be_bytes());
        expected.extend_from_slice(&[2, 1, 8]); // two tags; NextProducerId, 8 bytes
        expected.extend_from_slice(&6i64.to_be_bytes());
        expected.extend_from_slice(&[2, 2, 0, 2]); // ClientTransactionVersion 2
        assert_eq!(&bytes[..], &expected[..]);
        assert_eq!(decode_value("t", bytes), Some(txn));
    }
}
