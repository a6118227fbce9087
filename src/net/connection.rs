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
//! Memory: a frame's buffer grows as its body arrives, and every byte of it is first taken
//! from the shard's request budget (`queued.max.request.bytes`, shared by all the shard's
//! connections), given back once the request is answered. A client that announces a large
//! frame and sends nothing costs nothing; one that sends part of a body holds only what it
//! sent, and only until `request.frame.timeout.ms`.
//!
//! Limits: a frame over [`FRAME_BYTES_MAX`](crate::constants::FRAME_BYTES_MAX) (or
//! `socket.request.max.bytes`) closes the connection before its body is read; at most
//! [`CONNECTION_IN_FLIGHT_REQUESTS_MAX`] requests and [`CONNECTION_IN_FLIGHT_BYTES_MAX`] request
//! bytes are in flight, beyond which reading waits; a connection with nothing in flight that
//! sends nothing for `connections.max.idle.ms` is closed, and so is one whose answers cannot
//! be written for as long. An answer ready at once (every request but produce) counts against
//! the connection's in-flight bytes in place of its request until it is written.
//!
//! On a TLS listener the connection first completes its TLS handshake (within
//! `request.frame.timeout.ms`; a client that speaks plaintext fails it and is closed), then
//! runs the same way over the TLS stream; its responses go through rustls (copied into TLS
//! records) instead of straight from their buffers with `sendmsg`.

use std::cell::Cell;
use std::future::Future;
use std::io::IoSlice;
use std::os::fd::{AsRawFd, BorrowedFd, RawFd};
use std::pin::pin;
use std::rc::Rc;
use std::task::Poll;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::future::Either;
use futures::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWriteExt, BufReader};
use futures::FutureExt;
use glommio::channels::local_channel::{self, LocalReceiver, LocalSender};
use glommio::net::TcpStream;
use glommio::sync::Semaphore;

use crate::constants::{
    CONNECTION_IN_FLIGHT_BYTES_MAX, CONNECTION_IN_FLIGHT_REQUESTS_MAX, CONNECTION_READ_BUFFER_BYTES,
};
use crate::kafka::context::{Principal, Session};
use crate::kafka::frame::ResponseFrame;
use crate::kafka::{self, Handled};
use crate::metrics::{ShardMetrics, Stage};
use crate::net::request_memory::{ArrivingFrame, GrowFailed, Reservation};
use crate::net::ShardConnections;
use crate::node::{BoundListener, Shard};

/// A TLS connection's stream.
type TlsStream = futures_rustls::server::TlsStream<TcpStream>;

/// A handled request waiting for its response to be written, in the order it arrived.
struct InFlight {
    handled: Handled,
    /// A produce request, whose response write counts as its last stage.
    produce: bool,
    /// The frame's share of the connection's and the shard's budgets, returned when dropped
    /// (after the response is written).
    _held: [Reservation; 2],
}

/// Responses already answered go out together, in one vectored send, while they add up to
/// less than this; the requests they answer hold their budget until the send completes.
const RESPONSE_GATHER_BYTES_MAX: usize = 1024 * 1024;
/// Most buffers one vectored send passes (Linux's `IOV_MAX`).
const SEND_PIECES_MAX: usize = 1024;
/// Most a direct read of a large frame's body asks for at once (and so zeroes first).
const DIRECT_READ_CHUNK_BYTES: usize = 1024 * 1024;

/// Why a connection ended early.
enum Closed {
    /// The client sent something that ends its connection (logged, rate-limited).
    Refused(String),
    /// Idle past `connections.max.idle.ms`, or a frame that stopped arriving.
    TimedOut(String),
    /// The socket failed or the peer went away mid-frame.
    Io(String),
    /// The broker side stopped (writer gone, budget closed at shutdown).
    Internal(String),
}

