//! Bad input over a raw TCP socket never takes the broker down: garbage, a frame claiming
//! 2 GB, a truncated frame, an unknown API key or version, a malformed body, a hostile array
//! count. Each offending connection is answered or closed; other clients keep working and
//! acknowledged records survive. Also checks answers librdkafka's API hides (error codes
//! of DescribeConfigs and IncrementalAlterConfigs, ListOffsets max-timestamp).

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use common::raw::{connect, frame, request, response};
use common::{assign, consume, flush, send, Broker};
use kafka_protocol::messages::{
    describe_configs_request, incremental_alter_configs_request, list_offsets_request, ApiKey, ApiVersionsResponse,
    DescribeConfigsRequest, DescribeConfigsResponse, IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse,
    ListOffsetsRequest, ListOffsetsResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use rdkafka::producer::BaseRecord;
use rdkafka::Offset;

/// The broker closes the connection: a read sees EOF (or a reset) rather than a response.
fn assert_closed(mut stream: TcpStream, what: &str) {
    stream.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut byte = [0u8; 1];
    match stream.read(&mut byte) {
        Ok(0) => {}
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
        other => panic!("{what}: expected the connection to close, got {other:?}"),
    }
}

fn api_versions_works(broker: &Broker) {
    let mut stream = connect(broker);
    let body = kafka_protocol::messages::ApiVersionsRequest::default()
        .with_client_software_name(StrBytes::from_static_str("raw"))
        .with_client_software_version(StrBytes::from_static_str("1"));
    stream.write_all(&request(ApiKey::ApiVersions, 3, 7, &body)).unwrap();
    let answer: ApiVersionsResponse = response(&mut stream, ApiKey::ApiVersions, 3, 7);
    assert_eq!(answer.error_code, 0);
    let produce = answer
        .api_keys
        .iter()
        .find(|k| k.api_key == 0)
        .expect("Produce advertised");
    assert_eq!(produce.min_version, 0, "Produce advertised from v0 for librdkafka");
}

#[test]
fn bad_input_closes_only_the_offending_connection() {
    let broker = Broker::start();
    broker.create_topic("survivor", 1);
    let producer = broker.producer(&[]);
    for i in 0..100 {
        send(
            &producer,
            BaseRecord::to("survivor")
                .key(b"k".as_slice())
                .payload(format!("before-{i}").as_bytes()),
        );
    }
    flush(&producer);

    // Garbage that is not a frame header Kafka would accept (a negative length).
    let mut stream = connect(&broker);
    stream.write_all(&[0xff, 0xfe, 0xfd, 0xfc, 1, 2, 3, 4, 5]).unwrap();
    assert_closed(stream, "garbage");

    // A frame claiming 2 GB: refused before any body is read.
    let mut stream = connect(&broker);
    stream.write_all(&(i32::MAX).to_be_bytes()).unwrap();
    assert_closed(stream, "2 GB frame");

    // A truncated frame: the length promises more than ever arrives, then the peer leaves.
    let mut stream = connect(&broker);
    stream.write_all(&frame(&[0, 18, 0, 3])[..6]).unwrap();
    stream.shutdown(std::net::Shutdown::Write).unwrap();
    assert_closed(stream, "truncated frame");

    // A frame too short to hold a request header.
    let mut stream = connect(&broker);
    stream.write_all(&frame(&[0, 3])).unwrap();
    assert_closed(stream, "short header");

    // An unknown API key.
    let mut stream = connect(&broker);
    stream
        .write_all(&frame(&[0x7f, 0x00, 0, 0, 0, 0, 0, 1, 0xff, 0xff]))
        .unwrap();
    assert_closed(stream, "unknown API key");

    // A known API at a version nobody serves (Fetch v99).
    let mut stream = connect(&broker);
    stream
        .write_all(&frame(&[0, 1, 0, 99, 0, 0, 0, 1, 0xff, 0xff]))
        .unwrap();
    assert_closed(stream, "unsupported Fetch version");

    // Produce v2 (the old message format): advertised for librdkafka's sake, never served.
    let mut stream = connect(&broker);
    stream
        .write_all(&frame(&[0, 0, 0, 2, 0, 0, 0, 1, 0xff, 0xff, 0, 1]))
        .unwrap();
    assert_closed(stream, "Produce v2");

    // ApiVersions at an unknown version: UNSUPPORTED_VERSION and our table, in v0 (KIP-511).
    let mut stream = connect(&broker);
    stream
        .write_all(&frame(&[0, 18, 0, 99, 0, 0, 0, 9, 0xff, 0xff]))
        .unwrap();
    let answer: ApiVersionsResponse = response(&mut stream, ApiKey::ApiVersions, 0, 9);
    assert_eq!(answer.error_code, 35, "UNSUPPORTED_VERSION");
    assert!(answer.api_keys.iter().any(|k| k.api_key == ApiKey::Fetch as i16));

    // A malformed body: a Metadata v1 request whose topic string runs past the frame.
    let mut stream = connect(&broker);
    let mut body = BytesMut::new();
    body.put_i16(3);
    body.put_i16(1);
    body.put_i32(11);
    body.put_i16(-1);
    body.put_i32(1);
    body.put_i16(500);
    body.put_slice(b"short");
    stream.write_all(&frame(&body)).unwrap();
    assert_closed(stream, "malformed body");

    // A hostile array count: a Metadata v1 request claiming 2^31-1 topics in a tiny frame.
    let mut stream = connect(&broker);
    let mut body = BytesMut::new();
    body.put_i16(3);
    body.put_i16(1);
    body.put_i32(12);
    body.put_i16(-1);
    body.put_i32(i32::MAX);
    stream.write_all(&frame(&body)).unwrap();
    assert_closed(stream, "hostile array count");

    // Pipelined requests are answered in order on a healthy connection.
    let mut stream = connect(&broker);
    let body = kafka_protocol::messages::ApiVersionsRequest::default();
    let mut pipelined = Vec::new();
    for correlation_id in 100..110 {
        pipelined.extend(request(ApiKey::ApiVersions, 0, correlation_id, &body));
    }
    stream.write_all(&pipelined).unwrap();
    for correlation_id in 100..110 {
        let answer: ApiVersionsResponse = response(&mut stream, ApiKey::ApiVersions, 0, correlation_id);
        assert_eq!(answer.error_code, 0);
    }

    // The broker is still up, other clients work, and nothing acknowledged was lost.
    api_versions_works(&broker);
    for i in 0..100 {
        send(
            &producer,
            BaseRecord::to("survivor")
                .key(b"k".as_slice())
                .payload(format!("after-{i}").as_bytes()),
        );
    }
    flush(&producer);
    let consumer = broker.consumer(&[]);
    assign(&consumer, "survivor", 1, Offset::Beginning);
    let values = consume(&consumer, 200, |m| {
        String::from_utf8(rdkafka::Message::payload(m).unwrap().to_vec()).unwrap()
    });
    for i in 0..100 {
        assert_eq!(values[i], format!("before-{i}"));
        assert_eq!(values[100 + i], format!("after-{i}"));
    }
}

#[test]
fn error_codes_the_rdkafka_admin_api_hides() {
    let broker = Broker::start();
    broker.create_topic("configured", 1);
    let mut stream = connect(&broker);

    let describe = DescribeConfigsRequest::default().with_resources(vec![
        describe_configs_request::DescribeConfigsResource::default()
            .with_resource_type(2)
            .with_resource_name(StrBytes::from_static_str("missing")),
        describe_configs_request::DescribeConfigsResource::default()
            .with_resource_type(2)
            .with_resource_name(StrBytes::from_static_str("configured"))
            .with_configuration_keys(Some(vec![StrBytes::from_static_str("retention.ms")])),
    ]);
    stream
        .write_all(&request(ApiKey::DescribeConfigs, 4, 1, &describe))
        .unwrap();
    let described: DescribeConfigsResponse = response(&mut stream, ApiKey::DescribeConfigs, 4, 1);
    assert_eq!(described.results[0].error_code, 3, "UNKNOWN_TOPIC_OR_PARTITION");
    assert_eq!(described.results[1].error_code, 0);
    assert_eq!(described.results[1].configs.len(), 1, "only the requested key");

    let alter = |name: &'static str, op: i8, value: Option<&'static str>| {
        IncrementalAlterConfigsRequest::default().with_resources(vec![
            incremental_alter_configs_request::AlterConfigsResource::default()
                .with_resource_type(2)
                .with_resource_name(StrBytes::from_static_str("configured"))
                .with_configs(vec![incremental_alter_configs_request::AlterableConfig::default()
                    .with_name(StrBytes::from_static_str(name))
                    .with_config_operation(op)
                    .with_value(value.map(StrBytes::from_static_str))]),
        ])
    };
    let cases = [
        (alter("retention.ms", 0, Some("1234")), 0),
        (alter("retention.ms", 0, Some("soon")), 40),
        (alter("no.such.key", 0, Some("1")), 40),
        (alter("cleanup.policy", 2, Some("compact")), 0),
    ];
    for (correlation_id, (body, expected)) in cases.iter().enumerate() {
        let correlation_id = 10 + correlation_id as i32;
        stream
            .write_all(&request(ApiKey::IncrementalAlterConfigs, 1, correlation_id, body))
            .unwrap();
        let answer: IncrementalAlterConfigsResponse =
            response(&mut stream, ApiKey::IncrementalAlterConfigs, 1, correlation_id);
        assert_eq!(answer.responses[0].error_code, *expected, "case {correlation_id}");
    }
    let describe = DescribeConfigsRequest::default().with_resources(vec![
        describe_configs_request::DescribeConfigsResource::default()
            .with_resource_type(2)
            .with_resource_name(StrBytes::from_static_str("configured")),
    ]);
    stream
        .write_all(&request(ApiKey::DescribeConfigs, 4, 20, &describe))
        .unwrap();
    let described: DescribeConfigsResponse = response(&mut stream, ApiKey::DescribeConfigs, 4, 20);
    let value = |key: &str| {
        described.results[0]
            .configs
            .iter()
            .find(|c| c.name.as_str() == key)
            .and_then(|c| c.value.as_ref().map(|v| v.to_string()))
    };
    assert_eq!(value("retention.ms").as_deref(), Some("1234"));
    assert_eq!(value("cleanup.policy").as_deref(), Some("delete,compact"));

    // ListOffsets for the record with the largest timestamp (-3).
    let producer = broker.producer(&[]);
    for (i, ts) in [5_000i64, 9_000, 7_000].iter().enumerate() {
        send(
            &producer,
            BaseRecord::to("configured")
                .payload(format!("{i}").as_bytes())
                .key(b"k".as_slice())
                .timestamp(*ts),
        );
        flush(&producer);
    }
    let list = ListOffsetsRequest::default()
        .with_replica_id(kafka_protocol::messages::BrokerId(-1))
        .with_topics(vec![list_offsets_request::ListOffsetsTopic::default()
            .with_name(TopicName(StrBytes::from_static_str("configured")))
            .with_partitions(vec![list_offsets_request::ListOffsetsPartition::default()
                .with_partition_index(0)
                .with_timestamp(-3)])]);
    stream.write_all(&request(ApiKey::ListOffsets, 7, 30, &list)).unwrap();
    let listed: ListOffsetsResponse = response(&mut stream, ApiKey::ListOffsets, 7, 30);
    let partition = &listed.topics[0].partitions[0];
    assert_eq!(
        (partition.error_code, partition.timestamp, partition.offset),
        (0, 9_000, 1)
    );
}

fn encoded_batch(values: &[&str]) -> Bytes {
    let records = values
        .iter()
        .map(|v| (None, Some(Bytes::copy_from_slice(v.as_bytes())), 1_700_000_000_000));
    sluice::record::encode_batch(records, kafka_protocol::records::Compression::None).unwrap()
}

#[test]
fn a_bad_batch_fails_only_its_own_partition() {
    use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
    use kafka_protocol::messages::{ProduceRequest, ProduceResponse};

    let broker = Broker::start();
    broker.create_topic("mixed", 3);
    let admin = broker.admin();
    let small = rdkafka::admin::NewTopic::new("small", 1, rdkafka::admin::TopicReplication::Fixed(1))
        .set("max.message.bytes", "200");
    common::block_on(admin.create_topics([&small], &rdkafka::admin::AdminOptions::new())).unwrap();

    let good = encoded_batch(&["one", "two"]);
    let mut corrupt = good.to_vec();
    let last = corrupt.len() - 1;
    corrupt[last] ^= 0xff;
    let large_values: Vec<String> = (0..10).map(|i| format!("{i:050}")).collect();
    let large = encoded_batch(&large_values.iter().map(String::as_str).collect::<Vec<_>>());
    let truncated = good.slice(..good.len() - 5);

    let partition = |index: i32, records: Bytes| {
        PartitionProduceData::default()
            .with_index(index)
            .with_records(Some(records))
    };
    let topic = |name: &'static str, partitions| {
        TopicProduceData::default()
            .with_name(TopicName(StrBytes::from_static_str(name)))
            .with_partition_data(partitions)
    };
    let mixed = ProduceRequest::default()
        .with_acks(-1)
        .with_timeout_ms(30_000)
        .with_topic_data(vec![
            topic(
                "mixed",
                vec![
                    partition(0, good.clone()),
                    partition(1, Bytes::from(corrupt)),
                    partition(2, truncated),
                    partition(99, good.clone()),
                ],
            ),
            topic("small", vec![partition(0, large)]),
            topic("nowhere", vec![partition(0, good.clone())]),
        ]);
    let mut stream = connect(&broker);
    stream.write_all(&request(ApiKey::Produce, 9, 1, &mixed)).unwrap();
    let answer: ProduceResponse = response(&mut stream, ApiKey::Produce, 9, 1);
    let code = |t: usize, p: usize| answer.responses[t].partition_responses[p].error_code;
    assert_eq!(code(0, 0), 0, "the good batch is appended");
    assert_eq!(answer.responses[0].partition_responses[0].base_offset, 0);
    assert_eq!(code(0, 1), 2, "CORRUPT_MESSAGE for a CRC failure");
    assert_eq!(code(0, 2), 2, "CORRUPT_MESSAGE for a truncated batch");
    assert_eq!(code(0, 3), 3, "UNKNOWN_TOPIC_OR_PARTITION for partition 99");
    assert_eq!(code(1, 0), 10, "MESSAGE_TOO_LARGE over max.message.bytes");
    assert_eq!(code(2, 0), 3, "UNKNOWN_TOPIC_OR_PARTITION for an unknown topic");

    // acks=0 gets no response at all; the next request's answer comes back next.
    let fire_and_forget = ProduceRequest::default()
        .with_acks(0)
        .with_timeout_ms(30_000)
        .with_topic_data(vec![topic("mixed", vec![partition(0, good.clone())])]);
    stream
        .write_all(&request(ApiKey::Produce, 9, 2, &fire_and_forget))
        .unwrap();
    stream.write_all(&request(ApiKey::Produce, 9, 3, &mixed)).unwrap();
    let answer: ProduceResponse = response(&mut stream, ApiKey::Produce, 9, 3);
    assert_eq!(
        answer.responses[0].partition_responses[0].base_offset, 4,
        "after 2 + 2 records"
    );

    let consumer = broker.consumer(&[]);
    assign(&consumer, "mixed", 3, Offset::Beginning);
    let values = consume(&consumer, 6, |m| {
        (
            rdkafka::Message::partition(m),
            String::from_utf8(rdkafka::Message::payload(m).unwrap().to_vec()).unwrap(),
        )
    });
    assert!(
        values.iter().all(|(p, _)| *p == 0),
        "nothing reached partitions 1 and 2: {values:?}"
    );
}

