//! Transaction markers: the control batches that end a transaction in a partition.
//!
//! A marker is a batch with the control and transactional attributes set, the producer's id
//! and epoch, and one record whose key is `version i16 (0) | type i16` (0 abort, 1 commit)
//! and whose value is `version i16 (0) | coordinatorEpoch i32`, as Kafka writes them
//! (`ControlRecordType`, `EndTransactionMarker`). Markers are never compressed.

use bytes::Bytes;

use super::header::{read_varint, BatchHeader, HEADER_BYTES};

/// How a transaction ended in a partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Marker {
    Abort,
    Commit,
}

impl Marker {
    pub fn from_commit(commit: bool) -> Marker {
        if commit {
            Marker::Commit
        } else {
            Marker::Abort
        }
    }

    fn code(self) -> i16 {
        match self {
            Marker::Abort => 0,
            Marker::Commit => 1,
        }
    }
}

/// The marker batch (base offset 0, to be assigned by the log) ending producer
/// `producer_id`'s transaction at `epoch`.
pub fn encode_marker(producer_id: i64, epoch: i16, coordinator_epoch: i32, marker: Marker, timestamp_ms: i64) -> Bytes {
    use kafka_protocol::records::{Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType};
    let mut key = Vec::with_capacity(4);
    key.extend_from_slice(&0i16.to_be_bytes());
    key.extend_from_slice(&marker.code().to_be_bytes());
    let mut value = Vec::with_capacity(6);
    value.extend_from_slice(&0i16.to_be_bytes());
    value.extend_from_slice(&coordinator_epoch.to_be_bytes());
    let record = Record {
        transactional: true,
        control: true,
        delete_horizon: false,
        partition_leader_epoch: -1,
        producer_id,
        producer_epoch: epoch,
        timestamp_type: TimestampType::Creation,
        offset: 0,
        sequence: -1,
        timestamp: timestamp_ms,
        key: Some(Bytes::from(key)),
        value: Some(Bytes::from(value)),
        headers: Default::default(),
    };
    let mut out = bytes::BytesMut::new();
    let options = RecordEncodeOptions {
        version: 2,
        compression: Compression::None,
    };
    RecordBatchEncoder::encode(&mut out, std::iter::once(&record), &options).expect("a marker batch always encodes");
    out.freeze()
}

/// A marker as a control batch carries it: how the transaction ended, and the epoch of the
/// coordinator that wrote it (partitions refuse markers of an older coordinator).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EndMarker {
    pub marker: Marker,
    pub coordinator_epoch: i32,
}

/// The marker a control batch carries; None for any other batch, or a control record of a
/// type this broker does not know (Kafka skips those too).
pub fn marker_of(batch: &[u8]) -> Option<EndMarker> {
    let header = BatchHeader::new(batch).ok()?;
    if !header.is_control() || header.compression() != 0 || header.record_count() < 1 {
        return None;
    }
    // record: length varint, attributes i8, timestampDelta varlong, offsetDelta varint,
    // keyLength varint, key.
    let mut at = HEADER_BYTES;
    let (_, used) = read_varint(batch.get(at..)?)?;
    at += used;
    at += 1;
    for _ in 0..2 {
        let (_, used) = read_varint(batch.get(at..)?)?;
        at += used;
    }
    let (key_length, used) = read_varint(batch.get(at..)?)?;
    at += used;
    if key_length < 4 {
        return None;
    }
    let key = batch.get(at..at + 4)?;
    let marker = match i16::from_be_bytes([key[2], key[3]]) {
        0 => Marker::Abort,
        1 => Marker::Commit,
        _ => return None,
    };
    at += usize::try_from(key_length).ok()?;
    // value: length varint, then version i16 | coordinatorEpoch i32.
    let (value_length, used) = read_varint(batch.get(at..)?)?;
    at += used;
    let coordinator_epoch = match batch.get(at + 2..at + 6) {
        Some(epoch) if value_length >= 6 => i32::from_be_bytes(epoch.try_into().ok()?),
        // A marker without a value (none Kafka writes): no coordinator to fence by.
        _ => -1,
    };
    Some(EndMarker {
        marker,
        coordinator_epoch,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markers_round_trip_and_validate() {
        for marker in [Marker::Abort, Marker::Commit] {
            let batch = encode_marker(42, 3, 7, marker, 1_700_000_000_000);
            let header = super::super::validate(&batch).unwrap();
            assert!(header.is_control() && header.is_transactional());
            assert_eq!((header.producer_id(), header.producer_epoch()), (42, 3));
            assert_eq!(header.record_count(), 1);
            let expected = EndMarker {
                marker,
                coordinator_epoch: 7,
            };
            assert_eq!(marker_of(&batch), Some(expected));
        }
        let plain = super::super::encode_batch(
            [(None, Some(Bytes::from_static(b"x")), 0)],
            kafka_protocol::records::Compression::None,
        )
        .unwrap();
        assert_eq!(marker_of(&plain), None);
    }
}
