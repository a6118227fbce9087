//! The latency client's own floor: a Kafka-compatible listener that stores nothing and answers
//! ApiVersions, Metadata and Produce at once from memory, so what `one-record-latency`
//! measures against it is the client, the loopback and the scheduler, not a broker's work.
//!
//! Usage: instant-broker PORT   (serves 127.0.0.1:PORT as node 0, every topic one partition)
use std::io::{BufReader, BufWriter, Read, Write};
use std::net::{TcpListener, TcpStream};

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::api_versions_response::{ApiVersion, ApiVersionsResponse};
use kafka_protocol::messages::metadata_response::{
    MetadataResponse, MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::produce_response::{PartitionProduceResponse, ProduceResponse, TopicProduceResponse};
use kafka_protocol::messages::{ApiKey, BrokerId, MetadataRequest, ProduceRequest, RequestHeader, ResponseHeader};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};

/// The APIs served and their versions: enough for librdkafka's producer.
const SERVED: [(ApiKey, i16, i16); 3] = [
    (ApiKey::ApiVersions, 0, 3),
    (ApiKey::Metadata, 1, 9),
    (ApiKey::Produce, 3, 9),
];
/// A frame larger than this closes the connection.
const FRAME_BYTES_MAX: usize = 64 << 20;

fn main() {
    let port: u16 = std::env::args()
        .nth(1)
        .expect("usage: instant-broker PORT")
        .parse()
        .expect("a port");
    let listener = TcpListener::bind(("127.0.0.1", port)).expect("bind");
    println!("instant-broker listening on 127.0.0.1:{port}");
    for stream in listener.incoming() {
        let Ok(stream) = stream else { continue };
        std::thread::spawn(move || {
            if let Err(e) = serve(stream, port) {
                eprintln!("instant-broker: connection ended: {e}");
            }
        });
    }
}

fn serve(stream: TcpStream, port: u16) -> Result<(), String> {
    stream.set_nodelay(true).map_err(|e| e.to_string())?;
    let mut reader = BufReader::new(stream.try_clone().map_err(|e| e.to_string())?);
    let mut writer = BufWriter::new(stream);
    let mut offset = 0i64;
    loop {
        let mut length = [0u8; 4];
        if reader.read_exact(&mut length).is_err() {
            return Ok(());
        }
        let length = i32::from_be_bytes(length);
        if length < 0 || length as usize > FRAME_BYTES_MAX {
            return Err(format!("frame of {length} bytes"));
        }
        let mut frame = vec![0u8; length as usize];
        reader.read_exact(&mut frame).map_err(|e| e.to_string())?;
        let response = answer(Bytes::from(frame), port, &mut offset)?;
        writer.write_all(&response).map_err(|e| e.to_string())?;
        // Answers leave as soon as no more requests are already buffered.
        if reader.buffer().is_empty() {
            writer.flush().map_err(|e| e.to_string())?;
        }
    }
}

fn answer(mut frame: Bytes, port: u16, offset: &mut i64) -> Result<BytesMut, String> {
    if frame.len() < 4 {
        return Err("short frame".into());
    }
    let key = ApiKey::try_from((&frame[..2]).get_i16()).map_err(|_| "unknown api key".to_string())?;
    let version = (&frame[2..4]).get_i16();
    let header = RequestHeader::decode(&mut frame, key.request_header_version(version)).map_err(|e| e.to_string())?;
    let mut body = BytesMut::new();
    let served = SERVED.iter().find(|(k, _, _)| *k == key);
    match served {
        // An ApiVersions at a version we do not serve is answered in v0 (KIP-511).
        Some((ApiKey::ApiVersions, _, max)) => {
            let keys = SERVED
                .iter()
                .map(|(k, min, max)| {
                    ApiVersion::default()
                        .with_api_key(*k as i16)
                        .with_min_version(*min)
                        .with_max_version(*max)
                })
                .collect();
            let at = if version > *max { 0 } else { version };
            let error = if version > *max { 35 } else { 0 };
            ApiVersionsResponse::default()
                .with_error_code(error)
                .with_api_keys(keys)
                .encode(&mut body, at)
                .map_err(|e| e.to_string())?;
            return Ok(framed(
                header.correlation_id,
                ApiKey::ApiVersions.response_header_version(at),
                body,
            ));
        }
        Some((ApiKey::Metadata, _, _)) => {
            let request = MetadataRequest::decode(&mut frame, version).map_err(|e| e.to_string())?;
            let topics = request
                .topics
                .unwrap_or_default()
                .into_iter()
                .filter_map(|t| t.name)
                .map(|name| {
                    MetadataResponseTopic::default()
                        .with_name(Some(name))
                        .with_partitions(vec![MetadataResponsePartition::default()
                            .with_partition_index(0)
                            .with_leader_id(BrokerId(0))
                            .with_replica_nodes(vec![BrokerId(0)])
                            .with_isr_nodes(vec![BrokerId(0)])])
                })
                .collect();
            MetadataResponse::default()
                .with_brokers(vec![MetadataResponseBroker::default()
                    .with_node_id(BrokerId(0))
                    .with_host(StrBytes::from_static_str("127.0.0.1"))
                    .with_port(i32::from(port))])
                .with_controller_id(BrokerId(0))
                .with_topics(topics)
                .encode(&mut body, version)
                .map_err(|e| e.to_string())?;
        }
        Some((ApiKey::Produce, _, _)) => {
            let request = ProduceRequest::decode(&mut frame, version).map_err(|e| e.to_string())?;
            let responses = request
                .topic_data
                .into_iter()
                .map(|topic| {
                    let partitions = topic
                        .partition_data
                        .into_iter()
                        .map(|p| {
                            let base = *offset;
                            *offset += 1;
                            PartitionProduceResponse::default()
                                .with_index(p.index)
                                .with_base_offset(base)
                        })
                        .collect();
                    TopicProduceResponse::default()
                        .with_name(topic.name)
                        .with_partition_responses(partitions)
                })
                .collect();
            if request.acks == 0 {
                return Ok(BytesMut::new());
            }
            ProduceResponse::default()
                .with_responses(responses)
                .encode(&mut body, version)
                .map_err(|e| e.to_string())?;
        }
        _ => return Err(format!("{key:?} v{version} is not served")),
    }
    Ok(framed(
        header.correlation_id,
        key.response_header_version(version),
        body,
    ))
}

fn framed(correlation_id: i32, header_version: i16, body: BytesMut) -> BytesMut {
    let mut header = BytesMut::new();
    ResponseHeader::default()
        .with_correlation_id(correlation_id)
        .encode(&mut header, header_version)
        .expect("a response header encodes");
    let mut out = BytesMut::with_capacity(4 + header.len() + body.len());
    out.put_i32((header.len() + body.len()) as i32);
    out.extend_from_slice(&header);
    out.extend_from_slice(&body);
    out
}
