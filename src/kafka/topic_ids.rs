//! OffsetCommit and OffsetFetch v10 (Kafka 4.2, KIP-848) name each topic by its id where v9
//! names it. The codec crate stops at v9, and v10's wire form differs from v9's in that one
//! field only, so a v10 body is read here into the codec's request, each topic standing as a
//! placeholder name for its id; [`resolve`] puts the topic's name in its place, the handler
//! serves the request as v9, and [`encode_response`] writes the answer as v10, names turned
//! back into ids. An id no topic has is answered UNKNOWN_TOPIC_ID.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequest, OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::offset_commit_response::OffsetCommitResponse;
use kafka_protocol::messages::offset_fetch_request::{
    OffsetFetchRequest, OffsetFetchRequestGroup, OffsetFetchRequestTopics,
};
use kafka_protocol::messages::offset_fetch_response::OffsetFetchResponse;
use kafka_protocol::messages::{ApiKey, GroupId, RequestKind, ResponseKind, TopicName};
use kafka_protocol::protocol::StrBytes;

use crate::error::KafkaCode;
use crate::metadata::MetadataSnapshot;

/// The first version naming topics by id.
pub const BY_ID: i16 = 10;
/// The version whose wire form v10's is, but for the topic field.
pub const BY_NAME: i16 = 9;

pub fn by_topic_id(key: ApiKey, version: i16) -> bool {
    matches!(key, ApiKey::OffsetCommit | ApiKey::OffsetFetch) && version == BY_ID
}

/// No topic can have this prefix (topic names are letters, digits, '.', '_' and '-'), so a
/// placeholder left unresolved is an unknown topic to the handler.
const PLACEHOLDER: &str = "!topic-id:";

fn placeholder(id: uuid::Uuid) -> TopicName {
    TopicName(StrBytes::from_string(format!("{PLACEHOLDER}{id}")))
}

fn placeholder_id(name: &str) -> Option<uuid::Uuid> {
    name.strip_prefix(PLACEHOLDER)
        .and_then(|id| uuid::Uuid::parse_str(id).ok())
}

/// Reads a v10 body into the codec's request, topics as placeholders for their ids.
pub fn decode(key: ApiKey, body: &mut Bytes) -> Result<RequestKind, String> {
    let mut reader = Reader(body);
    let request = match key {
        ApiKey::OffsetCommit => RequestKind::OffsetCommit(reader.offset_commit()?),
        ApiKey::OffsetFetch => RequestKind::OffsetFetch(reader.offset_fetch()?),
        other => unreachable!("{other:?} does not name topics by id"),
    };
    if reader.0.has_remaining() {
        return Err(format!("{} bytes after the body", reader.0.remaining()));
    }
    Ok(request)
}

/// Puts each known topic's name in place of its placeholder.
pub fn resolve(request: &mut RequestKind, snapshot: &MetadataSnapshot) {
    let name_of = |topic: &mut TopicName| {
        if let Some(known) = placeholder_id(topic.0.as_str()).and_then(|id| snapshot.topic_by_id(id)) {
            *topic = TopicName(StrBytes::from_string(known.meta.name.clone()));
        }
    };
    match request {
        RequestKind::OffsetCommit(request) => request.topics.iter_mut().for_each(|t| name_of(&mut t.name)),
        RequestKind::OffsetFetch(request) => request
            .groups
            .iter_mut()
            .flat_map(|g| g.topics.iter_mut().flatten())
            .for_each(|t| name_of(&mut t.name)),
        _ => {}
    }
}

