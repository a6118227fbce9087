//! The cross-shard mesh: every executor can send a closure to every other, to run there with
//! that executor's context `C` (the broker's is `node::Shard`).
//!
//! A job is one boxed closure; its answer comes back through a oneshot. Whatever it carries
//! must be `Send`: record bytes travel as `bytes::Bytes`, reference-counted, never copied.

use std::future::Future;
use std::rc::Rc;

use futures::channel::oneshot;
use futures::future::LocalBoxFuture;
use glommio::channels::channel_mesh::{Full, Receivers, Senders};

use crate::ids::ShardId;

/// A unit of work sent to another executor, run there with its context.
pub type Job<C> = Box<dyn FnOnce(Rc<C>) -> LocalBoxFuture<'static, ()> + Send>;

/// The target executor has stopped (shutdown) and cannot run the job.
#[derive(Debug, thiserror::Error)]
#[error("shard {0} is not running")]
pub struct ShardUnavailable(pub ShardId);

/// A context that can run work on any executor of the mesh with that executor's context:
/// what fan-out and coordinators need of a shard, and all they need (so they can be tested
/// without a mesh).
pub trait OnShard: 'static {
    /// This executor's place in the mesh.
    fn shard_id(&self) -> ShardId;
    /// Runs `work` on shard `target` with that shard's context; Err when it has stopped.
    fn on_shard<R, F, Fut>(
        self: &Rc<Self>,
        target: ShardId,
        work: F,
    ) -> impl Future<Output = Result<R, ShardUnavailable>>
    where
        R: Send + 'static,
        F: FnOnce(Rc<Self>) -> Fut + Send + 'static,
        Fut: Future<Output = R> + 'static;
}

/// Made once on the main thread and cloned into every executor, which then joins.
pub struct MeshBuilder<C>(glommio::channels::channel_mesh::MeshBuilder<Job<C>, Full>);

impl<C> Clone for MeshBuilder<C> {
    fn clone(&self) -> Self {
        MeshBuilder(self.0.clone())
    }
}

impl<C: 'static> MeshBuilder<C> {
    /// A mesh of `peers` executors, each channel holding at most `depth` jobs in flight.
    pub fn full(peers: usize, depth: usize) -> MeshBuilder<C> {
        MeshBuilder(glommio::channels::channel_mesh::MeshBuilder::full(peers, depth))
    }

    /// Joins from the calling executor (its peer id becomes its shard id) once all peers
    /// have; returns the sending half and the inbox to serve.
    pub async fn join(self) -> Result<(Mesh<C>, Inbox<C>), String> {
        let (senders, receivers) = self.0.join().await.map_err(|e| e.to_string())?;
        Ok((Mesh { senders }, Inbox { receivers }))
    }
}

/// The jobs other executors send this one.
pub struct Inbox<C> {
    receivers: Receivers<Job<C>>,
}

impl<C: 'static> Inbox<C> {
    /// Runs every job that arrives, each as its own task with `context`, until the senders
    /// are gone.
    pub fn serve(mut self, context: Rc<C>) {
        for (_, receiver) in self.receivers.streams() {
            let context = context.clone();
            glommio::spawn_local(async move {
                while let Some(job) = receiver.recv().await {
                    glommio::spawn_local(job(context.clone())).detach();
                }
            })
            .detach();
        }
    }
}

/// This executor's sending half of the mesh.
pub struct Mesh<C> {
    senders: Senders<Job<C>>,
}

impl<C: 'static> Mesh<C> {
    /// This executor's place in the mesh.
    pub fn id(&self) -> ShardId {
        ShardId(self.senders.peer_id())
    }

    /// How many executors the mesh joins.
    pub fn peers(&self) -> usize {
        self.senders.nr_consumers()
    }

    /// Runs `job` on `target` and returns its result: directly, with `here`, when the target
    /// is this executor, otherwise as one message over the mesh.
    pub async fn invoke_on<R, F, Fut>(&self, here: &Rc<C>, target: ShardId, job: F) -> Result<R, ShardUnavailable>
    where
        R: Send + 'static,
        F: FnOnce(Rc<C>) -> Fut + Send + 'static,
        Fut: Future<Output = R> + 'static,
    {
        assert!(target.0 < self.peers(), "shard {target} out of {} shards", self.peers());
        if target == self.id() {
            return Ok(job(here.clone()).await);
        }
        let (reply, answer) = oneshot::channel();
        let boxed: Job<C> = Box::new(move |context| {
            Box::pin(async move {
                let _ = reply.send(job(context).await);
            })
        });
        self.senders
            .send_to(target.0, boxed)
            .await
            .map_err(|_| ShardUnavailable(target))?;
        answer.await.map_err(|_| ShardUnavailable(target))
    }
}
