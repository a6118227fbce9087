//! The records groups keep in `__consumer_offsets`, in Kafka's own layouts so Kafka's tools
//! can read the log: offset commits (key version 1, value version 3) and group metadata
//! (key version 2, value version 3). A record with a null value is a tombstone.

use bytes::{BufMut, Bytes, BytesMut};

use crate::coordinator::codec::{
    get_i16, get_i32, get_i64, get_nullable_string, get_string, put_nullable_string, put_string,
};

/// A decoded record key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Key {
    Offset {
        group: String,
        topic: String,
        partition: i32,
    },
    Group {
        group: String,
    },
}

/// A committed offset as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OffsetValue {
    pub offset: i64,
    pub leader_epoch: i32,
    pub metadata: String,
    pub commit_timestamp_ms: i64,
}

/// What survives a restart of a group: enough to continue generations and describe it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupValue {
    pub protocol_type: String,
    pub generation: i32,
    pub protocol: Option<String>,
    pub leader: Option<String>,
    pub state_timestamp_ms: i64,
}

pub fn offset_key(group: &str, topic: &str, partition: i32) -> Bytes {
    let mut out = BytesMut::new();
    out.put_i16(1);
    put_string(&mut out, group);
    put_string(&mut out, topic);
    out.put_i32(partition);
    out.freeze()
}

pub fn group_key(group: &str) -> Bytes {
    let mut out = BytesMut::new();
    out.put_i16(2);
    put_string(&mut out, group);
    out.freeze()
}

pub fn offset_value(value: &OffsetValue) -> Bytes {
    let mut out = BytesMut::new();
    out.put_i16(3);
    out.put_i64(value.offset);
    out.put_i32(value.leader_epoch);
    put_string(&mut out, &value.metadata);
    out.put_i64(value.commit_timestamp_ms);
    out.freeze()
}

/// Group metadata value v3 with an empty member list: members rejoin after a restart.
pub fn group_value(value: &GroupValue) -> Bytes {
    let mut out = BytesMut::new();
    out.put_i16(3);
    put_string(&mut out, &value.protocol_type);
    out.put_i32(value.generation);
    put_nullable_string(&mut out, value.protocol.as_deref());
    put_nullable_string(&mut out, value.leader.as_deref());
    out.put_i64(value.state_timestamp_ms);
    out.put_i32(0);
    out.freeze()
}

pub fn decode_key(mut key: Bytes) -> Option<Key> {
    match get_i16(&mut key)? {
        0 | 1 => Some(Key::Offset {
            group: get_string(&mut key)?,
            topic: get_string(&mut key)?,
            partition: get_i32(&mut key)?,
        }),
        2 => Some(Key::Group {
            group: get_string(&mut key)?,
        }),
        _ => None,
    }
}

pub fn decode_offset_value(mut value: Bytes) -> Option<OffsetValue> {
    let version = get_i16(&mut value)?;
    let offset = get_i64(&mut value)?;
    let leader_epoch = if version >= 3 { get_i32(&mut value)? } else { -1 };
    let metadata = get_string(&mut value)?;
    let commit_timestamp_ms = get_i64(&mut value)?;
    Some(OffsetValue {
        offset,
        leader_epoch,
        metadata,
        commit_timestamp_ms,
    })
}

pub fn decode_group_value(mut value: Bytes) -> Option<GroupValue> {
    let version = get_i16(&mut value)?;
    let protocol_type = get_string(&mut value)?;
    let generation = get_i32(&mut value)?;
    let protocol = get_nullable_string(&mut value)?;
    let leader = get_nullable_string(&mut value)?;
    let state_timestamp_ms = if version >= 2 { get_i64(&mut value)? } else { -1 };
    Some(GroupValue {
        protocol_type,
        generation,
        protocol,
        leader,
        state_timestamp_ms,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample_group() -> GroupValue {
        GroupValue {
            protocol_type: "consumer".into(),
            generation: 3,
            protocol: Some("range".into()),
            leader: None,
            state_timestamp_ms: 9,
        }
    }

    #[test]
    fn keys_and_values_round_trip() {
        let key = offset_key("g", "orders", 7);
        assert_eq!(
            decode_key(key),
            Some(Key::Offset {
                group: "g".into(),
                topic: "orders".into(),
                partition: 7
            })
        );
        assert_eq!(decode_key(group_key("g")), Some(Key::Group { group: "g".into() }));
        let offset = OffsetValue {
            offset: 42,
            leader_epoch: 0,
            metadata: "m".into(),
            commit_timestamp_ms: 1,
        };
        assert_eq!(decode_offset_value(offset_value(&offset)), Some(offset));
        let group = sample_group();
        assert_eq!(decode_group_value(group_value(&group)), Some(group));
        assert_eq!(decode_key(Bytes::from_static(&[0, 9])), None);
    }

    /// Golden bytes: these records are Kafka's own `__consumer_offsets` layouts (offset key
    /// v1, group key v2, offset value v3, group value v3), and logs written by earlier builds
    /// must keep replaying, so the bytes must never change silently.
    #[test]
    fn record_layouts_are_pinned() {
        assert_eq!(
            offset_key("g", "orders", 7).as_ref(),
            &[0, 1, 0, 1, b'g', 0, 6, b'o', b'r', b'd', b'e', b'r', b's', 0, 0, 0, 7][..]
        );
        assert_eq!(group_key("grp").as_ref(), &[0, 2, 0, 3, b'g', b'r', b'p'][..]);
        let offset = OffsetValue {
            offset: 0x0102_0304_0506_0708,
            leader_epoch: 5,
            metadata: "m".into(),
            commit_timestamp_ms: 0x1122,
        };
        assert_eq!(
            offset_value(&offset).as_ref(),
            &[
                0, 3, // version
                1, 2, 3, 4, 5, 6, 7, 8, // offset
                0, 0, 0, 5, // leader epoch
                0, 1, b'm', // metadata
                0, 0, 0, 0, 0, 0, 0x11, 0x22, // commit timestamp
            ][..]
        );
        let group = sample_group();
        let mut expected = vec![0, 3, 0, 8];
        expected.extend_from_slice(b"consumer");
        expected.extend_from_slice(&[0, 0, 0, 3, 0, 5]);
        expected.extend_from_slice(b"range");
        expected.extend_from_slice(&[0xff, 0xff]); // no leader
        expected.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 9]);
        expected.extend_from_slice(&[0, 0, 0, 0]); // no members
        assert_eq!(group_value(&group).as_ref(), &expected[..]);
    }
}
