//! Accepting connections on one shard.

use std::rc::Rc;

use glommio::net::TcpListener;

use crate::shard::Shard;

/// Accepts until the task is dropped at shutdown; each connection runs as its own task.
pub async fn accept_loop(shard: Rc<Shard>, listener: TcpListener) {
    loop {
        match listener.accept().await {
            Ok(stream) => {
                if let Ok(peer) = stream.peer_addr() {
                    tracing::debug!("shard {} accepted a connection from {peer}", shard.id);
                }
                if let Err(e) = stream.set_nodelay(true) {
                    tracing::debug!("set_nodelay: {e}");
                }
                glommio::spawn_local(crate::net::connection::serve(shard.clone(), stream)).detach();
            }
            Err(e) => {
                // Running out of descriptors must not end the listener; the next accept
                // retries once a connection closes.
                tracing::warn!("shard {}: accept failed: {e}", shard.id);
                glommio::yield_if_needed().await;
            }
        }
    }
}
