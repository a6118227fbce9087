//! Raw Kafka protocol over a TCP socket, for checking what clients hide: exact error codes,
//! malformed input, long-polls.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::TcpStream;

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, RequestHeader, ResponseHeader};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};

use super::Broker;

pub fn connect(broker: &Broker) -> TcpStream {
    let stream = TcpStream::connect(&broker.addr).expect("connect");
    stream.set_read_timeout(Some(super::WAIT)).unwrap();
    stream
}

pub fn frame(body: &[u8]) -> Vec<u8> {
    let mut out = (body.len() as i32).to_be_bytes().to_vec();
    out.extend_from_slice(body);
    out
}

/// A request header for `key` at `version`.
fn header(key: ApiKey, version: i16, correlation_id: i32) -> BytesMut {
    let mut buf = BytesMut::new();
    RequestHeader::default()
        .with_request_api_key(key as i16)
        .with_request_api_version(version)
        .with_correlation_id(correlation_id)
        .with_client_id(Some(StrBytes::from_static_str("raw-test")))
        .encode(&mut buf, key.request_header_version(version))
        .unwrap();
    buf
}

/// Encodes a request with its header for `key` at `version`.
pub fn request<R: Encodable>(key: ApiKey, version: i16, correlation_id: i32, body: &R) -> Vec<u8> {
    let mut buf = header(key, version, correlation_id);
    body.encode(&mut buf, version).unwrap();
    frame(&buf)
}

/// Reads one response frame; None if the broker closed the connection instead.
pub fn read_response(stream: &mut TcpStream) -> Option<Bytes> {
    let mut length = [0u8; 4];
    stream.read_exact(&mut length).ok()?;
    let mut body = vec![0u8; i32::from_be_bytes(length) as usize];
    stream.read_exact(&mut body).ok()?;
    Some(Bytes::from(body))
}

pub fn response<R: Decodable>(stream: &mut TcpStream, key: ApiKey, version: i16, correlation_id: i32) -> R {
    let mut bytes = read_response(stream).expect("a response");
    let header = ResponseHeader::decode(&mut bytes, key.response_header_version(version)).unwrap();
    assert_eq!(header.correlation_id, correlation_id);
    R::decode(&mut bytes, version).unwrap()
}

/// Like [`call`] at a `version` the codec does not know, whose wire form is `wire`'s: the
/// header says `version`, the body is encoded and decoded as `wire`.
pub fn call_as<Q: Encodable, R: Decodable>(broker: &Broker, key: ApiKey, version: i16, wire: i16, body: &Q) -> R {
    let mut encoded = BytesMut::new();
    body.encode(&mut encoded, wire).unwrap();
    let mut answer = call_bytes(broker, key, version, &encoded);
    R::decode(&mut answer, wire).unwrap()
}

/// Sends a body encoded by the test (at a version the codec does not know) under `version`,
/// and returns the response body after its header.
pub fn call_bytes(broker: &Broker, key: ApiKey, version: i16, body: &[u8]) -> Bytes {
    let mut buf = header(key, version, 1);
    buf.extend_from_slice(body);
    let mut stream = connect(broker);
    stream.write_all(&frame(&buf)).expect("send");
    let mut bytes = read_response(&mut stream).expect("a response");
    let header = ResponseHeader::decode(&mut bytes, key.response_header_version(version)).unwrap();
    assert_eq!(header.correlation_id, 1);
    bytes
}

/// Sends `body` as one request and reads its response.
pub fn call<Q: Encodable, R: Decodable>(broker: &Broker, key: ApiKey, version: i16, body: &Q) -> R {
    let mut stream = connect(broker);
    stream.write_all(&request(key, version, 1, body)).expect("send");
    response(&mut stream, key, version, 1)
}

/// A consumer's Fetch (v12, topics by name) of `topic`: each `(partition, offset)` with
/// `partition_max_bytes`, the response bounded by `max_bytes`.
pub fn fetch_request(
    topic: &str,
    partitions: &[(i32, i64)],
    max_wait_ms: i32,
    min_bytes: i32,
    max_bytes: i32,
    partition_max_bytes: i32,
) -> kafka_protocol::messages::FetchRequest {
    use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
    kafka_protocol::messages::FetchRequest::default()
        .with_replica_id(kafka_protocol::messages::BrokerId(-1))
        .with_max_wait_ms(max_wait_ms)
        .with_min_bytes(min_bytes)
        .with_max_bytes(max_bytes)
        .with_topics(vec![FetchTopic::default()
            .with_topic(kafka_protocol::messages::TopicName(StrBytes::from_string(
                topic.to_string(),
            )))
            .with_partitions(
                partitions
                    .iter()
                    .map(|&(partition, offset)| {
                        FetchPartition::default()
                            .with_partition(partition)
                            .with_fetch_offset(offset)
                            .with_partition_max_bytes(partition_max_bytes)
                    })
                    .collect(),
            )])
}

/// The version [`fetch_request`]s are sent at.
pub const FETCH_VERSION: i16 = 12;
