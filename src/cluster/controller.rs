//! A controller voter: it serves the controller port (Raft between voters, and brokers'
//! registrations, heartbeats, writes and metadata reads), and while it is the active
//! controller (the Raft leader) it keeps the brokers' sessions and fences a broker whose
//! session runs out, which moves its leaderships (see [`crate::cluster::image`]).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Semaphore};

use crate::cluster::image::{ClusterImage, Command, Outcome};
use crate::cluster::raft::{NodeId, Raft};
use crate::cluster::rpc::{read_frame, write_frame, QuorumState, Request, Response};
use crate::constants::{CONTROLLER_CONNECTIONS_MAX, CONTROLLER_IMAGE_WAIT_MS};

/// How often the active controller looks for expired broker sessions.
const SESSION_CHECK: Duration = Duration::from_millis(200);

pub struct Controller {
    pub raft: Raft,
    pub me: NodeId,
    image: watch::Receiver<Arc<ClusterImage>>,
    /// When each broker last heartbeated, as the active controller saw it; reset when this
    /// voter becomes the active controller, so every broker gets a full session from then.
    sessions: Mutex<HashMap<i32, Instant>>,
    session_timeout: Duration,
    /// This node's `unclean.leader.election.enable`, for the elections it commits.
    unclean: bool,
}

/// What the active controller takes from its node's config.
#[derive(Clone, Copy, Debug)]
pub struct Settings {
    /// `broker.session.timeout.ms`.
    pub session_timeout: Duration,
    /// `unclean.leader.election.enable`: the default of topics that do not set it.
    pub unclean_leader_election: bool,
}

impl Controller {
    pub fn new(raft: Raft, me: NodeId, image: watch::Receiver<Arc<ClusterImage>>, settings: Settings) -> Self {
        Controller {
            raft,
            me,
            image,
            sessions: Mutex::new(HashMap::new()),
            session_timeout: settings.session_timeout,
            unclean: settings.unclean_leader_election,
        }
    }

    fn is_active(&self) -> bool {
        self.raft.metrics().borrow().current_leader == Some(self.me)
    }

    fn leader(&self) -> Option<NodeId> {
        self.raft.metrics().borrow().current_leader
    }

    /// Commits `command` if this voter is the active controller.
    pub async fn write(&self, command: Command) -> Response {
        match self.raft.client_write(command).await {
            Ok(written) => Response::Written {
                index: written.log_id.index,
                outcome: written.data,
            },
            Err(e) => match e.forward_to_leader() {
                Some(forward) => Response::NotController {
                    leader: forward.leader_id,
                },
                None => Response::Failed(e.to_string()),
            },
        }
    }