/// Writes the answer to a v10 request: each topic by its id (placeholders by theirs, answered
/// UNKNOWN_TOPIC_ID); a topic without an id (gone since) is left out.
pub fn encode_response(response: &ResponseKind, snapshot: &MetadataSnapshot, out: &mut BytesMut) {
    let id_of = |name: &str| -> Option<(uuid::Uuid, bool)> {
        match placeholder_id(name) {
            Some(id) => Some((id, false)),
            None => snapshot.topic(name).map(|t| (t.meta.id, true)),
        }
    };
    let unknown_topic_id = KafkaCode::UnknownTopicId.code();
    let mut w = Writer(out);
    match response {
        ResponseKind::OffsetCommit(OffsetCommitResponse {
            throttle_time_ms,
            topics,
            ..
        }) => {
            w.0.put_i32(*throttle_time_ms);
            let topics: Vec<_> = topics
                .iter()
                .filter_map(|t| id_of(t.name.0.as_str()).map(|id| (t, id)))
                .collect();
            w.len(topics.len());
            for (topic, (id, known)) in topics {
                w.0.put_slice(id.as_bytes());
                w.len(topic.partitions.len());
                for partition in &topic.partitions {
                    w.0.put_i32(partition.partition_index);
                    w.0.put_i16(if known { partition.error_code } else { unknown_topic_id });
                    w.no_tags();
                }
                w.no_tags();
            }
            w.no_tags();
        }
        ResponseKind::OffsetFetch(OffsetFetchResponse {
            throttle_time_ms,
            groups,
            ..
        }) => {
            w.0.put_i32(*throttle_time_ms);
            w.len(groups.len());
            for group in groups {
                w.string(Some(group.group_id.0.as_str()));
                let topics: Vec<_> = group
                    .topics
                    .iter()
                    .filter_map(|t| id_of(t.name.0.as_str()).map(|id| (t, id)))
                    .collect();
                w.len(topics.len());
                for (topic, (id, known)) in topics {
                    w.0.put_slice(id.as_bytes());
                    w.len(topic.partitions.len());
                    for partition in &topic.partitions {
                        w.0.put_i32(partition.partition_index);
                        w.0.put_i64(if known { partition.committed_offset } else { -1 });
                        w.0.put_i32(partition.committed_leader_epoch);
                        w.string(partition.metadata.as_ref().map(|m| m.as_str()));
                        w.0.put_i16(if known { partition.error_code } else { unknown_topic_id });
                        w.no_tags();
                    }
                    w.no_tags();
                }
                w.0.put_i16(group.error_code);
                w.no_tags();
            }
            w.no_tags();
        }
        other => unreachable!("{other:?} does not name topics by id"),
    }
}

/// Reads the flexible (compact) encoding of Kafka's protocol.
struct Reader<'a>(&'a mut Bytes);

