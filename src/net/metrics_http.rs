//! The Prometheus scrape endpoint, served by shard 0: `GET /metrics` gathers a snapshot from
//! every shard over the mesh and answers in the text exposition format. One request per
//! connection, headers bounded; anything else gets 404 or 400.

use std::rc::Rc;

use futures::io::{AsyncReadExt, AsyncWriteExt};
use glommio::net::{TcpListener, TcpStream};

use crate::constants::METRICS_REQUEST_HEAD_BYTES_MAX;
use crate::metrics;
use crate::node::Shard;

/// Longest a scrape may take to send its request head.
const SCRAPE_READ_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Serves scrapes on `fd`, a bound and listening TCP socket handed over by start-up and owned
/// by nothing else from here on, until the returned task is dropped.
pub fn serve_listener(shard: Rc<Shard>, fd: std::os::fd::RawFd) -> crate::runtime::Task<()> {
    // SAFETY: the caller hands over a listening TCP socket it no longer uses or closes.
    let listener = unsafe { <TcpListener as std::os::fd::FromRawFd>::from_raw_fd(fd) };
    crate::runtime::spawn(serve(shard, listener))
}

async fn serve(shard: Rc<Shard>, listener: TcpListener) {
    loop {
        match listener.accept().await {
            Ok(stream) => {
                glommio::spawn_local(answer(shard.clone(), stream)).detach();
            }
            Err(e) => {
                tracing::warn!("metrics listener: accept failed: {e}");
                glommio::timer::sleep(std::time::Duration::from_millis(50)).await;
            }
        }
    }
}

async fn answer(shard: Rc<Shard>, mut stream: TcpStream) {
    // A client that never finishes its request must not hold the connection forever.
    if let Err(e) = stream.set_read_timeout(Some(SCRAPE_READ_TIMEOUT)) {
        tracing::debug!("metrics connection: {e}");
    }
    let (status, body) = match read_head(&mut stream).await {
        Some(head) if head.starts_with("GET /metrics ") || head.starts_with("GET /metrics?") => {
            ("200 OK", scrape(&shard).await)
        }
        Some(head) if head.starts_with("GET ") => ("404 Not Found", "only /metrics is served\n".to_string()),
        _ => ("400 Bad Request", "expected GET /metrics\n".to_string()),
    };
    let response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    if let Err(e) = stream.write_all(response.as_bytes()).await {
        tracing::debug!("metrics response: {e}");
    }
    let _ = stream.close().await;
}

/// Reads until the blank line ending the request head; None if it is too long or cut short.
async fn read_head(stream: &mut TcpStream) -> Option<String> {
    let mut head = Vec::with_capacity(512);
    let mut chunk = [0u8; 512];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let read = stream.read(&mut chunk).await.ok()?;
        if read == 0 || head.len() + read > METRICS_REQUEST_HEAD_BYTES_MAX {
            return None;
        }
        head.extend_from_slice(&chunk[..read]);
    }
    String::from_utf8(head).ok()
}

async fn scrape(shard: &Rc<Shard>) -> String {
    let snapshots: Vec<metrics::Snapshot> = shard
        .invoke_on_all(|shard| async move { shard.metrics_snapshot() })
        .await
        .into_iter()
        .filter_map(Result::ok)
        .collect();
    metrics::render(&snapshots)
}