pub async fn serve(shard: Rc<Shard>, shared: Rc<ShardConnections>, bound: Rc<BoundListener>, stream: TcpStream) {
    let peer = stream
        .peer_addr()
        .map_or_else(|_| "unknown peer".to_string(), |a| a.to_string());
    match &bound.tls {
        None => {
            let session = Session::on(&bound.name, peer, Principal::anonymous(), bound.protocol.sasl());
            let socket = stream.as_raw_fd();
            let (reader, writer) = stream.split();
            let writer = ResponseWriter::Plain(ResponseSocket { half: writer, socket });
            run(&shard, &shared, &session, reader, writer).await;
        }
        Some(tls) => {
            let deadline = Instant::now() + Duration::from_millis(shard.config.request_frame_timeout_ms);
            let acceptor = futures_rustls::TlsAcceptor::from(tls.clone());
            let stream = match within(deadline, acceptor.accept(stream)).await {
                Ok(Ok(stream)) => stream,
                Ok(Err(e)) => {
                    ShardMetrics::add(&shard.metrics.connection_errors, 1);
                    shard.metrics.authentication_failed(crate::metrics::NO_API, &bound.name);
                    shared.error_log.info(&format!(
                        "shard {}: closing connection from {peer} on {}: TLS handshake failed: {e}",
                        shard.id, bound.name
                    ));
                    shard.metrics.connection_closed();
                    return;
                }
                Err(()) => {
                    ShardMetrics::add(&shard.metrics.connections_timed_out, 1);
                    tracing::debug!(
                        "shard {}: closing connection from {peer} on {}: no TLS handshake within request.frame.timeout.ms",
                        shard.id,
                        bound.name
                    );
                    shard.metrics.connection_closed();
                    return;
                }
            };
            let principal = stream
                .get_ref()
                .1
                .peer_certificates()
                .and_then(|chain| chain.first())
                .and_then(crate::net::tls::subject_name)
                .map_or_else(Principal::anonymous, |subject| Principal::user(&subject));
            tracing::debug!(
                "shard {}: TLS connection from {peer} on {} as {principal}",
                shard.id,
                bound.name
            );
            let session = Session::on(&bound.name, peer, principal, bound.protocol.sasl());
            let (reader, writer) = stream.split();
            run(&shard, &shared, &session, reader, ResponseWriter::Tls(writer)).await;
        }
    }
    shard.metrics.connection_closed();
}

/// Serves one connection (over plaintext or TLS) until it ends.
async fn run<R: AsyncRead + Unpin>(
    shard: &Rc<Shard>,
    shared: &ShardConnections,
    session: &Session,
    reader: R,
    writer: ResponseWriter,
) {
    let peer = session.peer.as_str();
    let budget = Rc::new(Semaphore::new(CONNECTION_IN_FLIGHT_BYTES_MAX as u64));
    let in_flight = Rc::new(Cell::new(0usize));
    let (queue, pending) = local_channel::new_bounded(CONNECTION_IN_FLIGHT_REQUESTS_MAX);
    let writer_task = crate::runtime::spawn(write_responses(
        writer,
        pending,
        in_flight.clone(),
        peer.to_string(),
        shard.clone(),
    ));
    let reader = BufReader::with_capacity(CONNECTION_READ_BUFFER_BYTES, reader);
    let connection = Connection {
        shard,
        shared,
        budget,
        in_flight,
        session,
    };
    match connection.read_requests(reader, queue).await {
        Ok(()) => {}
        Err(Closed::Refused(reason)) => {
            ShardMetrics::add(&shard.metrics.connection_errors, 1);
            shared
                .error_log
                .info(&format!("shard {}: closing connection from {peer}: {reason}", shard.id));
        }
        Err(Closed::TimedOut(reason)) => {
            ShardMetrics::add(&shard.metrics.connections_timed_out, 1);
            tracing::debug!("shard {}: closing connection from {peer}: {reason}", shard.id);
        }
        Err(Closed::Io(reason) | Closed::Internal(reason)) => {
            tracing::debug!("shard {}: connection from {peer} ended: {reason}", shard.id);
        }
    }
    writer_task.await;
}

struct Connection<'a> {
    shard: &'a Rc<Shard>,
    shared: &'a ShardConnections,
    /// This connection's in-flight request bytes.
    budget: Rc<Semaphore>,
    /// Requests read and not yet answered (shared with the writer).
    in_flight: Rc<Cell<usize>>,
    session: &'a Session,
}

