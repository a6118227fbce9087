//! Accepting connections on one shard.

use std::rc::Rc;
use std::time::Duration;

use glommio::net::TcpListener;

use crate::metrics::ShardMetrics;
use crate::shard::Shard;

/// Pause after a failed accept (e.g. out of descriptors) so a persistent failure does not spin.
const ACCEPT_RETRY_DELAY: Duration = Duration::from_millis(50);

/// Accepts until the task is dropped at shutdown; each connection runs as its own task.
pub async fn accept_loop(shard: Rc<Shard>, listener: TcpListener) {
    loop {
        match listener.accept().await {
            Ok(stream) => {
                if let Ok(peer) = stream.peer_addr() {
                    tracing::debug!("shard {} accepted a connection from {peer}", shard.id);
                }
                ShardMetrics::add(&shard.metrics.connections_accepted, 1);
                ShardMetrics::add(&shard.metrics.connections_open, 1);
                if let Err(e) = stream.set_nodelay(true) {
                    tracing::debug!("set_nodelay: {e}");
                }
                glommio::spawn_local(crate::net::connection::serve(shard.clone(), stream)).detach();
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
