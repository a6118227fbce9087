//! One client connection: frames in, pipelined handling, responses out in request order.
//!
//! The reader reads a 4-byte big-endian length and then the frame into one buffer, frozen to
//! `Bytes` so produce records are slices of it. Requests of one connection are handled one
//! after another, as Kafka does: producers with several requests in flight rely on the broker
//! appending them in the order sent, which concurrent handling would not guarantee. Only a
//! produce's wait for durability (acks=all) is left to the writer: the request has been
//! appended, in order, when the reader moves on, so pipelined produce requests share flushes.
//! A separate writer task sends responses, in request order, while later requests are handled.
//!
//! Limits: a frame over [`FRAME_BYTES_MAX`](crate::constants::FRAME_BYTES_MAX) (or
//! `socket.request.max.bytes`) closes the connection before its body is read; at most
//! [`CONNECTION_IN_FLIGHT_REQUESTS_MAX`] requests and [`CONNECTION_IN_FLIGHT_BYTES_MAX`] request
//! bytes are in flight, beyond which reading waits.

use std::rc::Rc;

use bytes::{Bytes, BytesMut};
use futures::io::{AsyncReadExt, AsyncWriteExt, BufReader};
use glommio::channels::local_channel::{self, LocalReceiver, LocalSender};
use glommio::net::TcpStream;
use glommio::sync::Semaphore;

use crate::constants::{CONNECTION_IN_FLIGHT_BYTES_MAX, CONNECTION_IN_FLIGHT_REQUESTS_MAX};
use crate::kafka::{self, Handled};
use crate::metrics::ShardMetrics;
use crate::shard::Shard;

/// A handled request waiting for its response to be written, in the order it arrived.
struct InFlight {
    handled: Handled,
    frame_bytes: u64,
}

const READ_BUFFER_BYTES: usize = 64 * 1024;

pub async fn serve(shard: Rc<Shard>, stream: TcpStream) {
    let peer = stream
        .peer_addr()
        .map_or_else(|_| "unknown peer".to_string(), |a| a.to_string());
    let (reader, writer) = stream.split();
    let budget = Rc::new(Semaphore::new(CONNECTION_IN_FLIGHT_BYTES_MAX as u64));
    let (queue, pending) = local_channel::new_bounded(CONNECTION_IN_FLIGHT_REQUESTS_MAX);
    let writer_task = glommio::spawn_local(write_responses(
        writer,
        pending,
        budget.clone(),
        peer.clone(),
        shard.metrics.clone(),
    ));
    let reader = BufReader::with_capacity(READ_BUFFER_BYTES, reader);
    if let Err(reason) = read_requests(&shard, reader, queue, &budget, &peer).await {
        tracing::debug!("shard {}: closing connection from {peer}: {reason}", shard.id);
    }
    writer_task.await;
    shard.metrics.connection_closed();
}

/// Reads frames until the peer closes or sends something that ends the connection.
async fn read_requests(
    shard: &Rc<Shard>,
    mut reader: BufReader<futures::io::ReadHalf<TcpStream>>,
    queue: LocalSender<InFlight>,
    budget: &Rc<Semaphore>,
    peer: &str,
) -> Result<(), String> {
    loop {
        let mut length = [0u8; 4];
        match reader.read_exact(&mut length).await {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(()),
            Err(e) => return Err(format!("read: {e}")),
        }
        let length = i32::from_be_bytes(length);
        let frame_max = shard.config.socket_request_max_bytes;
        if length < 0 || length as u64 > frame_max {
            return Err(format!(
                "frame of {length} bytes is outside 0..={frame_max} (socket.request.max.bytes)"
            ));
        }
        let frame_bytes = length as u64;
        ShardMetrics::add(&shard.metrics.bytes_in, 4 + frame_bytes);
        budget
            .acquire(frame_bytes)
            .await
            .map_err(|e| format!("in-flight budget: {e}"))?;
        let mut frame = BytesMut::zeroed(length as usize);
        if let Err(e) = reader.read_exact(&mut frame).await {
            return Err(format!("truncated frame of {length} bytes: {e}"));
        }
        let handled = kafka::handle_frame(shard, frame.freeze(), peer).await;
        let closing = match &handled {
            Handled::Ready(Err(reason)) => Some(reason.clone()),
            _ => None,
        };
        if queue.send(InFlight { handled, frame_bytes }).await.is_err() {
            return Err("writer stopped".into());
        }
        if let Some(reason) = closing {
            return Err(reason);
        }
    }
}

/// Writes each request's response in arrival order; stops at the first request that closes
/// the connection, or when the reader is done and everything is answered.
async fn write_responses(
    mut writer: futures::io::WriteHalf<TcpStream>,
    pending: LocalReceiver<InFlight>,
    budget: Rc<Semaphore>,
    peer: String,
    metrics: Rc<ShardMetrics>,
) {
    while let Some(in_flight) = pending.recv().await {
        budget.signal(in_flight.frame_bytes);
        let outcome = match in_flight.handled {
            Handled::Ready(outcome) => outcome,
            Handled::Later(outcome) => outcome.await,
        };
        match outcome {
            Ok(Some(response)) => {
                ShardMetrics::add(&metrics.bytes_out, response.len() as u64);
                if let Err(e) = write_frame(&mut writer, &response).await {
                    tracing::debug!("write to {peer}: {e}");
                    break;
                }
            }
            Ok(None) => {}
            Err(reason) => {
                tracing::info!("closing connection from {peer}: {reason}");
                break;
            }
        }
    }
    let _ = writer.close().await;
}

async fn write_frame(writer: &mut futures::io::WriteHalf<TcpStream>, response: &Bytes) -> std::io::Result<()> {
    writer.write_all(response).await?;
    writer.flush().await
}
