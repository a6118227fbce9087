//! Cluster mode: the controller quorum and a broker's link to it.
//!
//! Everything here runs on one thread of its own, the cluster thread, with a single-threaded
//! tokio runtime: openraft is written for tokio, and the quorum's work (a few messages a
//! second, an fsync per metadata change) must never wait behind a shard's request path, nor
//! a shard behind it. The shards reach it through [`ClusterHandle`]: watch channels for the
//! image and the broker's state, and a channel of changes, all runtime-agnostic, so glommio
//! tasks await them as they await their own.
//!
//! - [`image`]: the metadata (brokers, topics, partitions, leaders, ISR) and how each
//!   [`image::Command`] changes it: the state machine, pure and deterministic.
//! - [`raft`]: openraft's types, log and state machine storage, and voter network.
//! - [`controller`]: a voter's port and, while it leads, the brokers' sessions and fencing.
//! - [`broker`]: registration, heartbeats, following the image, forwarding changes.
//! - [`rpc`]: the controller port's frames.

pub mod broker;
pub mod controller;
pub mod image;
pub mod raft;
pub mod rpc;

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context};
use tokio::sync::{mpsc, oneshot, watch};

use crate::cluster::image::{ClusterImage, Command, Outcome};
use crate::config::{ServerConfig, Voter};

/// This broker's standing with the controller.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BrokerState {
    /// 0 until the first registration is committed.
    pub epoch: u64,
    pub fenced: bool,
}

/// Why a change or call to the controller did not happen.
#[derive(Clone, Debug, thiserror::Error)]
pub enum ClusterError {
    #[error("no active controller: {0}")]
    NoController(String),
    #[error("the controller failed: {0}")]
    Failed(String),
    #[error("the cluster thread has stopped")]
    Stopped,
}

/// A call a shard makes to the active controller: a change, or a question.
pub struct ChangeRequest {
    pub request: rpc::Request,
    pub deadline: Instant,
    pub answer: oneshot::Sender<Result<rpc::Response, ClusterError>>,
}

/// What the shards hold of the cluster thread.
#[derive(Clone)]
pub struct ClusterHandle {
    /// The newest image this broker has from the active controller.
    pub image: watch::Receiver<Arc<ClusterImage>>,
    pub state: watch::Receiver<BrokerState>,
    /// The node id of the active controller, as last seen.
    pub controller: watch::Receiver<Option<i32>>,
    changes: mpsc::UnboundedSender<ChangeRequest>,
    /// Set once every shard serves: the broker registers only then.
    serving: Arc<watch::Sender<bool>>,
    /// The image version every shard has applied (set by shard 0 after each publish).
    applied: Arc<watch::Sender<u64>>,
}

impl ClusterHandle {
    /// Tells the cluster thread that every shard serves clients: the broker may register.
    pub fn serving(&self) {
        self.serving.send_replace(true);
    }

    /// Records that every shard has applied the image at `version`.
    pub fn published(&self, version: u64) {
        self.applied.send_if_modified(|applied| {
            let newer = version > *applied;
            *applied = (*applied).max(version);
            newer
        });
    }

    /// Commits `command` at the active controller; answers with the log index it was
    /// committed at. The caller waits for [`ClusterHandle::applied_at_least`] before it
    /// answers its client, so the change is visible on this broker.
    pub async fn change(&self, command: Command, timeout: Duration) -> Result<(u64, Outcome), ClusterError> {
        match self.call(rpc::Request::Write(command), timeout).await? {
            rpc::Response::Written { index, outcome } => Ok((index, outcome)),
            other => Err(ClusterError::Failed(format!("unexpected answer {other:?}"))),
        }
    }

    /// The quorum as the active controller sees it (DescribeQuorum).
    pub async fn quorum(&self, timeout: Duration) -> Result<rpc::QuorumState, ClusterError> {
        match self.call(rpc::Request::Quorum, timeout).await? {
            rpc::Response::Quorum(state) => Ok(state),
            other => Err(ClusterError::Failed(format!("unexpected answer {other:?}"))),
        }
    }

    async fn call(&self, request: rpc::Request, timeout: Duration) -> Result<rpc::Response, ClusterError> {
        let (answer, answered) = oneshot::channel();
        self.changes
            .send(ChangeRequest {
                request,
                deadline: Instant::now() + timeout,
                answer,
            })
            .map_err(|_| ClusterError::Stopped)?;
        answered.await.map_err(|_| ClusterError::Stopped)?
    }

    /// Resolves once every shard has applied the image at `version`.
    pub async fn applied_at_least(&self, version: u64) {
        let mut applied = self.applied.subscribe();
        let _ = applied.wait_for(|applied| *applied >= version).await;
    }
}

/// Where this broker is reached: its first listener (by other brokers too), and every
/// listener by name.
pub struct Advertised {
    pub host: String,
    pub port: u16,
    pub listeners: Vec<image::Endpoint>,
}