impl Connection<'_> {
    /// Reads frames until the peer closes or sends something that ends the connection.
    async fn read_requests<R: AsyncRead + Unpin>(
        &self,
        mut reader: BufReader<R>,
        queue: LocalSender<InFlight>,
    ) -> Result<(), Closed> {
        let config = &self.shard.config;
        let idle = Duration::from_millis(config.connections_max_idle_ms);
        let frame_timeout = Duration::from_millis(config.request_frame_timeout_ms);
        loop {
            let Some(length) = self.read_length(&mut reader, idle).await? else {
                return Ok(());
            };
            let frame_max = config.socket_request_max_bytes;
            if length < 0 || length as u64 > frame_max {
                return Err(Closed::Refused(format!(
                    "frame of {length} bytes is outside 0..={frame_max} (socket.request.max.bytes)"
                )));
            }
            let frame_bytes = length as usize;
            ShardMetrics::add(&self.shard.metrics.bytes_in, 4 + frame_bytes as u64);
            let frame_started = Instant::now();
            let deadline = frame_started + frame_timeout;
            let mut connection_share = Reservation::empty(&self.budget);
            within(deadline, connection_share.grow(frame_bytes as u64))
                .await
                .map_err(|_| Closed::TimedOut("responses did not drain within request.frame.timeout.ms".into()))?
                .map_err(Closed::Internal)?;
            let (frame, shard_share) = self.read_frame(&mut reader, frame_bytes, deadline).await?;
            let produce = kafka::is_produce(&frame);
            if produce {
                self.shard.metrics.stage(Stage::Read, frame_started.elapsed());
            }
            let handled = kafka::handle_frame(self.shard, frame, self.session).await;
            let closing = match &handled {
                Handled::Ready(Err(reason)) => Some(reason.to_string()),
                // The response is sent, then the connection closes (a failed SASL login).
                _ => self.session.close_after.borrow_mut().take(),
            };
            let mut held = [connection_share, shard_share];
            if let Handled::Ready(Ok(Some(response))) = &handled {
                // A request answered at once no longer needs its frame: its answer's bytes
                // count against the connection instead, so a client that pipelines fetches
                // and never reads the answers stops being read once they add up.
                let answer_bytes = (response.len() as u64).min(CONNECTION_IN_FLIGHT_BYTES_MAX as u64);
                held = [
                    Reservation::empty(&self.budget),
                    Reservation::empty(&self.shared.request_memory.budget),
                ];
                held[0].grow(answer_bytes).await.map_err(Closed::Internal)?;
            }
            self.in_flight.set(self.in_flight.get() + 1);
            let in_flight = InFlight {
                handled,
                produce,
                _held: held,
            };
            if queue.send(in_flight).await.is_err() {
                return Err(Closed::Internal("writer stopped".into()));
            }
            if let Some(reason) = closing {
                return Err(Closed::Refused(reason));
            }
        }
    }

    /// The next frame's length; None when the peer closed between frames. While requests are
    /// in flight the connection is not idle, however long they take.
    async fn read_length<R: AsyncRead + Unpin>(
        &self,
        reader: &mut BufReader<R>,
        idle: Duration,
    ) -> Result<Option<i32>, Closed> {
        let mut length = [0u8; 4];
        let mut read = pin!(reader.read_exact(&mut length));
        let outcome = loop {
            if let Poll::Ready(outcome) = futures::poll!(read.as_mut()) {
                break outcome;
            }
            match futures::future::select(read.as_mut(), pin!(glommio::timer::sleep(idle))).await {
                Either::Left((outcome, _)) => break outcome,
                Either::Right(_) if self.in_flight.get() > 0 => continue,
                Either::Right(_) => {
                    return Err(Closed::TimedOut(format!(
                        "idle for {} ms (connections.max.idle.ms)",
                        idle.as_millis()
                    )))
                }
            }
        };
        match outcome {
            Ok(()) => Ok(Some(i32::from_be_bytes(length))),
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Ok(None),
            Err(e) => Err(Closed::Io(format!("read: {e}"))),
        }
    }

    /// Reads a frame body of `length` bytes. The buffer grows only as bytes arrive (doubling,
    /// never past `length`), and each growth is first taken from the shard's request memory,
    /// where the frame is registered while it arrives (and may be evicted for frames within
    /// their share when it holds more than its own); the whole frame must arrive by
    /// `deadline`. Small frames come through the connection's read buffer; once a large
    /// frame's body is flowing, it is read straight into the frame.
    async fn read_frame<R: AsyncRead + Unpin>(
        &self,
        reader: &mut BufReader<R>,
        length: usize,
        deadline: Instant,
    ) -> Result<(Bytes, Reservation), Closed> {
        let interrupted = |why: Interrupt| match why {
            Interrupt::Deadline => Closed::TimedOut(format!(
                "a frame of {length} bytes did not arrive within request.frame.timeout.ms"
            )),
            Interrupt::Evicted => Closed::TimedOut(format!(
                "a frame of {length} bytes was evicted: it held more than its share of queued.max.request.bytes \
                 while others waited"
            )),
        };
        let truncated = |filled: usize| Closed::Io(format!("truncated frame: {filled} of {length} bytes arrived"));
        let io = |e: std::io::Error| Closed::Io(format!("reading a frame of {length} bytes: {e}"));
        let mut arriving = self.shared.request_memory.arriving();
        // `allocated` is what the frame's buffer holds (and the budget gave). Bytes are
        // appended as they come, so nothing is zeroed first except where a direct read is
        // about to land.
        let mut frame: Vec<u8> = Vec::new();
        let mut allocated = 0usize;
        // Bytes arrived. `frame.len()` may run ahead of it: zeroed bytes a direct read has yet
        // to fill, kept so that no byte is zeroed twice.
        let mut filled = 0usize;
        while filled < length {
            let buffered = reader.buffer().len();
            if buffered == 0 && filled > 0 && length - filled >= CONNECTION_READ_BUFFER_BYTES {
                if allocated == filled {
                    allocated = self
                        .grow(&mut frame, &mut arriving, allocated, filled + 1, length, deadline)
                        .await
                        .map_err(|e| e.unwrap_or_else(&interrupted))?;
                }
                // A read needs initialised bytes: the next chunk only, not the whole frame.
                let chunk_end = (filled + DIRECT_READ_CHUNK_BYTES).min(allocated);
                if frame.len() < chunk_end {
                    frame.resize(chunk_end, 0);
                }
                let read = until(
                    deadline,
                    &mut arriving.evicted,
                    reader.read(&mut frame[filled..chunk_end]),
                );
                let read = match read.await {
                    Ok(Ok(read)) => read,
                    Ok(Err(e)) => return Err(io(e)),
                    Err(why) => return Err(interrupted(why)),
                };
                if read == 0 {
                    return Err(truncated(filled));
                }
                filled += read;
                arriving.progressed();
                continue;
            }
            // Buffered bytes are appended: drop any zeroes a direct read left unfilled.
            frame.truncate(filled);
            let available = if buffered > 0 {
                buffered
            } else {
                until(deadline, &mut arriving.evicted, reader.fill_buf())
                    .await
                    .map_err(interrupted)?
                    .map_err(io)?
                    .len()
            };
            if available == 0 {
                return Err(truncated(filled));
            }
            let take = available.min(length - filled);
            if allocated - filled < take {
                allocated = self
                    .grow(&mut frame, &mut arriving, allocated, filled + take, length, deadline)
                    .await
                    .map_err(|e| e.unwrap_or_else(&interrupted))?;
            }
            frame.extend_from_slice(&reader.buffer()[..take]);
            reader.consume_unpin(take);
            filled += take;
            arriving.progressed();
        }
        assert_eq!(frame.len(), length, "a whole frame arrived, with no zeroes past it");
        debug_assert_eq!(allocated, length, "a whole frame fills its buffer exactly");
        Ok((Bytes::from(frame), arriving.arrived()))
    }

    /// Grows `frame`'s buffer from `allocated` to at least `needed` bytes (doubling, at most
    /// `length`), taking the growth from the shard's request memory first; the new size.
    async fn grow(
        &self,
        frame: &mut Vec<u8>,
        arriving: &mut ArrivingFrame,
        allocated: usize,
        needed: usize,
        length: usize,
        deadline: Instant,
    ) -> Result<usize, Result<Closed, Interrupt>> {
        let size = (allocated * 2)
            .max(needed)
            .max(CONNECTION_READ_BUFFER_BYTES)
            .min(length);
        let growth = (size - allocated) as u64;
        if self.shared.request_memory.budget.available() < growth {
            ShardMetrics::add(&self.shard.metrics.request_budget_waits, 1);
        }
        match within(deadline, arriving.grow(growth)).await {
            Err(()) => return Err(Err(Interrupt::Deadline)),
            Ok(Err(GrowFailed::Evicted)) => return Err(Err(Interrupt::Evicted)),
            Ok(Err(GrowFailed::Closed(reason))) => return Err(Ok(Closed::Internal(reason))),
            Ok(Ok(())) => {}
        }
        frame.reserve_exact(size - frame.len());
        Ok(size)
    }
}