impl Reader<'_> {
    fn need(&self, bytes: usize) -> Result<(), String> {
        if self.0.remaining() < bytes {
            return Err(format!("body ends {bytes} bytes early"));
        }
        Ok(())
    }

    fn i8(&mut self) -> Result<i8, String> {
        self.need(1)?;
        Ok(self.0.get_i8())
    }

    fn i32(&mut self) -> Result<i32, String> {
        self.need(4)?;
        Ok(self.0.get_i32())
    }

    fn i64(&mut self) -> Result<i64, String> {
        self.need(8)?;
        Ok(self.0.get_i64())
    }

    fn uuid(&mut self) -> Result<uuid::Uuid, String> {
        self.need(16)?;
        let mut bytes = [0u8; 16];
        self.0.copy_to_slice(&mut bytes);
        Ok(uuid::Uuid::from_bytes(bytes))
    }

    fn varint(&mut self) -> Result<u32, String> {
        let mut value: u32 = 0;
        for shift in (0..35).step_by(7) {
            self.need(1)?;
            let byte = self.0.get_u8();
            value |= u32::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err("varint longer than five bytes".into())
    }

    /// A compact length: None for null. Each element takes a byte at least, so a length past
    /// what is left is refused before anything is allocated for it.
    fn len(&mut self) -> Result<Option<usize>, String> {
        let n = self.varint()? as usize;
        if n == 0 {
            return Ok(None);
        }
        if n - 1 > self.0.remaining() {
            return Err(format!("array of {} elements in {} bytes", n - 1, self.0.remaining()));
        }
        Ok(Some(n - 1))
    }

    fn string(&mut self) -> Result<Option<StrBytes>, String> {
        let Some(len) = self.len()? else {
            return Ok(None);
        };
        let bytes = self.0.split_to(len);
        StrBytes::from_utf8(bytes)
            .map(Some)
            .map_err(|e| format!("string is not UTF-8: {e}"))
    }

    fn required_string(&mut self) -> Result<StrBytes, String> {
        self.string()?
            .ok_or_else(|| "null where a string is required".to_string())
    }

    /// Skips tagged fields (none of these messages defines one).
    fn tags(&mut self) -> Result<(), String> {
        for _ in 0..self.varint()? {
            self.varint()?;
            let size = self.varint()? as usize;
            self.need(size)?;
            self.0.advance(size);
        }
        Ok(())
    }

    fn array<T>(&mut self, mut element: impl FnMut(&mut Self) -> Result<T, String>) -> Result<Option<Vec<T>>, String> {
        let Some(n) = self.len()? else {
            return Ok(None);
        };
        (0..n).map(|_| element(self)).collect::<Result<Vec<_>, _>>().map(Some)
    }

    fn required_array<T>(&mut self, element: impl FnMut(&mut Self) -> Result<T, String>) -> Result<Vec<T>, String> {
        self.array(element)?
            .ok_or_else(|| "null where an array is required".to_string())
    }

    fn offset_commit(&mut self) -> Result<OffsetCommitRequest, String> {
        let group_id = self.required_string()?;
        let epoch = self.i32()?;
        let member_id = self.required_string()?;
        let instance_id = self.string()?;
        let topics = self.required_array(|r| {
            let id = r.uuid()?;
            let partitions = r.required_array(|r| {
                let partition = OffsetCommitRequestPartition::default()
                    .with_partition_index(r.i32()?)
                    .with_committed_offset(r.i64()?)
                    .with_committed_leader_epoch(r.i32()?)
                    .with_committed_metadata(r.string()?);
                r.tags()?;
                Ok(partition)
            })?;
            r.tags()?;
            Ok(OffsetCommitRequestTopic::default()
                .with_name(placeholder(id))
                .with_partitions(partitions))
        })?;
        self.tags()?;
        Ok(OffsetCommitRequest::default()
            .with_group_id(GroupId(group_id))
            .with_generation_id_or_member_epoch(epoch)
            .with_member_id(member_id)
            .with_group_instance_id(instance_id)
            .with_topics(topics))
    }

    fn offset_fetch(&mut self) -> Result<OffsetFetchRequest, String> {
        let groups = self.required_array(|r| {
            let group_id = r.required_string()?;
            let member_id = r.string()?;
            let member_epoch = r.i32()?;
            let topics = r.array(|r| {
                let id = r.uuid()?;
                let partitions = r.required_array(|r| r.i32())?;
                r.tags()?;
                Ok(OffsetFetchRequestTopics::default()
                    .with_name(placeholder(id))
                    .with_partition_indexes(partitions))
            })?;
            r.tags()?;
            Ok(OffsetFetchRequestGroup::default()
                .with_group_id(GroupId(group_id))
                .with_member_id(member_id)
                .with_member_epoch(member_epoch)
                .with_topics(topics))
        })?;
        let require_stable = self.i8()? != 0;
        self.tags()?;
        Ok(OffsetFetchRequest::default()
            .with_groups(groups)
            .with_require_stable(require_stable))
    }
}

/// Writes the flexible (compact) encoding.
struct Writer<'a>(&'a mut BytesMut);

impl Writer<'_> {
    fn varint(&mut self, mut value: u32) {
        while value >= 0x80 {
            self.0.put_u8((value as u8) | 0x80);
            value >>= 7;
        }
        self.0.put_u8(value as u8);
    }

    fn len(&mut self, n: usize) {
        self.varint(u32::try_from(n + 1).expect("an answer's array fits a u32"));
    }

    fn string(&mut self, value: Option<&str>) {
        match value {
            None => self.varint(0),
            Some(s) => {
                self.len(s.len());
                self.0.put_slice(s.as_bytes());
            }
        }
    }

    fn no_tags(&mut self) {
        self.varint(0);
    }
}

#[cfg(test)]
mod tests {
    use kafka_protocol::messages::offset_fetch_response::{
        OffsetFetchResponseGroup, OffsetFetchResponsePartitions, OffsetFetchResponseTopics,
    };
    use kafka_protocol::protocol::Encodable;

