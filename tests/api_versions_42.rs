//! The versions Kafka 4.2 serves: Produce 13 (topics by id), Fetch 18, ListOffsets 11 (the
//! codec's v10 wire form, with the tiered-storage timestamps), Metadata 13, DescribeGroups 6
//! (an unknown group is an error), and OffsetCommit and OffsetFetch 10 (topics by id, a wire
//! form the codec lacks), each served in full.

mod common;

use bytes::{Bytes, BytesMut};
use common::raw::{call, call_as, call_bytes};
use common::Broker;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::offset_commit_request::{OffsetCommitRequestPartition, OffsetCommitRequestTopic};
use kafka_protocol::messages::offset_fetch_request::{OffsetFetchRequestGroup, OffsetFetchRequestTopics};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, ApiVersionsResponse, BrokerId, DescribeGroupsRequest, DescribeGroupsResponse,
    FetchRequest, FetchResponse, GroupId, ListOffsetsRequest, ListOffsetsResponse, MetadataRequest, MetadataResponse,
    ProduceRequest, ProduceResponse, TopicName,
};
use kafka_protocol::messages::{OffsetCommitRequest, OffsetCommitResponse, OffsetFetchRequest, OffsetFetchResponse};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use kafka_protocol::records::Compression;

const UNKNOWN_TOPIC_ID: i16 = 100;
const GROUP_ID_NOT_FOUND: i16 = 69;
const UNSUPPORTED_VERSION: i16 = 35;

fn produce_by_id(broker: &Broker, id: uuid::Uuid) -> ProduceResponse {
    let batch = sluice::record::encode_batch(
        [(None, Some(bytes::Bytes::from_static(b"by-id")), 1_700_000_000_000)],
        Compression::None,
    )
    .unwrap();
    let request = ProduceRequest::default()
        .with_acks(-1)
        .with_timeout_ms(10_000)
        .with_topic_data(vec![TopicProduceData::default().with_topic_id(id).with_partition_data(
            vec![PartitionProduceData::default().with_index(0).with_records(Some(batch))],
        )]);
    call(broker, ApiKey::Produce, 13, &request)
}

#[test]
fn kafka_4_2_versions_are_advertised_and_served() {
    let broker = Broker::start();
    let versions: ApiVersionsResponse = call(&broker, ApiKey::ApiVersions, 3, &ApiVersionsRequest::default());
    let max = |key: ApiKey| {
        versions
            .api_keys
            .iter()
            .find(|k| k.api_key == key as i16)
            .map(|k| k.max_version)
    };
    assert_eq!(max(ApiKey::Produce), Some(13));
    assert_eq!(max(ApiKey::Fetch), Some(18));
    assert_eq!(max(ApiKey::ListOffsets), Some(11));
    assert_eq!(max(ApiKey::Metadata), Some(13));
    assert_eq!(max(ApiKey::DescribeGroups), Some(6));
    assert_eq!(max(ApiKey::OffsetCommit), Some(10));
    assert_eq!(max(ApiKey::OffsetFetch), Some(10));

    broker.create_topic("modern", 1);
    let metadata: MetadataResponse = call(
        &broker,
        ApiKey::Metadata,
        13,
        &MetadataRequest::default().with_topics(None),
    );
    assert_eq!(metadata.error_code, 0);
    let topic = metadata
        .topics
        .iter()
        .find(|t| t.name.as_ref().is_some_and(|n| n.0.as_str() == "modern"))
        .expect("the topic is listed");
    let id = topic.topic_id;

    // Produce v13 names the topic by id and answers with it.
    let produced = produce_by_id(&broker, id);
    let answer = &produced.responses[0];
    assert_eq!(answer.topic_id, id);
    assert_eq!(answer.partition_responses[0].error_code, 0);
    assert_eq!(answer.partition_responses[0].base_offset, 0);
    let unknown = produce_by_id(&broker, uuid::Uuid::new_v4());
    assert_eq!(unknown.responses[0].partition_responses[0].error_code, UNKNOWN_TOPIC_ID);

    // Fetch v18 by id returns it.
    let fetch = FetchRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_max_wait_ms(0)
        .with_max_bytes(1 << 20)
        .with_topics(vec![FetchTopic::default().with_topic_id(id).with_partitions(vec![
            FetchPartition::default()
                .with_partition(0)
                .with_fetch_offset(0)
                .with_partition_max_bytes(1 << 20),
        ])]);
    let fetched: FetchResponse = call(&broker, ApiKey::Fetch, 18, &fetch);
    let partition = &fetched.responses[0].partitions[0];
    assert_eq!((partition.error_code, partition.high_watermark), (0, 1));
    assert!(partition.records.as_ref().is_some_and(|r| !r.is_empty()));

    // ListOffsets: latest, and the tiered-storage timestamps (nothing is tiered: -1), each
    // from the version that allows it (UNSUPPORTED_VERSION before).
    let list = |version: i16, timestamp: i64| {
        let request = ListOffsetsRequest::default()
            .with_replica_id(BrokerId(-1))
            .with_timeout_ms(if version >= 10 { 5000 } else { 0 })
            .with_topics(vec![ListOffsetsTopic::default()
                .with_name(TopicName(StrBytes::from_static_str("modern")))
                .with_partitions(vec![ListOffsetsPartition::default()
                    .with_partition_index(0)
                    .with_timestamp(timestamp)])]);
        // v11 has v10's wire form; the codec knows only v10.
        let answer: ListOffsetsResponse = call_as(&broker, ApiKey::ListOffsets, version, version.min(10), &request);
        let p = &answer.topics[0].partitions[0];
        (p.error_code, p.offset)
    };
    assert_eq!(list(10, -1), (0, 1));
    assert_eq!(list(11, -1), (0, 1));
    assert_eq!(list(10, -5), (0, -1));
    assert_eq!(list(11, -6), (0, -1));
    assert_eq!(list(10, -6), (UNSUPPORTED_VERSION, -1));
    assert_eq!(list(6, -3), (UNSUPPORTED_VERSION, -1));
    assert_eq!(list(7, -3).0, 0);

    // DescribeGroups v6: an unknown group is GROUP_ID_NOT_FOUND; v5 still says Dead.
    let describe = DescribeGroupsRequest::default().with_groups(vec![GroupId(StrBytes::from_static_str("nobody"))]);
    let v6: DescribeGroupsResponse = call(&broker, ApiKey::DescribeGroups, 6, &describe);
    assert_eq!(v6.groups[0].error_code, GROUP_ID_NOT_FOUND);
    assert!(v6.groups[0]
        .error_message
        .as_ref()
        .is_some_and(|m| m.contains("nobody")));
    let v5: DescribeGroupsResponse = call(&broker, ApiKey::DescribeGroups, 5, &describe);
    assert_eq!(
        (v5.groups[0].error_code, v5.groups[0].group_state.as_str()),
        (0, "Dead")
    );
}

