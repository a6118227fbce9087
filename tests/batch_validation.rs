//! Produce validates every record of a batch before writing it, as Kafka's LogValidator does:
//! each kind of bad batch (with a valid CRC, so only the inner validation can catch it) fails
//! its own partition with the exact code and `record_errors`, a good partition in the same
//! request succeeds, nothing of a refused batch is written, and every partition stays
//! readable by librdkafka with only the good records.

mod common;

use std::collections::BTreeMap;
use std::io::Write;

use bytes::Bytes;
use common::raw::{call, connect, request, response};
use common::{assign, consume, flush, send, Broker, WAIT};
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::produce_response::PartitionProduceResponse;
use kafka_protocol::messages::{
    ApiKey, DescribeConfigsRequest, DescribeConfigsResponse, ProduceRequest, ProduceResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::Compression;
use rdkafka::consumer::Consumer;
use rdkafka::producer::BaseRecord;
use rdkafka::Offset;

const CORRUPT_MESSAGE: i16 = 2;
const INVALID_TIMESTAMP: i16 = 32;
const INVALID_RECORD: i16 = 87;

/// Produce v9: record_errors and error_message are in the response from v8.
const PRODUCE_VERSION: i16 = 9;

/// 9999-12-31T23:59:59Z.
const YEAR_9999_MS: i64 = 253_402_300_799_000;

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_millis() as i64
}

fn put_varint(out: &mut Vec<u8>, value: i64) {
    let mut raw = ((value << 1) ^ (value >> 63)) as u64;
    while raw >= 0x80 {
        out.push((raw as u8) | 0x80);
        raw >>= 7;
    }
    out.push(raw as u8);
}

/// A record's body (no length prefix) at index `index`: key "k", value "v<index>", one header.
fn body(index: i32) -> Vec<u8> {
    let mut out = vec![0]; // attributes
    put_varint(&mut out, i64::from(index)); // timestampDelta
    put_varint(&mut out, i64::from(index)); // offsetDelta
    put_varint(&mut out, 1);
    out.push(b'k');
    let value = format!("v{index}");
    put_varint(&mut out, value.len() as i64);
    out.extend_from_slice(value.as_bytes());
    put_varint(&mut out, 1); // one header: "h" = "x"
    put_varint(&mut out, 1);
    out.push(b'h');
    put_varint(&mut out, 1);
    out.push(b'x');
    out
}

fn framed(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    put_varint(&mut out, body.len() as i64);
    out.extend_from_slice(body);
    out
}

/// A v2 batch of `count` records around `payload` (already compressed with the codec in
/// `attributes`), with valid length and CRC.
fn seal(payload: &[u8], count: i32, attributes: i16, base_timestamp: i64) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&0i64.to_be_bytes());
    out.extend_from_slice(&0i32.to_be_bytes());
    out.extend_from_slice(&(-1i32).to_be_bytes());
    out.push(2);
    out.extend_from_slice(&0u32.to_be_bytes());
    out.extend_from_slice(&attributes.to_be_bytes());
    out.extend_from_slice(&(count - 1).to_be_bytes());
    out.extend_from_slice(&base_timestamp.to_be_bytes());
    out.extend_from_slice(&(base_timestamp + i64::from(count) - 1).to_be_bytes());
    out.extend_from_slice(&(-1i64).to_be_bytes());
    out.extend_from_slice(&(-1i16).to_be_bytes());
    out.extend_from_slice(&(-1i32).to_be_bytes());
    out.extend_from_slice(&count.to_be_bytes());
    out.extend_from_slice(payload);
    reseal(&mut out);
    out
}

/// Sets the length and CRC to match whatever the test did to the batch.
fn reseal(batch: &mut [u8]) {
    let length = (batch.len() - 12) as i32;
    batch[8..12].copy_from_slice(&length.to_be_bytes());
    let crc = crc32c::crc32c(&batch[21..]);
    batch[17..21].copy_from_slice(&crc.to_be_bytes());
}

/// Three records, the middle one replaced by `middle` (a body).
fn three_with_middle(middle: Vec<u8>, now: i64) -> Bytes {
    let records: Vec<u8> = [body(0), middle, body(2)].iter().flat_map(|b| framed(b)).collect();
    Bytes::from(seal(&records, 3, 0, now))
}

