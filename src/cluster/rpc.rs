//! The controller port's protocol: Raft's messages between voters, and the broker calls
//! (register, heartbeat, metadata image, writes). A frame is a 4-byte big-endian length and
//! a JSON body; one request, then its answer, at a time on a connection. Metadata traffic is
//! small and rare next to records, so the format favours being readable in a capture.

use std::sync::Arc;
use std::time::Duration;

use openraft::error::{InstallSnapshotError, RaftError};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse, VoteRequest,
    VoteResponse,
};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::cluster::image::{ClusterImage, Command, Outcome};
use crate::cluster::raft::{NodeId, TypeConfig};
use crate::constants::{CONTROLLER_CALL_TIMEOUT_MS, CONTROLLER_FRAME_BYTES_MAX};

#[derive(Debug, Serialize, Deserialize)]
pub enum Request {
    AppendEntries(AppendEntriesRequest<TypeConfig>),
    Vote(VoteRequest<NodeId>),
    InstallSnapshot(InstallSnapshotRequest<TypeConfig>),
    /// A change for the active controller to commit.
    Write(Command),
    /// A broker is alive and has applied the image up to `version`.
    Heartbeat {
        id: i32,
        epoch: u64,
        version: u64,
    },
    /// The image, once it is newer than `after`; waits up to `wait_ms` for one.
    Image {
        after: u64,
        wait_ms: u64,
    },
    /// The quorum as the answering voter sees it.
    Quorum,
}

#[derive(Debug, Serialize, Deserialize)]
pub enum Response {
    AppendEntries(Result<AppendEntriesResponse<NodeId>, RaftError<NodeId>>),
    Vote(Result<VoteResponse<NodeId>, RaftError<NodeId>>),
    InstallSnapshot(Result<InstallSnapshotResponse<NodeId>, RaftError<NodeId, InstallSnapshotError>>),
    /// The write is committed at `index` and gave `outcome`.
    Written {
        index: u64,
        outcome: Outcome,
    },
    /// Only the active controller takes this call; it is `leader` when known.
    NotController {
        leader: Option<NodeId>,
    },
    Heartbeat {
        fenced: bool,
        stale: bool,
    },
    /// `None`: nothing newer within the wait.
    Image(Option<Arc<ClusterImage>>),
    Quorum(QuorumState),
    Failed(String),
}

/// The quorum as one voter sees it (DescribeQuorum).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct QuorumState {
    pub leader: Option<NodeId>,
    pub term: u64,
    pub last_log_index: u64,
    /// The last entry applied to the image: committed.
    #[serde(default)]
    pub applied: u64,
    /// Each voter's last replicated log index, as the leader knows it (leader only).
    pub voters: Vec<(NodeId, Option<u64>)>,
}

/// Why a call got no answer.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    #[error("controller {address}: {source}")]
    Io {
        address: String,
        #[source]
        source: std::io::Error,
    },
    #[error("controller {address} did not answer within {timeout:?}")]
    Timeout { address: String, timeout: Duration },
}

pub async fn write_frame<T: Serialize>(stream: &mut TcpStream, message: &T) -> std::io::Result<()> {
    let body = serde_json::to_vec(message).map_err(std::io::Error::other)?;
    if body.len() > CONTROLLER_FRAME_BYTES_MAX {
        return Err(std::io::Error::other(format!(
            "a {}-byte controller frame exceeds {CONTROLLER_FRAME_BYTES_MAX}",
            body.len()
        )));
    }
    let mut frame = Vec::with_capacity(4 + body.len());
    frame.extend_from_slice(&(body.len() as u32).to_be_bytes());
    frame.extend_from_slice(&body);
    stream.write_all(&frame).await
}

/// Reads one frame; `None` when the peer closed the connection between frames.
pub async fn read_frame<T: for<'de> Deserialize<'de>>(stream: &mut TcpStream) -> std::io::Result<Option<T>> {
    let mut len = [0u8; 4];
    match stream.read_exact(&mut len).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let len = u32::from_be_bytes(len) as usize;
    if len > CONTROLLER_FRAME_BYTES_MAX {
        return Err(std::io::Error::other(format!(
            "a {len}-byte controller frame exceeds {CONTROLLER_FRAME_BYTES_MAX}"
        )));
    }
    // Grown as the body arrives, so an announced length alone costs nothing.
    let mut body = Vec::new();
    let read = (&mut *stream).take(len as u64).read_to_end(&mut body).await?;
    if read < len {
        return Err(std::io::ErrorKind::UnexpectedEof.into());
    }
    serde_json::from_slice(&body).map(Some).map_err(std::io::Error::other)
}

/// A connection to one controller address, made when first needed and again after a failure.
pub struct Peer {
    pub address: String,
    stream: Option<TcpStream>,
}

impl Peer {
    pub fn new(address: String) -> Peer {
        Peer { address, stream: None }
    }

    /// Sends `request` and waits up to `timeout` for its answer.
    pub async fn call(&mut self, request: &Request, timeout: Duration) -> Result<Response, CallError> {
        match tokio::time::timeout(timeout, self.exchange(request)).await {
            Ok(Ok(response)) => Ok(response),
            Ok(Err(source)) => {
                self.stream = None;
                Err(CallError::Io {
                    address: self.address.clone(),
                    source,
                })
            }
            Err(_) => {
                self.stream = None;
                Err(CallError::Timeout {
                    address: self.address.clone(),
                    timeout,
                })
            }
        }
    }

    /// [`Peer::call`] with the usual timeout.
    pub async fn call_once(&mut self, request: &Request) -> Result<Response, CallError> {
        self.call(request, Duration::from_millis(CONTROLLER_CALL_TIMEOUT_MS))
            .await
    }

    async fn exchange(&mut self, request: &Request) -> std::io::Result<Response> {
        if self.stream.is_none() {
            let stream = TcpStream::connect(&self.address).await?;
            stream.set_nodelay(true)?;
            self.stream = Some(stream);
        }
        let stream = self.stream.as_mut().expect("connected above");
        write_frame(stream, request).await?;
        read_frame(stream)
            .await?
            .ok_or_else(|| std::io::ErrorKind::UnexpectedEof.into())
    }
}