    /// Accepts connections until the process ends.
    pub async fn serve(self: Arc<Self>, listener: TcpListener) {
        let connections = Arc::new(Semaphore::new(CONTROLLER_CONNECTIONS_MAX));
        loop {
            let (stream, peer) = match listener.accept().await {
                Ok(accepted) => accepted,
                Err(e) => {
                    tracing::warn!("controller port: accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            let Ok(permit) = connections.clone().try_acquire_owned() else {
                tracing::warn!("controller port: {peer} refused, {CONTROLLER_CONNECTIONS_MAX} connections open");
                continue;
            };
            let controller = self.clone();
            tokio::spawn(async move {
                if let Err(e) = controller.connection(stream).await {
                    tracing::debug!("controller port: {peer}: {e}");
                }
                drop(permit);
            });
        }
    }

    async fn connection(&self, mut stream: TcpStream) -> std::io::Result<()> {
        stream.set_nodelay(true)?;
        while let Some(request) = read_frame::<Request>(&mut stream).await? {
            let response = self.handle(request).await;
            write_frame(&mut stream, &response).await?;
        }
        Ok(())
    }

    async fn handle(&self, request: Request) -> Response {
        match request {
            Request::AppendEntries(rpc) => Response::AppendEntries(self.raft.append_entries(rpc).await),
            Request::Vote(rpc) => Response::Vote(self.raft.vote(rpc).await),
            Request::InstallSnapshot(rpc) => Response::InstallSnapshot(self.raft.install_snapshot(rpc).await),
            Request::Write(command) => self.write(command).await,
            Request::Heartbeat { id, epoch, version } => self.heartbeat(id, epoch, version).await,
            Request::Image { after, wait_ms } => self.image_after(after, wait_ms).await,
            // The active controller's view: it alone knows how far each voter replicated.
            Request::Quorum if !self.is_active() => Response::NotController { leader: self.leader() },
            Request::Quorum => Response::Quorum(self.quorum()),
        }
    }

    async fn heartbeat(&self, id: i32, epoch: u64, version: u64) -> Response {
        if !self.is_active() {
            return Response::NotController { leader: self.leader() };
        }
        self.sessions.lock().expect("sessions").insert(id, Instant::now());
        let image = self.image.borrow().clone();
        let Some(broker) = image.brokers.get(&id).filter(|b| b.epoch == epoch) else {
            return Response::Heartbeat {
                fenced: true,
                stale: true,
            };
        };
        if broker.fenced && version >= epoch {
            // It has the metadata of its own registration: it may lead and follow.
            match self
                .write(Command::UnfenceBroker {
                    id,
                    epoch,
                    unclean: self.unclean,
                })
                .await
            {
                Response::Written {
                    outcome: Outcome::Done, ..
                } => {
                    tracing::info!("broker {id} (epoch {epoch}) unfenced");
                    return Response::Heartbeat {
                        fenced: false,
                        stale: false,
                    };
                }
                Response::NotController { leader } => return Response::NotController { leader },
                other => tracing::warn!("unfencing broker {id}: {other:?}"),
            }
        }
        Response::Heartbeat {
            fenced: broker.fenced,
            stale: false,
        }
    }

    async fn image_after(&self, after: u64, wait_ms: u64) -> Response {
        if !self.is_active() {
            return Response::NotController { leader: self.leader() };
        }
        let mut image = self.image.clone();
        let wait = Duration::from_millis(wait_ms.min(CONTROLLER_IMAGE_WAIT_MS));
        let newer = tokio::time::timeout(wait, image.wait_for(|i| i.version > after)).await;
        match newer {
            Ok(Ok(image)) => Response::Image(Some(image.clone())),
            _ => Response::Image(None),
        }
    }

    pub fn quorum(&self) -> QuorumState {
        let metrics = self.raft.metrics().borrow().clone();
        QuorumState {
            leader: metrics.current_leader,
            term: metrics.current_term,
            last_log_index: metrics.last_log_index.unwrap_or(0),
            applied: metrics.last_applied.map_or(0, |l| l.index),
            voters: metrics
                .replication
                .map(|r| r.into_iter().map(|(id, log)| (id, log.map(|l| l.index))).collect())
                .unwrap_or_default(),
        }
    }

    /// The active controller's duties, run until the process ends: name the cluster once,
    /// and fence brokers whose sessions expired.
    pub async fn duties(self: Arc<Self>) {
        let mut active = false;
        loop {
            tokio::time::sleep(SESSION_CHECK).await;
            if !self.is_active() {
                active = false;
                continue;
            }
            let image = self.image.borrow().clone();
            if !active {
                active = true;
                tracing::info!("node {} is the active controller", self.me);
                let now = Instant::now();
                let mut sessions = self.sessions.lock().expect("sessions");
                sessions.clear();
                sessions.extend(image.brokers.keys().map(|id| (*id, now)));
            }
            if image.cluster_id.is_empty() {
                let cluster_id = crate::metadata::new_cluster_id();
                self.write(Command::SetClusterId { cluster_id }).await;
            }
            let expired: Vec<(i32, u64)> = {
                let now = Instant::now();
                let mut sessions = self.sessions.lock().expect("sessions");
                image
                    .brokers
                    .values()
                    .filter(|b| !b.fenced)
                    .filter(|b| {
                        let seen = *sessions.entry(b.id).or_insert(now);
                        now.duration_since(seen) > self.session_timeout
                    })
                    .map(|b| (b.id, b.epoch))
                    .collect()
            };
            for (id, epoch) in expired {
                tracing::warn!(
                    "broker {id} (epoch {epoch}) missed its session of {:?}: fencing it",
                    self.session_timeout
                );
                self.write(Command::FenceBroker {
                    id,
                    epoch,
                    unclean: self.unclean,
                })
                .await;
            }
        }
    }
}
