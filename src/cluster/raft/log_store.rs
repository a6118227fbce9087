//! The controller's Raft log and vote on its disk: `<data>/controller/raft.log`, an
//! append-only file of records (an entry appended, a tail truncated, a head purged), each
//! framed by its length and CRC32C, fsynced before openraft is told the write is done. The
//! entries also stay in memory (the metadata log is small: it is snapshotted every
//! [`CONTROLLER_SNAPSHOT_EVERY_ENTRIES`] entries and purged behind the snapshot). On start the
//! file is replayed; a torn last record (a crash mid-write) is cut off. The file is rewritten
//! with only the live entries once it holds [`CONTROLLER_LOG_REWRITE_SLACK`] dead records.
//!
//! [`CONTROLLER_SNAPSHOT_EVERY_ENTRIES`]: crate::constants::CONTROLLER_SNAPSHOT_EVERY_ENTRIES

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::fs::File;
use std::io::{Read, Write};
use std::ops::RangeBounds;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use openraft::storage::{LogFlushed, RaftLogStorage};
use openraft::{LogId, LogState, RaftLogReader, StorageError, StorageIOError, Vote};
use serde::{Deserialize, Serialize};

use crate::cluster::raft::{Entry, NodeId, TypeConfig};
use crate::constants::{CONTROLLER_FRAME_BYTES_MAX, CONTROLLER_LOG_REWRITE_SLACK};

/// One record of the log file.
#[derive(Serialize, Deserialize)]
enum Record {
    Append(Entry),
    /// Entries from this index on are gone.
    Truncate(u64),
    /// Entries up to and including this one are gone (they are in a snapshot).
    Purge(LogId<NodeId>),
}

struct Inner {
    dir: PathBuf,
    file: File,
    /// Records in the file, live or not: decides when to rewrite it.
    records: usize,
    entries: BTreeMap<u64, Entry>,
    last_purged: Option<LogId<NodeId>>,
    vote: Option<Vote<NodeId>>,
}

/// The log store handed to openraft; its readers share the same entries.
#[derive(Clone)]
pub struct LogStore {
    inner: Arc<Mutex<Inner>>,
}

const LOG_FILE: &str = "raft.log";
const VOTE_FILE: &str = "vote.json";

fn io_error(what: &str, path: &Path, e: impl std::fmt::Display) -> std::io::Error {
    std::io::Error::other(format!("{what} {}: {e}", path.display()))
}

impl LogStore {
    /// Opens (or creates) the log under `dir` and replays it.
    pub fn open(dir: &Path) -> std::io::Result<LogStore> {
        std::fs::create_dir_all(dir).map_err(|e| io_error("creating", dir, e))?;
        let path = dir.join(LOG_FILE);
        let mut entries = BTreeMap::new();
        let mut last_purged = None;
        let mut records = 0;
        let mut valid_len = 0u64;
        if let Ok(mut file) = File::open(&path) {
            let mut bytes = Vec::new();
            file.read_to_end(&mut bytes)
                .map_err(|e| io_error("reading", &path, e))?;
            let mut at = 0usize;
            while let Some((record, next)) = decode(&bytes, at) {
                match record {
                    Record::Append(entry) => {
                        entries.insert(entry.log_id.index, entry);
                    }
                    Record::Truncate(from) => {
                        entries.split_off(&from);
                    }
                    Record::Purge(upto) => {
                        entries = entries.split_off(&(upto.index + 1));
                        last_purged = Some(upto);
                    }
                }
                records += 1;
                at = next;
            }
            if at < bytes.len() {
                tracing::warn!(
                    "controller log {}: {} bytes after offset {at} are torn or damaged; cut off",
                    path.display(),
                    bytes.len() - at
                );
            }
            valid_len = at as u64;
        }
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|e| io_error("opening", &path, e))?;
        file.set_len(valid_len).map_err(|e| io_error("truncating", &path, e))?;
        let vote_path = dir.join(VOTE_FILE);
        let vote = match std::fs::read(&vote_path) {
            Ok(bytes) => Some(serde_json::from_slice(&bytes).map_err(|e| io_error("parsing", &vote_path, e))?),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(io_error("reading", &vote_path, e)),
        };
        Ok(LogStore {
            inner: Arc::new(Mutex::new(Inner {
                dir: dir.to_path_buf(),
                file,
                records,
                entries,
                last_purged,
                vote,
            })),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().expect("controller log lock")
    }
}

fn encode(record: &Record, out: &mut Vec<u8>) {
    let body = serde_json::to_vec(record).expect("log records serialize");
    out.extend_from_slice(&(body.len() as u32).to_be_bytes());
    out.extend_from_slice(&crc32c::crc32c(&body).to_be_bytes());
    out.extend_from_slice(&body);
}

/// The record at `at` and where the next one starts; `None` at the end or at a torn or
/// damaged record.
fn decode(bytes: &[u8], at: usize) -> Option<(Record, usize)> {
    let header = bytes.get(at..at + 8)?;
    let len = u32::from_be_bytes(header[..4].try_into().ok()?) as usize;
    let crc = u32::from_be_bytes(header[4..].try_into().ok()?);
    if len > CONTROLLER_FRAME_BYTES_MAX {
        return None;
    }
    let body = bytes.get(at + 8..at + 8 + len)?;
    if crc32c::crc32c(body) != crc {
        return None;
    }
    let record = serde_json::from_slice(body).ok()?;
    Some((record, at + 8 + len))
}

impl Inner {
    /// Appends `records` to the file and makes them durable.
    fn write(&mut self, records: &[Record]) -> std::io::Result<()> {
        let mut out = Vec::new();
        for record in records {
            encode(record, &mut out);
        }
        self.file.write_all(&out)?;
        self.file.sync_data()?;
        self.records += records.len();
        Ok(())
    }

