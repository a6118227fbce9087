//! The controller's state machine: the [`ClusterImage`], applied entry by entry, published on
//! a watch channel after every batch, and snapshotted to `<data>/controller/snapshot.json`
//! (written atomically) so the log behind it can be purged. On start the snapshot is loaded
//! and openraft replays the committed entries after it.

use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use openraft::storage::RaftStateMachine;
use openraft::{
    EntryPayload, LogId, RaftSnapshotBuilder, Snapshot, SnapshotMeta, StorageError, StorageIOError, StoredMembership,
};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use crate::cluster::image::{ClusterImage, Outcome};
use crate::cluster::raft::{Entry, Node, NodeId, TypeConfig};

const SNAPSHOT_FILE: &str = "snapshot.json";

/// A snapshot as stored and as sent to a lagging voter.
#[derive(Serialize, Deserialize)]
struct StoredSnapshot {
    meta: SnapshotMeta<NodeId, Node>,
    image: ClusterImage,
}

pub struct StateMachine {
    dir: PathBuf,
    last_applied: Option<LogId<NodeId>>,
    membership: StoredMembership<NodeId, Node>,
    image: ClusterImage,
    /// The image after every applied batch, for the controller's duties and brokers.
    published: watch::Sender<Arc<ClusterImage>>,
    /// The last snapshot built or installed, as bytes.
    current: Option<(SnapshotMeta<NodeId, Node>, Vec<u8>)>,
}

impl StateMachine {
    /// Opens the state machine under `dir`, from its snapshot if it has one.
    pub fn open(dir: &Path) -> std::io::Result<(StateMachine, watch::Receiver<Arc<ClusterImage>>)> {
        let path = dir.join(SNAPSHOT_FILE);
        let (meta, image, current) = match std::fs::read(&path) {
            Ok(bytes) => {
                let stored: StoredSnapshot = serde_json::from_slice(&bytes)
                    .map_err(|e| std::io::Error::other(format!("parsing {}: {e}", path.display())))?;
                let meta = stored.meta.clone();
                (Some(stored.meta), stored.image, Some((meta, bytes)))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => (None, ClusterImage::default(), None),
            Err(e) => return Err(std::io::Error::other(format!("reading {}: {e}", path.display()))),
        };
        let (published, receiver) = watch::channel(Arc::new(image.clone()));
        Ok((
            StateMachine {
                dir: dir.to_path_buf(),
                last_applied: meta.as_ref().and_then(|m| m.last_log_id),
                membership: meta.map(|m| m.last_membership).unwrap_or_default(),
                image,
                published,
                current,
            },
            receiver,
        ))
    }

    fn snapshot_bytes(&self, meta: &SnapshotMeta<NodeId, Node>) -> Result<Vec<u8>, serde_json::Error> {
        let stored = StoredSnapshot {
            meta: meta.clone(),
            image: self.image.clone(),
        };
        serde_json::to_vec(&stored)
    }
}

/// Builds a snapshot of the image as it is when asked.
pub struct SnapshotBuilder {
    meta: SnapshotMeta<NodeId, Node>,
    bytes: Result<Vec<u8>, serde_json::Error>,
    dir: PathBuf,
}

impl RaftSnapshotBuilder<TypeConfig> for SnapshotBuilder {
    async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig>, StorageError<NodeId>> {
        let bytes = std::mem::replace(&mut self.bytes, Ok(Vec::new()))
            .map_err(|e| StorageIOError::write_snapshot(Some(self.meta.signature()), &e))?;
        crate::metadata::write_atomically(&self.dir.join(SNAPSHOT_FILE), &bytes)
            .map_err(|e| StorageIOError::write_snapshot(Some(self.meta.signature()), &e))?;
        Ok(Snapshot {
            meta: self.meta.clone(),
            snapshot: Box::new(Cursor::new(bytes)),
        })
    }
}

impl RaftStateMachine<TypeConfig> for StateMachine {
    type SnapshotBuilder = SnapshotBuilder;

    async fn applied_state(
        &mut self,
    ) -> Result<(Option<LogId<NodeId>>, StoredMembership<NodeId, Node>), StorageError<NodeId>> {
        Ok((self.last_applied, self.membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<Outcome>, StorageError<NodeId>>
    where
        I: IntoIterator<Item = Entry> + Send,
        I::IntoIter: Send,
    {
        let mut outcomes = Vec::new();
        for entry in entries {
            self.last_applied = Some(entry.log_id);
            outcomes.push(match entry.payload {
                EntryPayload::Blank => {
                    self.image.version = entry.log_id.index;
                    Outcome::Done
                }
                EntryPayload::Normal(command) => self.image.apply(entry.log_id.index, command),
                EntryPayload::Membership(membership) => {
                    self.membership = StoredMembership::new(Some(entry.log_id), membership);
                    self.image.version = entry.log_id.index;
                    Outcome::Done
                }
            });
        }
        self.published.send_replace(Arc::new(self.image.clone()));
        Ok(outcomes)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        let meta = SnapshotMeta {
            last_log_id: self.last_applied,
            last_membership: self.membership.clone(),
            snapshot_id: format!(
                "{}-{}",
                self.last_applied.map_or(0, |l| l.index),
                uuid::Uuid::new_v4().simple()
            ),
        };
        let bytes = self.snapshot_bytes(&meta);
        if let Ok(bytes) = &bytes {
            self.current = Some((meta.clone(), bytes.clone()));
        }
        SnapshotBuilder {
            meta,
            bytes,
            dir: self.dir.clone(),
        }
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<Cursor<Vec<u8>>>, StorageError<NodeId>> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta<NodeId, Node>,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), StorageError<NodeId>> {
        let bytes = snapshot.into_inner();
        let stored: StoredSnapshot =
            serde_json::from_slice(&bytes).map_err(|e| StorageIOError::read_snapshot(Some(meta.signature()), &e))?;
        crate::metadata::write_atomically(&self.dir.join(SNAPSHOT_FILE), &bytes)
            .map_err(|e| StorageIOError::write_snapshot(Some(meta.signature()), &e))?;
        self.current = Some((meta.clone(), bytes));
        self.image = stored.image;
        self.last_applied = meta.last_log_id;
        self.membership = meta.last_membership.clone();
        self.published.send_replace(Arc::new(self.image.clone()));
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot<TypeConfig>>, StorageError<NodeId>> {
        Ok(self.current.as_ref().map(|(meta, bytes)| Snapshot {
            meta: meta.clone(),
            snapshot: Box::new(Cursor::new(bytes.clone())),
        }))
    }
}