#[test]
fn fetch_long_poll_wakes_on_append_and_respects_max_wait() {
    use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
    use kafka_protocol::messages::{FetchRequest, FetchResponse};

    let broker = Broker::start();
    broker.create_topic("tail", 2);
    let fetch = |max_wait_ms: i32| {
        FetchRequest::default()
            .with_replica_id(kafka_protocol::messages::BrokerId(-1))
            .with_max_wait_ms(max_wait_ms)
            .with_min_bytes(1)
            .with_max_bytes(1 << 20)
            .with_topics(vec![FetchTopic::default()
                .with_topic(TopicName(StrBytes::from_static_str("tail")))
                .with_partitions(
                    (0..2)
                        .map(|p| {
                            FetchPartition::default()
                                .with_partition(p)
                                .with_fetch_offset(0)
                                .with_partition_max_bytes(1 << 20)
                        })
                        .collect(),
                )])
    };

    // An empty log and a short max wait: answered empty once the wait is over.
    let mut stream = connect(&broker);
    stream.write_all(&request(ApiKey::Fetch, 12, 1, &fetch(200))).unwrap();
    let answer: FetchResponse = response(&mut stream, ApiKey::Fetch, 12, 1);
    assert!(answer.responses[0]
        .partitions
        .iter()
        .all(|p| p.records.as_ref().is_none_or(|r| r.is_empty())));

    // A long max wait (the broker caps it at 60 s): the fetch parks until a record arrives on
    // partition 1, which must wake it long before the cap (the read timeout is 30 s).
    stream.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    stream
        .write_all(&request(ApiKey::Fetch, 12, 2, &fetch(120_000)))
        .unwrap();
    let producer = broker.producer(&[]);
    send(
        &producer,
        BaseRecord::to("tail")
            .partition(1)
            .key(b"k".as_slice())
            .payload(b"wake up".as_slice()),
    );
    flush(&producer);
    let answer: FetchResponse = response(&mut stream, ApiKey::Fetch, 12, 2);
    let partition = answer.responses[0]
        .partitions
        .iter()
        .find(|p| p.partition_index == 1)
        .unwrap();
    assert_eq!(partition.high_watermark, 1);
    assert!(
        partition.records.as_ref().is_some_and(|r| !r.is_empty()),
        "the new batch is returned"
    );
}