/// Starts the cluster thread: the controller voter (when `process.roles` has it) and the
/// broker's link (when it has broker). The controller port is bound before this returns,
/// so a port in use fails start-up.
pub fn start(config: &ServerConfig, advertised: Advertised) -> anyhow::Result<ClusterHandle> {
    let roles = config.cluster.roles()?;
    let voters = config.cluster.voters()?;
    let node_id = config.node_id;
    let controller_listener = if roles.controller {
        let address = config
            .cluster
            .controller_address(node_id)?
            .ok_or_else(|| anyhow!("node {node_id} has no controller address"))?;
        let listener = std::net::TcpListener::bind(&address)
            .with_context(|| format!("binding the controller listener {address}"))?;
        listener.set_nonblocking(true)?;
        Some(listener)
    } else {
        None
    };
    let dir = config.data_dir.join("controller");
    let settings = controller::Settings {
        session_timeout: Duration::from_millis(config.cluster.broker_session_timeout_ms),
        unclean_leader_election: config
            .topic_defaults
            .get("unclean.leader.election.enable")
            .is_some_and(|v| v.eq_ignore_ascii_case("true")),
    };
    let registration = roles.broker.then(|| broker::Registration {
        id: node_id,
        host: advertised.host,
        port: advertised.port,
        listeners: advertised.listeners,
        heartbeat: Duration::from_millis(config.cluster.broker_heartbeat_interval_ms),
    });

    let (image_sender, image) = watch::channel(Arc::new(ClusterImage::default()));
    let (state_sender, state) = watch::channel(BrokerState::default());
    let (controller_sender, controller) = watch::channel(None);
    let (changes, change_receiver) = mpsc::unbounded_channel();
    let (serving, mut serving_receiver) = watch::channel(false);
    let (started, started_receiver) = std::sync::mpsc::channel::<anyhow::Result<()>>();
    let thread_voters = voters.clone();
    std::thread::Builder::new()
        .name("sluice-cluster".into())
        .spawn(move || {
            let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
                Ok(runtime) => runtime,
                Err(e) => {
                    let _ = started.send(Err(anyhow!("starting the cluster runtime: {e}")));
                    return;
                }
            };
            runtime.block_on(async move {
                if let Some(listener) = controller_listener {
                    match start_voter(node_id, &thread_voters, &dir, listener, settings).await {
                        Ok(()) => {}
                        Err(e) => {
                            let _ = started.send(Err(e));
                            return;
                        }
                    }
                }
                if let Some(me) = registration {
                    let image_receiver = image_sender.subscribe();
                    tokio::spawn(broker::follow_image(
                        thread_voters.clone(),
                        image_sender,
                        controller_sender.clone(),
                    ));
                    let lifecycle = broker::lifecycle(
                        thread_voters.clone(),
                        me,
                        image_receiver.clone(),
                        state_sender,
                        controller_sender.clone(),
                    );
                    tokio::spawn(async move {
                        if serving_receiver.wait_for(|serving| *serving).await.is_ok() {
                            lifecycle.await;
                        }
                    });
                    tokio::spawn(broker::forward_changes(
                        thread_voters,
                        change_receiver,
                        controller_sender,
                    ));
                }
                let _ = started.send(Ok(()));
                // The thread lives as long as the process.
                std::future::pending::<()>().await;
            });
        })
        .context("starting the cluster thread")?;
    started_receiver
        .recv()
        .map_err(|_| anyhow!("the cluster thread died during start-up"))??;
    Ok(ClusterHandle {
        image,
        state,
        controller,
        changes,
        serving: Arc::new(serving),
        applied: Arc::new(watch::channel(0).0),
    })
}

/// Opens the voter's log and state machine, starts Raft (forming the quorum on first start)
/// and serves the controller port.
async fn start_voter(
    node_id: i32,
    voters: &[Voter],
    dir: &std::path::Path,
    listener: std::net::TcpListener,
    settings: controller::Settings,
) -> anyhow::Result<()> {
    let log = raft::log_store::LogStore::open(dir).context("opening the controller log")?;
    let (state_machine, image) =
        raft::state_machine::StateMachine::open(dir).context("opening the controller state machine")?;
    let config = Arc::new(raft::config().map_err(|e| anyhow!("controller config: {e}"))?);
    let me = node_id as raft::NodeId;
    let raft = raft::Raft::new(me, config, raft::Network, log, state_machine)
        .await
        .map_err(|e| anyhow!("starting the controller: {e}"))?;
    if !raft.is_initialized().await.map_err(|e| anyhow!("controller: {e}"))? {
        // Every voter proposes the same membership on its first start; that is safe (the
        // first to win an election commits it, the others' proposals lose).
        if let Err(e) = raft.initialize(raft::members(voters)).await {
            tracing::debug!("controller initialize: {e}");
        }
    }
    let listener = tokio::net::TcpListener::from_std(listener).context("controller listener")?;
    let controller = Arc::new(controller::Controller::new(raft, me, image, settings));
    tokio::spawn(controller.clone().serve(listener));
    tokio::spawn(controller.duties());
    Ok(())
}
