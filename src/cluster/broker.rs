//! A broker's side of the controller: it finds the active controller among the voters,
//! registers (a new broker epoch per process start), heartbeats, follows the metadata image
//! and forwards the shards' metadata changes. Runs on the cluster thread.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, watch};

use crate::cluster::image::{ClusterImage, Command, Outcome};
use crate::cluster::rpc::{Peer, Request, Response};
use crate::cluster::{BrokerState, ChangeRequest, ClusterError};
use crate::config::Voter;
use crate::constants::{CONTROLLER_CALL_TIMEOUT_MS, CONTROLLER_IMAGE_WAIT_MS};

/// Pause before trying the next voter when none answered as the active controller.
const RETRY: Duration = Duration::from_millis(100);

/// Calls the active controller, whichever voter it is now.
pub struct ControllerClient {
    voters: Vec<Voter>,
    peers: Vec<Peer>,
    /// Index into `voters` of the one believed active.
    active: usize,
    controller: watch::Sender<Option<i32>>,
}

impl ControllerClient {
    pub fn new(voters: Vec<Voter>, controller: watch::Sender<Option<i32>>) -> Self {
        let peers = voters.iter().map(|v| Peer::new(v.address.clone())).collect();
        let known = *controller.borrow();
        let active = known.and_then(|id| voters.iter().position(|v| v.id == id)).unwrap_or(0);
        ControllerClient {
            voters,
            peers,
            active,
            controller,
        }
    }

    /// Sends `request` to the active controller, following redirects and trying every voter,
    /// until `deadline`.
    pub async fn call(&mut self, request: &Request, deadline: Instant) -> Result<Response, ClusterError> {
        let mut last_error = String::from("no voter answered");
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(ClusterError::NoController(last_error));
            }
            let timeout = left.min(Duration::from_millis(
                CONTROLLER_CALL_TIMEOUT_MS + CONTROLLER_IMAGE_WAIT_MS,
            ));
            match self.peers[self.active].call(request, timeout).await {
                Ok(Response::NotController { leader }) => {
                    let hinted = leader.and_then(|id| self.voters.iter().position(|v| v.id as u64 == id));
                    match hinted {
                        Some(index) if index != self.active => self.active = index,
                        _ => {
                            last_error = format!("voter {} has no leader yet", self.voters[self.active].id);
                            self.active = (self.active + 1) % self.voters.len();
                            tokio::time::sleep(RETRY).await;
                        }
                    }
                }
                Ok(Response::Failed(reason)) => return Err(ClusterError::Failed(reason)),
                Ok(response) => {
                    let id = self.voters[self.active].id;
                    self.controller.send_if_modified(|known| known.replace(id) != Some(id));
                    return Ok(response);
                }
                Err(e) => {
                    last_error = e.to_string();
                    self.active = (self.active + 1) % self.voters.len();
                    tokio::time::sleep(RETRY).await;
                }
            }
        }
    }

    /// Commits `command` at the active controller.
    pub async fn write(&mut self, command: Command, deadline: Instant) -> Result<(u64, Outcome), ClusterError> {
        match self.call(&Request::Write(command), deadline).await? {
            Response::Written { index, outcome } => Ok((index, outcome)),
            other => Err(ClusterError::Failed(format!("unexpected answer {other:?}"))),
        }
    }
}

/// What the broker tells the controller about itself.
#[derive(Clone)]
pub struct Registration {
    pub id: i32,
    pub host: String,
    pub port: u16,
    pub listeners: Vec<super::image::Endpoint>,
    pub heartbeat: Duration,
}

/// Registers, then heartbeats every `heartbeat`, registering again when the controller no
/// longer knows this epoch. Runs until the process ends.
pub async fn lifecycle(
    voters: Vec<Voter>,
    me: Registration,
    image: watch::Receiver<Arc<ClusterImage>>,
    state: watch::Sender<BrokerState>,
    controller: watch::Sender<Option<i32>>,
) {
    let mut client = ControllerClient::new(voters, controller);
    let incarnation = uuid::Uuid::new_v4();
    'register: loop {
        let command = Command::RegisterBroker {
            id: me.id,
            incarnation,
            host: me.host.clone(),
            port: me.port,
            listeners: me.listeners.clone(),
        };
        let epoch = match client.write(command, Instant::now() + me.heartbeat * 4).await {
            Ok((_, Outcome::Registered { epoch })) => epoch,
            Ok((_, other)) => {
                tracing::warn!("registering broker {}: {other:?}", me.id);
                tokio::time::sleep(me.heartbeat).await;
                continue;
            }
            Err(e) => {
                tracing::info!("registering broker {}: {e}; retrying", me.id);
                continue;
            }
        };
        tracing::info!("broker {} registered at epoch {epoch}", me.id);
        state.send_replace(BrokerState { epoch, fenced: true });
        loop {
            let version = image.borrow().version;
            let request = Request::Heartbeat {
                id: me.id,
                epoch,
                version,
            };
            match client.call(&request, Instant::now() + me.heartbeat * 2).await {
                Ok(Response::Heartbeat { stale: true, .. }) => {
                    tracing::warn!(
                        "broker {} epoch {epoch} is no longer registered: registering again",
                        me.id
                    );
                    continue 'register;
                }
                Ok(Response::Heartbeat { fenced, .. }) => {
                    state.send_if_modified(|s| {
                        let changed = s.fenced != fenced;
                        s.fenced = fenced;
                        changed
                    });
                }
                Ok(other) => tracing::warn!("heartbeat of broker {}: unexpected {other:?}", me.id),
                Err(e) => tracing::info!("heartbeat of broker {}: {e}", me.id),
            }
            // Heartbeat at once while fenced: the first one after catching up unfences.
            let pause = if state.borrow().fenced {
                me.heartbeat.min(Duration::from_millis(250))
            } else {
                me.heartbeat
            };
            tokio::time::sleep(pause).await;
        }
    }
}

/// Follows the active controller's image, publishing each newer one. Runs until the process
/// ends.
pub async fn follow_image(
    voters: Vec<Voter>,
    image: watch::Sender<Arc<ClusterImage>>,
    controller: watch::Sender<Option<i32>>,
) {
    let mut client = ControllerClient::new(voters, controller);
    loop {
        let after = image.borrow().version;
        let request = Request::Image {
            after,
            wait_ms: CONTROLLER_IMAGE_WAIT_MS,
        };
        let deadline = Instant::now() + Duration::from_millis(CONTROLLER_CALL_TIMEOUT_MS + CONTROLLER_IMAGE_WAIT_MS);
        match client.call(&request, deadline).await {
            Ok(Response::Image(Some(newer))) if newer.version > after => {
                image.send_replace(newer);
            }
            Ok(Response::Image(_)) => {}
            Ok(other) => tracing::warn!("metadata image: unexpected {other:?}"),
            Err(e) => tracing::debug!("metadata image: {e}"),
        }
    }
}

/// Forwards the shards' changes to the active controller, each in a task of its own.
pub async fn forward_changes(
    voters: Vec<Voter>,
    mut changes: mpsc::UnboundedReceiver<ChangeRequest>,
    controller: watch::Sender<Option<i32>>,
) {
    while let Some(ChangeRequest {
        request,
        deadline,
        answer,
    }) = changes.recv().await
    {
        let mut client = ControllerClient::new(voters.clone(), controller.clone());
        tokio::spawn(async move {
            let _ = answer.send(client.call(&request, deadline).await);
        });
    }
}