#[test]
fn pipelined_produce_requests_land_in_the_order_sent() {
    use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
    use kafka_protocol::messages::{ProduceRequest, ProduceResponse};

    // Four partitions spread over both shards; 400 requests sent back to back on one
    // connection, each one batch to partition i % 4, before any response is read.
    let broker = Broker::start();
    broker.create_topic("ordered", 4);
    let mut frames = Vec::new();
    for i in 0..400 {
        let value = format!("{i}");
        let body = ProduceRequest::default()
            .with_acks(if i % 2 == 0 { 1 } else { -1 })
            .with_timeout_ms(30_000)
            .with_topic_data(vec![TopicProduceData::default()
                .with_name(TopicName(StrBytes::from_static_str("ordered")))
                .with_partition_data(vec![PartitionProduceData::default()
                    .with_index(i % 4)
                    .with_records(Some(encoded_batch(&[value.as_str()])))])]);
        frames.extend(request(ApiKey::Produce, 9, i, &body));
    }
    let mut stream = connect(&broker);
    stream.write_all(&frames).unwrap();
    for i in 0..400 {
        let answer: ProduceResponse = response(&mut stream, ApiKey::Produce, 9, i);
        let partition = &answer.responses[0].partition_responses[0];
        assert_eq!(partition.error_code, 0, "request {i}");
        assert_eq!(
            partition.base_offset,
            i64::from(i / 4),
            "request {i} got the offset its order gives"
        );
    }
    let consumer = broker.consumer(&[]);
    assign(&consumer, "ordered", 4, Offset::Beginning);
    let mut read: Vec<(i32, i64, i32)> = consume(&consumer, 400, |m| {
        let value = std::str::from_utf8(rdkafka::message::Message::payload(m).unwrap()).unwrap();
        (
            rdkafka::message::Message::partition(m),
            rdkafka::message::Message::offset(m),
            value.parse().unwrap(),
        )
    });
    read.sort();
    for (partition, offset, value) in read {
        assert_eq!(
            value,
            offset as i32 * 4 + partition,
            "partition {partition} offset {offset}"
        );
    }
}