    /// Rewrites the file with only what is live, once it is mostly dead records.
    fn maybe_rewrite(&mut self) -> std::io::Result<()> {
        if self.records <= self.entries.len() + CONTROLLER_LOG_REWRITE_SLACK {
            return Ok(());
        }
        let mut out = Vec::new();
        if let Some(purged) = self.last_purged {
            encode(&Record::Purge(purged), &mut out);
        }
        for entry in self.entries.values() {
            encode(&Record::Append(entry.clone()), &mut out);
        }
        let path = self.dir.join(LOG_FILE);
        crate::metadata::write_atomically(&path, &out).map_err(std::io::Error::other)?;
        self.file = std::fs::OpenOptions::new().append(true).open(&path)?;
        self.records = self.entries.len() + usize::from(self.last_purged.is_some());
        Ok(())
    }
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + Send>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, StorageError<NodeId>> {
        Ok(self.lock().entries.range(range).map(|(_, e)| e.clone()).collect())
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = LogStore;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, StorageError<NodeId>> {
        let inner = self.lock();
        let last = inner
            .entries
            .values()
            .next_back()
            .map(|e| e.log_id)
            .or(inner.last_purged);
        Ok(LogState {
            last_purged_log_id: inner.last_purged,
            last_log_id: last,
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote<NodeId>) -> Result<(), StorageError<NodeId>> {
        let mut inner = self.lock();
        let bytes = serde_json::to_vec(vote).map_err(|e| StorageIOError::write_vote(&e))?;
        crate::metadata::write_atomically(&inner.dir.join(VOTE_FILE), &bytes)
            .map_err(|e| StorageIOError::write_vote(&e))?;
        inner.vote = Some(*vote);
        Ok(())
    }

    async fn read_vote(&mut self) -> Result<Option<Vote<NodeId>>, StorageError<NodeId>> {
        Ok(self.lock().vote)
    }

    async fn append<I>(&mut self, entries: I, callback: LogFlushed<TypeConfig>) -> Result<(), StorageError<NodeId>>
    where
        I: IntoIterator<Item = Entry> + Send,
        I::IntoIter: Send,
    {
        let mut inner = self.lock();
        let records: Vec<Record> = entries.into_iter().map(Record::Append).collect();
        let written = inner.write(&records);
        if written.is_ok() {
            for record in records {
                if let Record::Append(entry) = record {
                    inner.entries.insert(entry.log_id.index, entry);
                }
            }
        }
        let failure = written.as_ref().err().map(StorageIOError::write_logs);
        callback.log_io_completed(written);
        match failure {
            Some(e) => Err(e.into()),
            None => Ok(()),
        }
    }

    async fn truncate(&mut self, log_id: LogId<NodeId>) -> Result<(), StorageError<NodeId>> {
        let mut inner = self.lock();
        inner
            .write(&[Record::Truncate(log_id.index)])
            .map_err(|e| StorageIOError::write_logs(&e))?;
        inner.entries.split_off(&log_id.index);
        Ok(())
    }

    async fn purge(&mut self, log_id: LogId<NodeId>) -> Result<(), StorageError<NodeId>> {
        let mut inner = self.lock();
        inner
            .write(&[Record::Purge(log_id)])
            .map_err(|e| StorageIOError::write_logs(&e))?;
        inner.entries = inner.entries.split_off(&(log_id.index + 1));
        inner.last_purged = Some(log_id);
        inner.maybe_rewrite().map_err(|e| StorageIOError::write_logs(&e))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use openraft::{CommittedLeaderId, EntryPayload};

    fn entry(index: u64) -> Entry {
        Entry {
            log_id: LogId::new(CommittedLeaderId::new(1, 1), index),
            payload: EntryPayload::Blank,
        }
    }

    fn indexes(store: &LogStore) -> Vec<u64> {
        store.lock().entries.keys().copied().collect()
    }

    #[test]
    fn appends_truncations_and_purges_survive_a_reopen_and_a_torn_tail_is_cut() {
        let dir = tempfile::tempdir().unwrap();
        let store = LogStore::open(dir.path()).unwrap();
        {
            let mut inner = store.lock();
            let records: Vec<Record> = (1..=5).map(|i| Record::Append(entry(i))).collect();
            inner.write(&records).unwrap();
            inner.write(&[Record::Truncate(4)]).unwrap();
            inner.write(&[Record::Purge(entry(1).log_id)]).unwrap();
        }
        drop(store);
        let store = LogStore::open(dir.path()).unwrap();
        assert_eq!(indexes(&store), vec![2, 3]);
        assert_eq!(store.lock().last_purged.map(|l| l.index), Some(1));
        drop(store);
        // Half a record at the end, as a crash mid-write leaves it.
        let path = dir.path().join(LOG_FILE);
        let mut torn = Vec::new();
        encode(&Record::Append(entry(4)), &mut torn);
        torn.truncate(torn.len() / 2);
        std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap()
            .write_all(&torn)
            .unwrap();
        let store = LogStore::open(dir.path()).unwrap();
        assert_eq!(indexes(&store), vec![2, 3]);
        // New records go after the cut, not after the torn bytes.
        store.lock().write(&[Record::Append(entry(4))]).unwrap();
        drop(store);
        assert_eq!(indexes(&LogStore::open(dir.path()).unwrap()), vec![2, 3, 4]);
    }
}
