//! The Kafka protocol layer: frame → header → handler → response frame.
//!
//! [`handlers::APIS`] is the one table of what Sluice serves; ApiVersions is built from it.
//! Malformed input closes only the offending connection: an unknown API key, a version
//! outside the table, or a body that does not decode ends it (as Kafka does), except that
//! ApiVersions at an unknown version is answered with UNSUPPORTED_VERSION and the table
//! (KIP-511), so a newer client can retry with a version we know.

pub mod authorized;
pub mod frame;
pub mod handlers;
pub mod record_validate;
pub mod topic_ids;

use std::rc::Rc;

use bytes::{BufMut, Bytes, BytesMut};
use futures::future::LocalBoxFuture;
use kafka_protocol::messages::{ApiKey, RequestHeader, RequestKind, ResponseHeader, ResponseKind};
use kafka_protocol::protocol::{Decodable, Encodable};

use crate::shard::Shard;
use frame::{ResponseFrame, Splices};

/// What handling one frame produced: a response frame, nothing (acks=0 produce), or a
/// reason to close the connection after the responses before it.
pub type Outcome = Result<Option<ResponseFrame>, String>;

/// A frame's outcome now, or one that becomes ready later (a produce waiting for its records
/// to become durable); the connection writes them in request order either way.
pub enum Handled {
    Ready(Outcome),
    Later(LocalBoxFuture<'static, Outcome>),
}

struct FrameStart {
    api_key: i16,
    version: i16,
    correlation_id: i32,
}

fn frame_start(frame: &[u8]) -> Option<FrameStart> {
    (frame.len() >= 8).then(|| FrameStart {
        api_key: i16::from_be_bytes([frame[0], frame[1]]),
        version: i16::from_be_bytes([frame[2], frame[3]]),
        correlation_id: i32::from_be_bytes([frame[4], frame[5], frame[6], frame[7]]),
    })
}

/// Whether a frame will end its connection, judged from its header alone, so the reader
/// stops reading right away.
fn ends_connection(frame: &[u8]) -> Option<String> {
    let Some(start) = frame_start(frame) else {
        return Some(format!("frame of {} bytes has no request header", frame.len()));
    };
    match handlers::find(start.api_key) {
        None => Some(format!("unknown API key {}", start.api_key)),
        Some(api) if api.key == ApiKey::ApiVersions => None,
        Some(api) if !api.serves(start.version) => Some(format!(
            "{:?} v{} is not supported (served: v{}..=v{})",
            api.key, start.version, api.min_served, api.max
        )),
        Some(_) => None,
    }
}

/// Whether a frame is a Produce request (counted stage by stage, [`crate::metrics::Stage`]).
pub fn is_produce(frame: &[u8]) -> bool {
    frame_start(frame).is_some_and(|start| start.api_key == ApiKey::Produce as i16)
}

/// Decodes one request frame, runs its handler and encodes the response frame.
pub async fn handle_frame(shard: &Rc<Shard>, frame: Bytes, peer: &str) -> Handled {
    let api_key = frame_start(&frame).map(|start| start.api_key);
    let handled = handle(shard, frame, peer).await;
    if let (Handled::Ready(Err(_)), Some(key)) = (&handled, api_key) {
        shard.metrics.request(key);
        shard.metrics.request_error(key);
    }
    handled
}

async fn handle(shard: &Rc<Shard>, frame: Bytes, peer: &str) -> Handled {
    match decode_and_dispatch(shard, frame, peer).await {
        Ok(handled) => handled,
        Err(reason) => Handled::Ready(Err(reason)),
    }
}

/// A request frame (the bytes after its length prefix), decoded.
// `Request` is every request but one: boxing it to shrink the enum would allocate per request.
#[allow(clippy::large_enum_variant)]
pub enum Decoded {
    Request {
        api: handlers::Api,
        header: RequestHeader,
        request: RequestKind,
    },
    /// ApiVersions at a version we do not know: answered in v0 with our table (KIP-511).
    UnknownApiVersionsVersion { correlation_id: i32 },
}

/// Decodes one request frame: header, then body at the header's version, for the APIs and
/// versions [`handlers::APIS`] serves. Err is the reason to close the connection. Pure (no
/// shard, no I/O), so the fuzz target drives exactly what connections run.
pub fn decode_request(frame: Bytes) -> Result<Decoded, String> {
    if let Some(reason) = ends_connection(&frame) {
        return Err(reason);
    }
    let start = frame_start(&frame).expect("checked by ends_connection");
    let api = handlers::find(start.api_key).expect("checked by ends_connection");
    if !api.serves(start.version) {
        return Ok(Decoded::UnknownApiVersionsVersion {
            correlation_id: start.correlation_id,
        });
    }
    let mut body = frame;
    let header_version = api.key.request_header_version(start.version);
    let header = RequestHeader::decode(&mut body, header_version)
        .map_err(|e| format!("{:?} v{}: bad request header: {e}", api.key, start.version))?;
    let request = if topic_ids::by_topic_id(api.key, start.version) {
        topic_ids::decode(api.key, &mut body)
    } else {
        RequestKind::decode(api.key, &mut body, handlers::codec_version(api.key, start.version))
            .map_err(|e| e.to_string())
    }
    .map_err(|e| format!("{:?} v{}: malformed body: {e}", api.key, start.version))?;
    Ok(Decoded::Request { api, header, request })
}

async fn decode_and_dispatch(shard: &Rc<Shard>, frame: Bytes, peer: &str) -> Result<Handled, String> {
    let produce = is_produce(&frame);
    let frame_bytes = frame.len();
    let decoding = std::time::Instant::now();
    let decoded = decode_request(frame)?;
    if produce {
        shard.metrics.stage(crate::metrics::Stage::Decode, decoding.elapsed());
    }
    let (api, header, request) = match decoded {
        Decoded::Request { api, header, request } => (api, header, request),
        Decoded::UnknownApiVersionsVersion { correlation_id } => {
            let response = handlers::api_versions::unsupported_version();
            let frame = encode_response(
                ApiKey::ApiVersions,
                0,
                correlation_id,
                &ResponseKind::ApiVersions(response),
            );
            return Ok(Handled::Ready(frame.map(Some)));
        }
    };
    let started = std::time::Instant::now();
    let (key, version, correlation_id) = (api.key, header.request_api_version, header.correlation_id);
    let by_topic_id = topic_ids::by_topic_id(key, version);
    let finish = move |shard: &Shard, response: Option<ResponseKind>| {
        count(shard, key, response.as_ref(), started.elapsed());
        match response {
            Some(response) if by_topic_id => Ok(Some(frame_response(key, version, correlation_id, |frame| {
                topic_ids::encode_response(&response, &shard.metadata(), frame);
                Ok(())
            })?)),
            Some(response) => encode_response(key, version, correlation_id, &response).map(Some),
            None => Ok(None),
        }
    };
    let finish_spliced = move |shard: &Shard, response: ResponseKind, splices: Splices| {
        count(shard, key, Some(&response), started.elapsed());
        encode_spliced(key, version, correlation_id, &response, splices).map(Some)
    };
    // A v10 OffsetCommit or OffsetFetch is served as the v9 it is but for topic ids.
    let (header, request) = if by_topic_id {
        let mut request = request;
        topic_ids::resolve(&mut request, &shard.metadata());
        (header.with_request_api_version(topic_ids::BY_NAME), request)
    } else {
        (header, request)
    };
    Ok(
        match handlers::dispatch(shard, &header, request, frame_bytes, peer).await? {
            handlers::Dispatched::Now(response) => Handled::Ready(finish(shard, response)),
            handlers::Dispatched::Spliced(response, splices) => {
                Handled::Ready(finish_spliced(shard, response, splices))
            }
            handlers::Dispatched::Later(response) => {
                let shard = shard.clone();
                Handled::Later(Box::pin(async move { finish(&shard, response.await) }))
            }
        },
    )
}

/// Counts a handled request: per API, with its latency for Produce and Fetch, and as an error
/// when any of its partitions failed.
fn count(shard: &Shard, key: ApiKey, response: Option<&ResponseKind>, elapsed: std::time::Duration) {
    let metrics = &shard.metrics;
    metrics.request(key as i16);
    let failed = match response {
        Some(ResponseKind::Produce(r)) => r
            .responses
            .iter()
            .flat_map(|t| &t.partition_responses)
            .any(|p| p.error_code != 0),
        Some(ResponseKind::Fetch(r)) => {
            r.error_code != 0
                || r.responses
                    .iter()
                    .flat_map(|t| &t.partitions)
                    .any(|p| p.error_code != 0)
        }
        _ => false,
    };
    if failed {
        metrics.request_error(key as i16);
    }
    let micros = elapsed.as_micros() as u64;
    match key {
        ApiKey::Produce => metrics.produce_latency_us.observe(micros),
        ApiKey::Fetch => metrics.fetch_latency_us.observe(micros),
        _ => {}
    }
}

/// Length prefix, response header, body.
fn encode_response(
    key: ApiKey,
    version: i16,
    correlation_id: i32,
    response: &ResponseKind,
) -> Result<ResponseFrame, String> {
    frame_response(key, version, correlation_id, |frame| {
        response
            .encode(frame, handlers::codec_version(key, version))
            .map_err(|e| format!("encoding {key:?} v{version} response: {e}"))
    })
}

/// As [`encode_response`], with the stored record bytes of `splices` taken by reference
/// ([`frame`]); a response with none is encoded as one buffer.
fn encode_spliced(
    key: ApiKey,
    version: i16,
    correlation_id: i32,
    response: &ResponseKind,
    splices: Splices,
) -> Result<ResponseFrame, String> {
    if splices.is_empty() {
        return encode_response(key, version, correlation_id, response);
    }
    // Only a Fetch response carries records (and ResponseKind encodes into a BytesMut only).
    let ResponseKind::Fetch(fetch) = response else {
        return Err(format!(
            "{key:?} v{version}: records to splice into a response that has none"
        ));
    };
    frame::spliced_frame(
        |head| encode_header(key, version, correlation_id, head),
        splices,
        |body| {
            fetch
                .encode(body, handlers::codec_version(key, version))
                .map_err(|e| format!("encoding {key:?} v{version} response: {e}"))
        },
    )
}

fn encode_header(key: ApiKey, version: i16, correlation_id: i32, frame: &mut BytesMut) -> Result<(), String> {
    ResponseHeader::default()
        .with_correlation_id(correlation_id)
        .encode(frame, key.response_header_version(version))
        .map_err(|e| format!("encoding {key:?} response header: {e}"))
}

/// Length prefix, response header, then what `body` writes.
fn frame_response(
    key: ApiKey,
    version: i16,
    correlation_id: i32,
    body: impl FnOnce(&mut BytesMut) -> Result<(), String>,
) -> Result<ResponseFrame, String> {
    let mut frame = BytesMut::with_capacity(256);
    frame.put_i32(0);
    encode_header(key, version, correlation_id, &mut frame)?;
    body(&mut frame)?;
    let length = (frame.len() - 4) as i32;
    frame[..4].copy_from_slice(&length.to_be_bytes());
    Ok(ResponseFrame::whole(frame.freeze()))
}