/// Pipelined requests of every kind are answered in order and whole when the broker joins
/// answers ready together into one write: produces (answered once durable) between requests
/// answered at once, and a fetch answer larger than what is joined.
#[test]
fn pipelined_answers_keep_their_order_when_joined() {
    use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
    use kafka_protocol::messages::{FetchResponse, ProduceRequest, ProduceResponse, TopicName};
    use kafka_protocol::records::Compression;

    let broker = Broker::start();
    broker.create_topic("joined", 1);
    let big = Bytes::from(vec![b'x'; 200_000]);
    let produce = |value: Bytes| {
        let batch = sluice::record::encode_batch([(None, Some(value), 1_700_000_000_000)], Compression::None).unwrap();
        ProduceRequest::default()
            .with_acks(-1)
            .with_timeout_ms(10_000)
            .with_topic_data(vec![TopicProduceData::default()
                .with_name(TopicName(StrBytes::from_static_str("joined")))
                .with_partition_data(vec![PartitionProduceData::default()
                    .with_index(0)
                    .with_records(Some(batch))])])
    };
    // The big record first, alone, so the fetch below has it to answer with.
    let mut stream = connect(&broker);
    stream
        .write_all(&request(ApiKey::Produce, 9, 1, &produce(big)))
        .unwrap();
    let first: ProduceResponse = response(&mut stream, ApiKey::Produce, 9, 1);
    assert_eq!(first.responses[0].partition_responses[0].error_code, 0);

    let versions = kafka_protocol::messages::ApiVersionsRequest::default();
    let fetch = common::raw::fetch_request("joined", &[(0, 0)], 0, 1, 1 << 20, 1 << 20);
    let mut pipelined = Vec::new();
    let mut expected = Vec::new();
    for round in 0..20 {
        let id = 100 + round * 4;
        pipelined.extend(request(
            ApiKey::Produce,
            9,
            id,
            &produce(Bytes::from(format!("small-{round}"))),
        ));
        pipelined.extend(request(ApiKey::ApiVersions, 0, id + 1, &versions));
        pipelined.extend(request(ApiKey::Fetch, common::raw::FETCH_VERSION, id + 2, &fetch));
        pipelined.extend(request(ApiKey::ApiVersions, 0, id + 3, &versions));
        expected.extend([
            (ApiKey::Produce, id),
            (ApiKey::ApiVersions, id + 1),
            (ApiKey::Fetch, id + 2),
            (ApiKey::ApiVersions, id + 3),
        ]);
    }
    stream.write_all(&pipelined).unwrap();
    for (key, id) in expected {
        match key {
            ApiKey::Produce => {
                let answer: ProduceResponse = response(&mut stream, key, 9, id);
                assert_eq!(answer.responses[0].partition_responses[0].error_code, 0, "produce {id}");
            }
            ApiKey::Fetch => {
                let answer: FetchResponse = response(&mut stream, key, common::raw::FETCH_VERSION, id);
                let records = answer.responses[0].partitions[0].records.as_ref().expect("records");
                assert!(records.len() > 200_000, "fetch {id} carries the big record whole");
            }
            _ => {
                let answer: ApiVersionsResponse = response(&mut stream, key, 0, id);
                assert_eq!(answer.error_code, 0, "api versions {id}");
            }
        }
    }
}