    use super::*;

    /// A v9 body with every topic name replaced by a 16-byte id: what a v10 client sends.
    fn as_v10(v9: &[u8], names: &[(&str, uuid::Uuid)]) -> Bytes {
        let mut out = v9.to_vec();
        for (name, id) in names {
            let mut encoded = vec![name.len() as u8 + 1];
            encoded.extend_from_slice(name.as_bytes());
            let at = out
                .windows(encoded.len())
                .position(|w| w == encoded.as_slice())
                .expect("name in body");
            out.splice(at..at + encoded.len(), id.as_bytes().iter().copied());
        }
        Bytes::from(out)
    }

    #[test]
    fn v10_offset_commit_reads_as_v9_with_placeholders() {
        let id = uuid::Uuid::new_v4();
        let request = OffsetCommitRequest::default()
            .with_group_id(GroupId(StrBytes::from_static_str("g")))
            .with_generation_id_or_member_epoch(3)
            .with_member_id(StrBytes::from_static_str("m"))
            .with_topics(vec![OffsetCommitRequestTopic::default()
                .with_name(TopicName(StrBytes::from_static_str("orders")))
                .with_partitions(vec![OffsetCommitRequestPartition::default()
                    .with_partition_index(1)
                    .with_committed_offset(42)
                    .with_committed_metadata(Some(StrBytes::from_static_str("meta")))])]);
        let mut v9 = BytesMut::new();
        request.encode(&mut v9, BY_NAME).unwrap();
        let mut body = as_v10(&v9, &[("orders", id)]);
        let RequestKind::OffsetCommit(read) = decode(ApiKey::OffsetCommit, &mut body).unwrap() else {
            panic!("not an OffsetCommit");
        };
        assert_eq!(placeholder_id(read.topics[0].name.0.as_str()), Some(id));
        assert_eq!(read.with_topics(Vec::new()), request.clone().with_topics(Vec::new()));
        // Truncated anywhere, it is refused, never read past its end.
        for cut in 0..body.len() {
            let mut short = as_v10(&v9, &[("orders", id)]).slice(..cut);
            assert!(decode(ApiKey::OffsetCommit, &mut short).is_err(), "cut at {cut}");
        }
    }

    #[test]
    fn v10_offset_fetch_answer_is_v9_with_ids_in_place_of_names() {
        let id = uuid::Uuid::new_v4();
        let response = OffsetFetchResponse::default().with_groups(vec![OffsetFetchResponseGroup::default()
            .with_group_id(GroupId(StrBytes::from_static_str("g")))
            .with_topics(vec![OffsetFetchResponseTopics::default()
                .with_name(TopicName(StrBytes::from_string(format!("{PLACEHOLDER}{id}"))))
                .with_partitions(vec![OffsetFetchResponsePartitions::default()
                    .with_partition_index(0)
                    .with_committed_offset(7)
                    .with_metadata(Some(StrBytes::from_static_str("")))])])]);
        let mut v10 = BytesMut::new();
        encode_response(
            &ResponseKind::OffsetFetch(response.clone()),
            &MetadataSnapshot::default(),
            &mut v10,
        );
        // An unknown id: UNKNOWN_TOPIC_ID and no offset; otherwise the v9 bytes with the id.
        let expected = response.with_groups(vec![OffsetFetchResponseGroup::default()
            .with_group_id(GroupId(StrBytes::from_static_str("g")))
            .with_topics(vec![OffsetFetchResponseTopics::default()
                .with_name(TopicName(StrBytes::from_static_str("placeholder")))
                .with_partitions(vec![OffsetFetchResponsePartitions::default()
                    .with_partition_index(0)
                    .with_committed_offset(-1)
                    .with_metadata(Some(StrBytes::from_static_str("")))
                    .with_error_code(KafkaCode::UnknownTopicId.code())])])]);
        let mut v9 = BytesMut::new();
        expected.encode(&mut v9, BY_NAME).unwrap();
        assert_eq!(v10.freeze(), as_v10(&v9, &[("placeholder", id)]));
    }
}