/// What cut a frame's read short.
enum Interrupt {
    Deadline,
    Evicted,
}

/// Runs `work` until `deadline` or until the frame is evicted, whichever comes first.
async fn until<T>(
    deadline: Instant,
    evicted: &mut futures::channel::oneshot::Receiver<()>,
    work: impl Future<Output = T>,
) -> Result<T, Interrupt> {
    match within(deadline, futures::future::select(pin!(work), evicted)).await {
        Err(()) => Err(Interrupt::Deadline),
        Ok(Either::Left((value, _))) => Ok(value),
        Ok(Either::Right(_)) => Err(Interrupt::Evicted),
    }
}

/// Runs `work` until `deadline`; Err(()) if it passes first. Work that is ready at once
/// costs no timer.
async fn within<T>(deadline: Instant, work: impl Future<Output = T>) -> Result<T, ()> {
    let mut work = pin!(work);
    if let Poll::Ready(value) = futures::poll!(work.as_mut()) {
        return Ok(value);
    }
    let remaining = deadline.saturating_duration_since(Instant::now());
    match futures::future::select(work, pin!(glommio::timer::sleep(remaining))).await {
        Either::Left((value, _)) => Ok(value),
        Either::Right(_) => Err(()),
    }
}

/// Writes each request's response in arrival order; stops at the first request that closes
/// the connection, or when the reader is done and everything is answered. Responses already
/// answered behind the one being written go out with it in one vectored send (while they add
/// up to less than [`RESPONSE_GATHER_BYTES_MAX`]), so a pipelining client's answers cost one
/// send, not one each, and a fetch's stored batches go out without being copied.
async fn write_responses(
    mut writer: ResponseWriter,
    pending: LocalReceiver<InFlight>,
    in_flight: Rc<Cell<usize>>,
    peer: String,
    shard: Rc<Shard>,
) {
    let write_timeout = Duration::from_millis(shard.config.connections_max_idle_ms);
    // A request taken from the queue whose answer was not ready yet: the next to write.
    let mut head: Option<InFlight> = None;
    'requests: loop {
        let request = match head.take() {
            Some(request) => request,
            None => match pending.recv().await {
                Some(request) => request,
                None => break,
            },
        };
        let outcome = match request.handled {
            Handled::Ready(outcome) => outcome,
            Handled::Later(outcome) => outcome.await,
        };
        in_flight.set(in_flight.get() - 1);
        let mut closing = false;
        // The responses to send now, whether each is a produce's, and what they hold.
        let mut batch: Vec<(ResponseFrame, bool)> = Vec::new();
        let mut held = vec![request._held];
        match outcome {
            Ok(Some(response)) => batch.push((response, request.produce)),
            Ok(None) => {}
            // The reader has the reason too and logs it once, rate-limited.
            Err(_) => break,
        }
        while !closing && batch.iter().map(|(r, _)| r.len()).sum::<usize>() < RESPONSE_GATHER_BYTES_MAX {
            let Some(Some(next)) = pending.recv().now_or_never() else {
                break;
            };
            let outcome = match next.handled {
                Handled::Ready(outcome) => outcome,
                Handled::Later(mut later) => match (&mut later).now_or_never() {
                    Some(outcome) => outcome,
                    None => {
                        head = Some(InFlight {
                            handled: Handled::Later(later),
                            ..next
                        });
                        break;
                    }
                },
            };
            in_flight.set(in_flight.get() - 1);
            held.push(next._held);
            match outcome {
                Ok(Some(response)) => batch.push((response, next.produce)),
                Ok(None) => {}
                Err(_) => closing = true,
            }
        }
        if !batch.is_empty() {
            let started = Instant::now();
            let bytes: u64 = batch.iter().map(|(r, _)| r.len() as u64).sum();
            ShardMetrics::add(&shard.metrics.bytes_out, bytes);
            // A client that stops reading its answers is closed after the idle timeout
            // rather than holding its connection (and what it has in flight) forever.
            let pieces: Vec<&Bytes> = batch.iter().flat_map(|(response, _)| response.pieces()).collect();
            match within(started + write_timeout, writer.send_all(&pieces, &shard.metrics)).await {
                Ok(Ok(())) => {
                    for _ in batch.iter().filter(|(_, produce)| *produce) {
                        shard.metrics.stage(Stage::ResponseWrite, started.elapsed());
                    }
                }
                Ok(Err(e)) => {
                    tracing::debug!("write to {peer}: {e}");
                    break 'requests;
                }
                Err(()) => {
                    ShardMetrics::add(&shard.metrics.connections_timed_out, 1);
                    tracing::debug!("write to {peer}: no progress within connections.max.idle.ms");
                    break 'requests;
                }
            }
        }
        drop(held);
        if closing {
            break;
        }
    }
    writer.close().await;
}

