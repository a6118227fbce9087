//! The controller quorum on openraft: its types, its storage (log, vote, state machine and
//! snapshots under `<data>/controller/`) and its network (the controller port's protocol).

pub mod log_store;
pub mod state_machine;

use std::collections::BTreeMap;
use std::io::Cursor;
use std::time::Duration;

use openraft::error::{InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError, Unreachable};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse, VoteRequest,
    VoteResponse,
};

use crate::cluster::image::{Command, Outcome};
use crate::cluster::rpc::{CallError, Peer, Request, Response};

pub type NodeId = u64;
pub type Node = openraft::BasicNode;

openraft::declare_raft_types!(
    /// The controller's Raft: commands to the cluster image, and what applying them gave.
    pub TypeConfig:
        D = Command,
        R = Outcome,
        NodeId = NodeId,
        Node = Node,
        SnapshotData = Cursor<Vec<u8>>,
);

pub type Entry = openraft::Entry<TypeConfig>;
pub type Raft = openraft::Raft<TypeConfig>;

/// Raft timing: a leader heartbeats every [`HEARTBEAT`]; a voter that hears nothing for a
/// random time between the election bounds stands for election. Generous against a loaded
/// machine's scheduling delays, short against the broker session (9 s by default).
const HEARTBEAT: Duration = Duration::from_millis(250);
const ELECTION_MIN: Duration = Duration::from_millis(1_000);
const ELECTION_MAX: Duration = Duration::from_millis(2_000);

/// The openraft config Sluice runs with.
pub fn config() -> Result<openraft::Config, String> {
    openraft::Config {
        cluster_name: "sluice".into(),
        heartbeat_interval: HEARTBEAT.as_millis() as u64,
        election_timeout_min: ELECTION_MIN.as_millis() as u64,
        election_timeout_max: ELECTION_MAX.as_millis() as u64,
        install_snapshot_timeout: 10_000,
        snapshot_max_chunk_size: crate::constants::CONTROLLER_SNAPSHOT_CHUNK_BYTES,
        snapshot_policy: openraft::SnapshotPolicy::LogsSinceLast(crate::constants::CONTROLLER_SNAPSHOT_EVERY_ENTRIES),
        max_in_snapshot_log_to_keep: crate::constants::CONTROLLER_SNAPSHOT_EVERY_ENTRIES,
        ..Default::default()
    }
    .validate()
    .map_err(|e| e.to_string())
}

/// The voters as openraft's membership names them.
pub fn members(voters: &[crate::config::Voter]) -> BTreeMap<NodeId, Node> {
    voters
        .iter()
        .map(|v| (v.id as NodeId, Node::new(v.address.clone())))
        .collect()
}

/// Makes a connection per voter for openraft's replication.
pub struct Network;

impl RaftNetworkFactory<TypeConfig> for Network {
    type Network = VoterLink;

    async fn new_client(&mut self, target: NodeId, node: &Node) -> VoterLink {
        VoterLink {
            target,
            peer: Peer::new(node.addr.clone()),
            reachable: None,
        }
    }
}

/// The link from this voter to one other.
pub struct VoterLink {
    target: NodeId,
    peer: Peer,
    /// Whether the last call got through: a change is logged, not every failure.
    reachable: Option<bool>,
}

type RpcResult<T, E = openraft::error::Infallible> = Result<T, RPCError<NodeId, Node, RaftError<NodeId, E>>>;

impl VoterLink {
    async fn call(
        &mut self,
        request: Request,
        option: &RPCOption,
    ) -> Result<Response, RPCError<NodeId, Node, RaftError<NodeId, InstallSnapshotError>>> {
        let answer = self.peer.call(&request, option.hard_ttl()).await;
        let reachable = answer.is_ok();
        if self.reachable != Some(reachable) {
            match &answer {
                Ok(_) => tracing::info!("controller: voter {} reached at {}", self.target, self.peer.address),
                Err(e) => tracing::warn!("controller: voter {} unreachable: {e}", self.target),
            }
            self.reachable = Some(reachable);
        }
        answer.map_err(|e| match e {
            CallError::Io { .. } => RPCError::Unreachable(Unreachable::new(&e)),
            CallError::Timeout { .. } => RPCError::Network(NetworkError::new(&e)),
        })
    }

    fn unexpected<E: std::error::Error>(response: Response) -> RPCError<NodeId, Node, RaftError<NodeId, E>> {
        let message = format!("unexpected answer {response:?}");
        RPCError::Network(NetworkError::new(&std::io::Error::other(message)))
    }
}

/// An error for one call kind, from the call's error over any kind.
fn narrow<E: std::error::Error>(
    e: RPCError<NodeId, Node, RaftError<NodeId, InstallSnapshotError>>,
) -> RPCError<NodeId, Node, RaftError<NodeId, E>> {
    match e {
        RPCError::Unreachable(u) => RPCError::Unreachable(u),
        RPCError::Network(n) => RPCError::Network(n),
        RPCError::Timeout(t) => RPCError::Timeout(t),
        RPCError::PayloadTooLarge(p) => RPCError::PayloadTooLarge(p),
        RPCError::RemoteError(r) => RPCError::Network(NetworkError::new(&r)),
    }
}

impl RaftNetwork<TypeConfig> for VoterLink {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> RpcResult<AppendEntriesResponse<NodeId>> {
        match self.call(Request::AppendEntries(rpc), &option).await.map_err(narrow)? {
            Response::AppendEntries(Ok(answer)) => Ok(answer),
            Response::AppendEntries(Err(e)) => Err(RPCError::RemoteError(RemoteError::new(self.target, e))),
            other => Err(Self::unexpected(other)),
        }
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> RpcResult<InstallSnapshotResponse<NodeId>, InstallSnapshotError> {
        match self.call(Request::InstallSnapshot(rpc), &option).await? {
            Response::InstallSnapshot(Ok(answer)) => Ok(answer),
            Response::InstallSnapshot(Err(e)) => Err(RPCError::RemoteError(RemoteError::new(self.target, e))),
            other => Err(Self::unexpected(other)),
        }
    }

    async fn vote(&mut self, rpc: VoteRequest<NodeId>, option: RPCOption) -> RpcResult<VoteResponse<NodeId>> {
        match self.call(Request::Vote(rpc), &option).await.map_err(narrow)? {
            Response::Vote(Ok(answer)) => Ok(answer),
            Response::Vote(Err(e)) => Err(RPCError::RemoteError(RemoteError::new(self.target, e))),
            other => Err(Self::unexpected(other)),
        }
    }
}
