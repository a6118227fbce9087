//! A Kafka client connection from one shard to another broker, as a follower uses to fetch
//! from its leader: one request at a time, each answer read whole and decoded.

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures::io::{AsyncReadExt, AsyncWriteExt};
use glommio::net::TcpStream;
use kafka_protocol::messages::{ApiKey, RequestHeader, ResponseHeader};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};

/// Largest answer accepted: a fetch response is bounded by the request's `max_bytes`.
const RESPONSE_BYTES_MAX: usize = 256 * 1024 * 1024;

/// Why a call failed; the connection is closed after any of them.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("{address}: {source}")]
    Io {
        address: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{address}: {reason}")]
    Protocol { address: String, reason: String },
    #[error("{address}: no answer within {timeout:?}")]
    Timeout { address: String, timeout: Duration },
}

pub struct KafkaClient {
    address: String,
    stream: TcpStream,
    client_id: StrBytes,
    correlation: i32,
}

impl KafkaClient {
    pub async fn connect(address: &str, client_id: &str, timeout: Duration) -> Result<KafkaClient, ClientError> {
        let io = |source| ClientError::Io {
            address: address.to_string(),
            source,
        };
        let addr: std::net::SocketAddr = std::net::ToSocketAddrs::to_socket_addrs(address)
            .map_err(io)?
            .next()
            .ok_or_else(|| ClientError::Protocol {
                address: address.to_string(),
                reason: "resolves to nothing".into(),
            })?;
        let stream = TcpStream::connect_timeout(addr, timeout)
            .await
            .map_err(|e| io(std::io::Error::other(e.to_string())))?;
        stream
            .set_nodelay(true)
            .map_err(|e| io(std::io::Error::other(e.to_string())))?;
        Ok(KafkaClient {
            address: address.to_string(),
            stream,
            client_id: StrBytes::from_string(client_id.to_string()),
            correlation: 0,
        })
    }

    /// Sends `request` as `key` at `version` and decodes its answer, within `timeout`.
    pub async fn call<Q: Encodable, R: Decodable>(
        &mut self,
        key: ApiKey,
        version: i16,
        request: &Q,
        timeout: Duration,
    ) -> Result<R, ClientError> {
        let address = self.address.clone();
        match crate::runtime::timeout(timeout, self.exchange(key, version, request)).await {
            Some(answer) => answer,
            None => Err(ClientError::Timeout { address, timeout }),
        }
    }

    async fn exchange<Q: Encodable, R: Decodable>(
        &mut self,
        key: ApiKey,
        version: i16,
        request: &Q,
    ) -> Result<R, ClientError> {
        let protocol = |reason: String| ClientError::Protocol {
            address: self.address.clone(),
            reason,
        };
        self.correlation = self.correlation.wrapping_add(1);
        let correlation = self.correlation;
        let mut body = BytesMut::new();
        RequestHeader::default()
            .with_request_api_key(key as i16)
            .with_request_api_version(version)
            .with_correlation_id(correlation)
            .with_client_id(Some(self.client_id.clone()))
            .encode(&mut body, key.request_header_version(version))
            .map_err(|e| protocol(format!("encoding the header: {e}")))?;
        request
            .encode(&mut body, version)
            .map_err(|e| protocol(format!("encoding {key:?} v{version}: {e}")))?;
        let mut frame = Vec::with_capacity(4 + body.len());
        frame.extend_from_slice(&(body.len() as u32).to_be_bytes());
        frame.extend_from_slice(&body);
        let io = |source| ClientError::Io {
            address: self.address.clone(),
            source,
        };
        self.stream.write_all(&frame).await.map_err(io)?;
        let mut length = [0u8; 4];
        self.stream.read_exact(&mut length).await.map_err(io)?;
        let length = i32::from_be_bytes(length);
        if length < 0 || length as usize > RESPONSE_BYTES_MAX {
            return Err(protocol(format!("a response of {length} bytes")));
        }
        let mut answer = vec![0u8; length as usize];
        self.stream.read_exact(&mut answer).await.map_err(io)?;
        let mut answer = Bytes::from(answer);
        let header = ResponseHeader::decode(&mut answer, key.response_header_version(version))
            .map_err(|e| protocol(format!("decoding the response header: {e}")))?;
        if header.correlation_id != correlation {
            return Err(protocol(format!(
                "answer to request {} where {correlation} was expected",
                header.correlation_id
            )));
        }
        R::decode(&mut answer, version).map_err(|e| protocol(format!("decoding {key:?} v{version}: {e}")))
    }
}