/// Where a connection's responses go: the plain socket (vectored sends straight from the
/// responses' buffers) or the TLS stream.
enum ResponseWriter {
    Plain(ResponseSocket),
    Tls(futures::io::WriteHalf<TlsStream>),
}

impl ResponseWriter {
    async fn send_all(&mut self, pieces: &[&Bytes], metrics: &ShardMetrics) -> std::io::Result<()> {
        match self {
            ResponseWriter::Plain(socket) => socket.send_all(pieces, metrics).await,
            ResponseWriter::Tls(half) => {
                for piece in pieces {
                    half.write_all(piece).await?;
                }
                half.flush().await
            }
        }
    }

    async fn close(&mut self) {
        let _ = match self {
            ResponseWriter::Plain(socket) => socket.half.close().await,
            ResponseWriter::Tls(half) => half.close().await,
        };
    }
}

/// The connection's writing half, and its socket for vectored sends.
struct ResponseSocket {
    half: futures::io::WriteHalf<TcpStream>,
    /// The stream's descriptor: open while `half` (which shares the stream) exists.
    socket: RawFd,
}

impl ResponseSocket {
    /// Sends `pieces` in order. glommio's stream has no vectored write, so the pieces go out
    /// with `sendmsg` straight on the socket, without waiting (as glommio's own write first
    /// tries); when the socket's buffer is full, one ordinary write through glommio waits
    /// until it takes bytes again. Both write to the same socket in turn, so order holds.
    async fn send_all(&mut self, pieces: &[&Bytes], metrics: &ShardMetrics) -> std::io::Result<()> {
        let mut index = 0;
        // Bytes of pieces[index] already sent.
        let mut sent_of_piece = 0;
        while index < pieces.len() {
            if sent_of_piece == pieces[index].len() {
                index += 1;
                sent_of_piece = 0;
                continue;
            }
            let slices: Vec<IoSlice<'_>> = std::iter::once(&pieces[index][sent_of_piece..])
                .chain(pieces[index + 1..].iter().map(|piece| &piece[..]))
                .filter(|slice| !slice.is_empty())
                .take(SEND_PIECES_MAX)
                .map(IoSlice::new)
                .collect();
            let mut sent = match self.send_now(&slices) {
                Ok(sent) => sent,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    ShardMetrics::add(&metrics.response_send_waits, 1);
                    match self.half.write(&pieces[index][sent_of_piece..]).await? {
                        0 => return Err(std::io::ErrorKind::WriteZero.into()),
                        sent => sent,
                    }
                }
                Err(e) => return Err(e),
            };
            while sent > 0 {
                let left = pieces[index].len() - sent_of_piece;
                if sent < left {
                    sent_of_piece += sent;
                    break;
                }
                sent -= left;
                index += 1;
                sent_of_piece = 0;
            }
        }
        Ok(())
    }

    /// One `sendmsg` of `slices` that does not wait: what the socket took, or WouldBlock.
    fn send_now(&self, slices: &[IoSlice<'_>]) -> std::io::Result<usize> {
        // SAFETY: `socket` is the descriptor of the stream `half` shares, which stays open
        // while `self` exists; the borrow lives only for this call.
        let socket = unsafe { BorrowedFd::borrow_raw(self.socket) };
        socket2::SockRef::from(&socket).send_vectored_with_flags(slices, libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL)
    }
}