/// Bytes that are no codec's stream.
fn garbage() -> Vec<u8> {
    (0..300u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect()
}

/// Records `values` encoded by kafka-protocol (the format real clients use), stamped `at`.
fn encoded(values: &[&str], at: i64, compression: Compression) -> Bytes {
    let records = values
        .iter()
        .map(|v| (None, Some(Bytes::copy_from_slice(v.as_bytes())), at));
    sluice::record::encode_batch(records, compression).expect("encode")
}

/// What one bad partition must be answered with.
struct Expected {
    what: &'static str,
    batch: Bytes,
    code: i16,
    /// The record named in `record_errors`, if one is.
    record: Option<i32>,
}

fn produce(broker: &Broker, topic: &str, batches: &[Bytes]) -> Vec<PartitionProduceResponse> {
    let partitions = batches
        .iter()
        .enumerate()
        .map(|(p, batch)| {
            PartitionProduceData::default()
                .with_index(p as i32)
                .with_records(Some(batch.clone()))
        })
        .collect();
    let request_body = ProduceRequest::default()
        .with_acks(-1)
        .with_timeout_ms(30_000)
        .with_topic_data(vec![TopicProduceData::default()
            .with_name(TopicName(StrBytes::from_string(topic.to_string())))
            .with_partition_data(partitions)]);
    let mut stream = connect(broker);
    stream
        .write_all(&request(ApiKey::Produce, PRODUCE_VERSION, 7, &request_body))
        .expect("send produce");
    let answer: ProduceResponse = response(&mut stream, ApiKey::Produce, PRODUCE_VERSION, 7);
    let mut by_index: BTreeMap<i32, PartitionProduceResponse> = answer
        .responses
        .into_iter()
        .flat_map(|t| t.partition_responses)
        .map(|p| (p.index, p))
        .collect();
    (0..batches.len() as i32)
        .map(|p| by_index.remove(&p).expect("an answer per partition"))
        .collect()
}

#[test]
fn every_kind_of_bad_batch_fails_only_its_partition_and_writes_nothing() {
    let broker = Broker::start();
    let now = now_ms();
    let mut cases: Vec<Expected> = Vec::new();
    let mut case = |what, batch: Bytes, code, record| {
        cases.push(Expected {
            what,
            batch,
            code,
            record,
        })
    };

    let mut overlong = vec![0x80, 0x80, 0x80, 0x80, 0x80, 0x00]; // a six-byte record length
    overlong.extend_from_slice(&body(0));
    case(
        "overlong varint",
        Bytes::from(seal(&overlong, 1, 0, now)),
        INVALID_RECORD,
        Some(0),
    );
    // Byte 3 of a body is the key length, 5 the value length; the header's value length is
    // the second-to-last byte.
    let mut key = body(1);
    key[3] = 0x7e;
    case(
        "key past the record",
        three_with_middle(key, now),
        INVALID_RECORD,
        Some(1),
    );
    let mut value = body(1);
    value[5] = 0x7e;
    case(
        "value past the record",
        three_with_middle(value, now),
        INVALID_RECORD,
        Some(1),
    );
    let mut header_value = body(1);
    let at = header_value.len() - 2;
    header_value[at] = 0x7e;
    case(
        "header value past the record",
        three_with_middle(header_value, now),
        INVALID_RECORD,
        Some(1),
    );
    let mut negative_headers = body(1);
    let at = negative_headers.len() - 5;
    negative_headers[at] = 0x01;
    case(
        "negative header count",
        three_with_middle(negative_headers, now),
        INVALID_RECORD,
        Some(1),
    );
    let mut null_header_key = body(1);
    let at = null_header_key.len() - 4;
    null_header_key[at] = 0x01;
    null_header_key.remove(at + 1);
    case(
        "null header key",
        three_with_middle(null_header_key, now),
        INVALID_RECORD,
        Some(1),
    );
    let mut offset_delta = body(1);
    offset_delta[2] = 0x0a; // offsetDelta 5
    case(
        "offsetDelta not the index",
        three_with_middle(offset_delta, now),
        INVALID_RECORD,
        Some(1),
    );
    let mut inside = body(1);
    inside.extend_from_slice(&[0, 0]);
    case(
        "bytes left inside a record",
        three_with_middle(inside, now),
        INVALID_RECORD,
        Some(1),
    );
    let mut after: Vec<u8> = (0..2).flat_map(|i| framed(&body(i))).collect();
    after.extend_from_slice(&[9, 9, 9]);
    case(
        "bytes after the last record",
        Bytes::from(seal(&after, 2, 0, now)),
        INVALID_RECORD,
        None,
    );
    for (what, codec) in [
        ("gzip garbage", 1),
        ("snappy garbage", 2),
        ("lz4 garbage", 3),
        ("zstd garbage", 4),
        ("unknown codec 5", 5),
        ("unknown codec 7", 7),
    ] {
        case(what, Bytes::from(seal(&garbage(), 2, codec, now)), INVALID_RECORD, None);
    }
    let mut control = encoded(&["c"], now, Compression::None).to_vec();
    control[22] |= 0x20;
    reseal(&mut control);
    case("control batch", Bytes::from(control), INVALID_RECORD, None);
    case(
        "year 9999",
        encoded(&["late"], YEAR_9999_MS, Compression::None),
        INVALID_TIMESTAMP,
        Some(0),
    );
    let mut crc = encoded(&["a"], now, Compression::None).to_vec();
    let last = crc.len() - 1;
    crc[last] ^= 0xff;
    case("CRC mismatch", Bytes::from(crc), CORRUPT_MESSAGE, None);
    // A gigabyte of zeros as concatenated zstd frames of a MiB each: a few KiB on the wire.
    let frame = zstd::encode_all(&vec![0u8; 1 << 20][..], 3).expect("zstd");
    case(
        "zstd bomb",
        Bytes::from(seal(&frame.repeat(1024), 1, 4, now)),
        INVALID_RECORD,
        None,
    );
    // A good batch followed by a bad one: the partition fails whole.
    let first = encoded(&["lost"], now, Compression::None);
    let second = encoded(&["x"], YEAR_9999_MS, Compression::None);
    case(
        "good then bad batch",
        Bytes::from([first.as_ref(), second.as_ref()].concat()),
        INVALID_TIMESTAMP,
        Some(0),
    );

    // Partitions 0-2 get good batches (uncompressed and lz4) in the same request; the third's
    // maxTimestamp is not its records' largest, which the broker rewrites, as Kafka does.
    let mut wrong_maximum = encoded(&["good-4", "good-5"], now, Compression::Lz4).to_vec();
    wrong_maximum[35..43].copy_from_slice(&(now + 10).to_be_bytes());
    reseal(&mut wrong_maximum);
    let good = [
        encoded(&["good-0", "good-1"], now, Compression::None),
        encoded(&["good-2", "good-3"], now, Compression::Lz4),
        Bytes::from(wrong_maximum),
    ];
    let partitions = good.len() + cases.len();
    broker.create_topic("validated", partitions as i32);
    let batches: Vec<Bytes> = good
        .iter()
        .cloned()
        .chain(cases.iter().map(|c| c.batch.clone()))
        .collect();
    let answers = produce(&broker, "validated", &batches);

    for (p, answer) in answers.iter().take(good.len()).enumerate() {
        assert_eq!((answer.error_code, answer.base_offset), (0, 0), "good partition {p}");
        assert!(answer.record_errors.is_empty());
    }
    for (case, answer) in cases.iter().zip(&answers[good.len()..]) {
        let errors: Vec<(i32, String)> = answer
            .record_errors
            .iter()
            .map(|e| {
                let message = e.batch_index_error_message.as_ref().map(|m| m.to_string());
                (e.batch_index, message.unwrap_or_default())
            })
            .collect();
        let message = answer.error_message.as_ref().map(|m| m.to_string()).unwrap_or_default();
        assert_eq!(answer.error_code, case.code, "{}: {message}", case.what);
        assert_eq!(
            errors.iter().map(|(i, _)| *i).collect::<Vec<_>>(),
            case.record.into_iter().collect::<Vec<_>>(),
            "{}: record_errors {errors:?}",
            case.what
        );
        assert!(errors.iter().all(|(_, m)| !m.is_empty()), "{}: {errors:?}", case.what);
        assert!(!message.is_empty(), "{}: an error message", case.what);
        assert_eq!(answer.base_offset, -1, "{}", case.what);
    }

    // A real client then writes one record to every partition and reads them all back: the
    // good batches, then its own record; nothing of any refused batch.
    let producer = broker.producer(&[]);
    for p in 0..partitions as i32 {
        send(
            &producer,
            BaseRecord::to("validated")
                .partition(p)
                .payload(format!("after-{p}").as_bytes()),
        );
    }
    flush(&producer);
    let consumer = broker.consumer(&[]);
    assign(&consumer, "validated", partitions as i32, Offset::Beginning);
    let expected_records = 2 * good.len() + partitions;
    let mut read = consume(&consumer, expected_records, |m| {
        let value = String::from_utf8(rdkafka::Message::payload(m).expect("a value").to_vec()).expect("utf-8");
        (rdkafka::Message::partition(m), rdkafka::Message::offset(m), value)
    });
    read.sort();
    let mut expected = vec![
        (0, 0, "good-0".to_string()),
        (0, 1, "good-1".to_string()),
        (0, 2, "after-0".to_string()),
        (1, 0, "good-2".to_string()),
        (1, 1, "good-3".to_string()),
        (1, 2, "after-1".to_string()),
        (2, 0, "good-4".to_string()),
        (2, 1, "good-5".to_string()),
        (2, 2, "after-2".to_string()),
    ];
    expected.extend((good.len() as i32..partitions as i32).map(|p| (p, 0, format!("after-{p}"))));
    expected.sort();
    assert_eq!(read, expected);
    for p in 0..partitions as i32 {
        let (_, high) = consumer.fetch_watermarks("validated", p, WAIT).expect("watermarks");
        let records = if (p as usize) < good.len() { 3 } else { 1 };
        assert_eq!(high, records, "partition {p} holds only the good records");
    }
    // The rewritten batch is stored with its records' true maximum and a valid CRC.
    let fetch = common::raw::fetch_request("validated", &[(2, 0)], 0, 1, 1 << 20, 1 << 20);
    let version = common::raw::FETCH_VERSION;
    let fetched: kafka_protocol::messages::FetchResponse = call(&broker, ApiKey::Fetch, version, &fetch);
    let stored = fetched.responses[0].partitions[0].records.clone().expect("records");
    assert_eq!(i64::from_be_bytes(stored[35..43].try_into().unwrap()), now);
    assert_eq!(
        crc32c::crc32c(&stored[21..12 + i32::from_be_bytes(stored[8..12].try_into().unwrap()) as usize]),
        u32::from_be_bytes(stored[17..21].try_into().unwrap())
    );
}

#[test]
fn timestamp_bounds_follow_the_topic_config() {
    let broker = Broker::start();
    broker.create_topic_with(
        "strict",
        1,
        &[
            ("message.timestamp.before.max.ms", "60000"),
            ("message.timestamp.after.max.ms", "0"),
        ],
    );
    broker.create_topic_with("appended", 1, &[("message.timestamp.type", "LogAppendTime")]);
    broker.create_topic("defaults", 1);

    // The keys are listed with the topic's values and the broker's defaults.
    let describe = DescribeConfigsRequest::default().with_resources(
        ["strict", "defaults"]
            .iter()
            .map(|name| {
                DescribeConfigsResource::default()
                    .with_resource_type(2)
                    .with_resource_name(StrBytes::from_static_str(name))
                    .with_configuration_keys(Some(vec![
                        StrBytes::from_static_str("message.timestamp.before.max.ms"),
                        StrBytes::from_static_str("message.timestamp.after.max.ms"),
                    ]))
            })
            .collect(),
    );
    let described: DescribeConfigsResponse = call(&broker, ApiKey::DescribeConfigs, 4, &describe);
    let values: Vec<Vec<(String, String)>> = described
        .results
        .iter()
        .map(|r| {
            r.configs
                .iter()
                .map(|c| {
                    (
                        c.name.to_string(),
                        c.value.as_ref().map(|v| v.to_string()).unwrap_or_default(),
                    )
                })
                .collect()
        })
        .collect();
    let pair = |k: &str, v: &str| (k.to_string(), v.to_string());
    assert_eq!(
        values,
        vec![
            vec![
                pair("message.timestamp.after.max.ms", "0"),
                pair("message.timestamp.before.max.ms", "60000"),
            ],
            vec![
                pair("message.timestamp.after.max.ms", "3600000"),
                pair("message.timestamp.before.max.ms", &i64::MAX.to_string()),
            ],
        ]
    );

    let now = now_ms();
    let hour_ago = now - 3_600_000;
    let answer = |topic: &str, at: i64| {
        let answers = produce(&broker, topic, &[encoded(&["r"], at, Compression::Zstd)]);
        (answers[0].error_code, answers[0].record_errors.len())
    };
    assert_eq!(
        answer("strict", hour_ago),
        (INVALID_TIMESTAMP, 1),
        "older than a minute"
    );
    assert_eq!(answer("strict", now + 60_000), (INVALID_TIMESTAMP, 1), "in the future");
    assert_eq!(answer("strict", now_ms()).0, 0, "now");
    assert_eq!(answer("defaults", hour_ago).0, 0, "no lower bound by default");
    assert_eq!(answer("defaults", YEAR_9999_MS), (INVALID_TIMESTAMP, 1));
    assert_eq!(
        answer("appended", YEAR_9999_MS).0,
        0,
        "LogAppendTime ignores producer clocks"
    );
}
