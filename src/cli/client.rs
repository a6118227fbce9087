//! A small blocking Kafka client for the administration subcommands: one connection, one
//! request at a time, kafka-protocol for every encoding. It speaks plain Kafka, so the
//! subcommands work against any Kafka-compatible broker.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use anyhow::{anyhow, bail, Context};
use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, RequestHeader, ResponseHeader};
use kafka_protocol::protocol::{Decodable, Encodable, Request, StrBytes};

/// Longest a reply may take before the command gives up.
const REPLY_TIMEOUT: Duration = Duration::from_secs(30);
/// Largest response frame accepted.
const RESPONSE_BYTES_MAX: usize = 256 * 1024 * 1024;

/// `request` with its header, behind the 4-byte length prefix.
pub fn frame_request<R: Encodable>(
    key: ApiKey,
    version: i16,
    correlation_id: i32,
    client_id: &'static str,
    request: &R,
) -> anyhow::Result<BytesMut> {
    let mut frame = BytesMut::new();
    frame.put_i32(0);
    RequestHeader::default()
        .with_request_api_key(key as i16)
        .with_request_api_version(version)
        .with_correlation_id(correlation_id)
        .with_client_id(Some(StrBytes::from_static_str(client_id)))
        .encode(&mut frame, key.request_header_version(version))?;
    request.encode(&mut frame, version)?;
    let length = (frame.len() - 4) as i32;
    frame[..4].copy_from_slice(&length.to_be_bytes());
    Ok(frame)
}

/// Reads one response frame (without its length prefix), at most [`RESPONSE_BYTES_MAX`].
pub fn read_frame(stream: &mut TcpStream) -> anyhow::Result<Bytes> {
    let mut length = [0u8; 4];
    stream.read_exact(&mut length)?;
    let length = i32::from_be_bytes(length);
    if length < 0 || length as usize > RESPONSE_BYTES_MAX {
        bail!("the broker sent a {length}-byte frame");
    }
    let mut body = vec![0u8; length as usize];
    stream.read_exact(&mut body)?;
    Ok(Bytes::from(body))
}

pub struct Client {
    stream: TcpStream,
    address: String,
    correlation_id: i32,
}

impl Client {
    pub fn connect(address: &str) -> anyhow::Result<Client> {
        let stream = TcpStream::connect(address).with_context(|| format!("connecting to {address}"))?;
        stream.set_read_timeout(Some(REPLY_TIMEOUT))?;
        stream.set_nodelay(true)?;
        Ok(Client {
            stream,
            address: address.to_string(),
            correlation_id: 0,
        })
    }

    /// Sends `request` at `version` and reads its response.
    pub fn call<R: Request>(&mut self, version: i16, request: &R) -> anyhow::Result<R::Response> {
        let key = ApiKey::try_from(R::KEY).map_err(|_| anyhow!("unknown API key {}", R::KEY))?;
        self.correlation_id += 1;
        let frame = frame_request(key, version, self.correlation_id, "sluice-cli", request)?;
        self.stream
            .write_all(&frame)
            .with_context(|| format!("sending {key:?} to {}", self.address))?;
        let mut body =
            read_frame(&mut self.stream).with_context(|| format!("reading the {key:?} reply from {}", self.address))?;
        let header = ResponseHeader::decode(&mut body, key.response_header_version(version))?;
        if header.correlation_id != self.correlation_id {
            bail!(
                "{} answered request {} instead of {}",
                self.address,
                header.correlation_id,
                self.correlation_id
            );
        }
        R::Response::decode(&mut body, version)
    }
}
