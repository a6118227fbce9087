//! A record acknowledged with acks=1 (or all) is visible by the time its producer has the
//! answer: ListOffsets(latest) and Fetch already include it, as in Kafka.

mod common;

use std::io::Write;

use common::raw::{connect, request, response};
use common::Broker;
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{
    ApiKey, BrokerId, ListOffsetsRequest, ListOffsetsResponse, ProduceRequest, ProduceResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::Compression;

const LATEST: i64 = -1;

#[test]
fn acks_one_answers_only_once_the_record_is_visible() {
    let broker = Broker::start();
    broker.create_topic("visible", 1);
    let topic = TopicName(StrBytes::from_static_str("visible"));
    let mut producer = connect(&broker);
    let mut reader = connect(&broker);
    for probe in 0..200i32 {
        let batch = sluice::record::encode_batch(
            [(
                None,
                Some(bytes::Bytes::from(format!("probe-{probe}"))),
                1_700_000_000_000,
            )],
            Compression::None,
        )
        .unwrap();
        let produce = ProduceRequest::default()
            .with_acks(1)
            .with_timeout_ms(30_000)
            .with_topic_data(vec![TopicProduceData::default()
                .with_name(topic.clone())
                .with_partition_data(vec![PartitionProduceData::default()
                    .with_index(0)
                    .with_records(Some(batch))])]);
        producer
            .write_all(&request(ApiKey::Produce, 9, probe, &produce))
            .unwrap();
        let answer: ProduceResponse = response(&mut producer, ApiKey::Produce, 9, probe);
        let acked = &answer.responses[0].partition_responses[0];
        assert_eq!(acked.error_code, 0);
        assert_eq!(acked.base_offset, i64::from(probe));

        // Right after the answer, on another connection: the end includes the record.
        let list = ListOffsetsRequest::default()
            .with_replica_id(BrokerId(-1))
            .with_topics(vec![ListOffsetsTopic::default()
                .with_name(topic.clone())
                .with_partitions(vec![ListOffsetsPartition::default()
                    .with_partition_index(0)
                    .with_timestamp(LATEST)])]);
        reader
            .write_all(&request(ApiKey::ListOffsets, 7, probe, &list))
            .unwrap();
        let listed: ListOffsetsResponse = response(&mut reader, ApiKey::ListOffsets, 7, probe);
        let end = listed.topics[0].partitions[0].offset;
        assert!(
            end > acked.base_offset,
            "probe {probe}: acknowledged at {} but the end is {end}",
            acked.base_offset
        );
    }
}
