//! Accepting connections on one shard.

use std::rc::Rc;
use std::time::Duration;

use glommio::net::TcpListener;

use crate::metrics::ShardMetrics;
use crate::net::ShardConnections;
use crate::node::{BoundListener, Shard};

/// Pause after a failed accept (e.g. out of descriptors) so a persistent failure does not spin.
const ACCEPT_RETRY_DELAY: Duration = Duration::from_millis(50);

/// Binds `bound`'s address (SO_REUSEPORT, as every shard does) and accepts on it until the
/// returned task is dropped at shutdown.
pub fn listen(
    shard: Rc<Shard>,
    shared: Rc<ShardConnections>,
    bound: Rc<BoundListener>,
) -> Result<crate::runtime::Task<()>, String> {
    let addr = bound.addr;
    let listener = bind(addr).map_err(|e| format!("binding {} {addr}: {e}", bound.name))?;
    Ok(crate::runtime::spawn(accept_loop(shard, shared, bound, listener)))
}

/// A listening socket with SO_REUSEPORT (every shard binds the port) and SO_REUSEADDR: the
/// connections it accepts inherit the flag, so those left in TIME_WAIT by a crash do not keep
/// the next broker process off its own port.
fn bind(addr: std::net::SocketAddr) -> std::io::Result<TcpListener> {
    use std::os::fd::IntoRawFd as _;
    let socket = socket2::Socket::new(
        socket2::Domain::for_address(addr),
        socket2::Type::STREAM,
        Some(socket2::Protocol::TCP),
    )?;
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(true)?;
    socket.bind(&addr.into())?;
    socket.listen(1024)?;
    // SAFETY: the descriptor is a bound, listening TCP socket this function owns; ownership
    // passes to the listener.
    Ok(unsafe { std::os::fd::FromRawFd::from_raw_fd(socket.into_raw_fd()) })
}

/// Accepts until the task is dropped at shutdown; each connection runs as its own task.
async fn accept_loop(shard: Rc<Shard>, shared: Rc<ShardConnections>, bound: Rc<BoundListener>, listener: TcpListener) {
    loop {
        match listener.accept().await {
            Ok(stream) => {
                if let Ok(peer) = stream.peer_addr() {
                    tracing::debug!("shard {} accepted a connection from {peer} on {}", shard.id, bound.name);
                }
                ShardMetrics::add(&shard.metrics.connections_accepted, 1);
                ShardMetrics::add(&shard.metrics.connections_open, 1);
                if let Err(e) = stream.set_nodelay(true) {
                    tracing::debug!("set_nodelay: {e}");
                }
                glommio::spawn_local(crate::net::connection::serve(
                    shard.clone(),
                    shared.clone(),
                    bound.clone(),
                    stream,
                ))
                .detach();
            }
            Err(e) => {
                // Running out of descriptors must not end the listener: retry after a pause,
                // by which time connections may have closed.
                tracing::warn!("shard {}: accept failed: {e}", shard.id);
                glommio::timer::sleep(ACCEPT_RETRY_DELAY).await;
            }
        }
    }
}