/// Replaces, in an encoded flexible-version body, each compact string `from` with the 16
/// bytes `to`: a v9 OffsetCommit or OffsetFetch becomes its v10, names turned into ids; with
/// the pairs reversed, a v10 answer becomes the v9 the codec reads.
fn swap(body: &[u8], pairs: &[(Vec<u8>, Vec<u8>)]) -> Bytes {
    let mut out = body.to_vec();
    for (from, to) in pairs {
        let at = out
            .windows(from.len())
            .position(|w| w == from.as_slice())
            .expect("field in body");
        out.splice(at..at + from.len(), to.iter().copied());
    }
    Bytes::from(out)
}

fn compact(name: &str) -> Vec<u8> {
    let mut out = vec![name.len() as u8 + 1];
    out.extend_from_slice(name.as_bytes());
    out
}

#[test]
fn offset_commit_and_fetch_10_name_topics_by_id() {
    let broker = Broker::start();
    broker.create_topic("by-id", 1);
    let metadata: MetadataResponse = call(
        &broker,
        ApiKey::Metadata,
        13,
        &MetadataRequest::default().with_topics(None),
    );
    let id = metadata
        .topics
        .iter()
        .find(|t| t.name.as_ref().is_some_and(|n| n.0.as_str() == "by-id"))
        .expect("listed")
        .topic_id;
    let stranger = uuid::Uuid::new_v4();
    let as_ids = [
        (compact("by-id"), id.as_bytes().to_vec()),
        (compact("nobody"), stranger.as_bytes().to_vec()),
    ];
    let as_names: Vec<_> = as_ids.iter().map(|(name, id)| (id.clone(), name.clone())).collect();
    let group = GroupId(StrBytes::from_static_str("v10-group"));

    let commit = OffsetCommitRequest::default()
        .with_group_id(group.clone())
        .with_generation_id_or_member_epoch(-1)
        .with_topics(
            ["by-id", "nobody"]
                .into_iter()
                .map(|name| {
                    OffsetCommitRequestTopic::default()
                        .with_name(TopicName(StrBytes::from_static_str(name)))
                        .with_partitions(vec![OffsetCommitRequestPartition::default()
                            .with_partition_index(0)
                            .with_committed_offset(5)
                            .with_committed_metadata(Some(StrBytes::from_static_str("m")))])
                })
                .collect(),
        );
    let mut v9 = BytesMut::new();
    commit.encode(&mut v9, 9).unwrap();
    let answer = call_bytes(&broker, ApiKey::OffsetCommit, 10, &swap(&v9, &as_ids));
    let answer = OffsetCommitResponse::decode(&mut swap(&answer, &as_names), 9).unwrap();
    let codes: Vec<(&str, i16)> = answer
        .topics
        .iter()
        .map(|t| (t.name.0.as_str(), t.partitions[0].error_code))
        .collect();
    assert_eq!(codes, [("by-id", 0), ("nobody", UNKNOWN_TOPIC_ID)]);

    let fetch = OffsetFetchRequest::default().with_groups(vec![OffsetFetchRequestGroup::default()
        .with_group_id(group)
        .with_topics(Some(
            ["by-id", "nobody"]
                .into_iter()
                .map(|name| {
                    OffsetFetchRequestTopics::default()
                        .with_name(TopicName(StrBytes::from_static_str(name)))
                        .with_partition_indexes(vec![0])
                })
                .collect(),
        ))]);
    let mut v9 = BytesMut::new();
    fetch.encode(&mut v9, 9).unwrap();
    let answer = call_bytes(&broker, ApiKey::OffsetFetch, 10, &swap(&v9, &as_ids));
    let answer = OffsetFetchResponse::decode(&mut swap(&answer, &as_names), 9).unwrap();
    let offsets: Vec<(&str, i64, i16)> = answer.groups[0]
        .topics
        .iter()
        .map(|t| {
            (
                t.name.0.as_str(),
                t.partitions[0].committed_offset,
                t.partitions[0].error_code,
            )
        })
        .collect();
    assert_eq!(offsets, [("by-id", 5, 0), ("nobody", -1, UNKNOWN_TOPIC_ID)]);
}
