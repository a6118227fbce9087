//! A partition's leader-epoch cache: for each leader epoch, the first offset written in it.
//!
//! Replication needs it: a follower that returns asks the leader where its last epoch ended
//! (OffsetForLeaderEpoch, answered by [`EpochCache::end_offset_for`]) and truncates what it
//! wrote past that. Kept in the partition directory as `leader-epoch-checkpoint`, in Kafka's
//! text layout: a version line (0), a count line, then one `epoch start_offset` line per entry.
//!
//! Invariant, asserted after every change: epochs and start offsets both strictly increase
//! from one entry to the next.

use std::collections::BTreeMap;

use crate::ids::{LeaderEpoch, Offset};

/// The file name in the partition directory.
pub const EPOCH_CHECKPOINT_FILE: &str = "leader-epoch-checkpoint";

/// The checkpoint layout version written (Kafka's is 0).
const CHECKPOINT_VERSION: u32 = 0;

/// Entries one checkpoint may hold: far above any real count (one per leadership change
/// still in the log), so a damaged count line cannot make a load allocate without bound.
pub const EPOCH_ENTRIES_MAX: usize = 1_000_000;

/// What an epoch's end is, as OffsetForLeaderEpoch answers: the largest epoch at or below
/// the one asked for, and the offset where it ended. `None` where Kafka answers the undefined
/// epoch and offset (-1, -1): nothing known, or an epoch above the latest.
pub type EpochEnd = Option<(LeaderEpoch, Offset)>;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EpochCache {
    /// Epoch to the first offset written in it.
    starts: BTreeMap<LeaderEpoch, Offset>,
}

impl EpochCache {
    pub fn latest(&self) -> Option<(LeaderEpoch, Offset)> {
        self.starts.iter().next_back().map(|(epoch, start)| (*epoch, *start))
    }

    pub fn entries(&self) -> impl Iterator<Item = (LeaderEpoch, Offset)> + '_ {
        self.starts.iter().map(|(epoch, start)| (*epoch, *start))
    }

    /// Records that `epoch` begins at `start` (the first batch a leader of that epoch wrote).
    /// The same epoch again at a later offset changes nothing. Entries that the new one makes
    /// non-monotonic (an epoch at or above it, or a start at or past its start) are dropped
    /// first: they were written by a leader whose tail has since been replaced.
    pub fn assign(&mut self, epoch: LeaderEpoch, start: Offset) {
        assert!(
            epoch.0 >= 0 && start.0 >= 0,
            "assigning epoch {epoch} at offset {start}"
        );
        if let Some((latest, latest_start)) = self.latest() {
            if latest == epoch && start >= latest_start {
                return;
            }
        }
        self.starts.retain(|e, s| *e < epoch && *s < start);
        self.starts.insert(epoch, start);
        self.check_invariants();
    }

    /// Where `epoch` ended in a log whose end is `log_end`: see [`EpochEnd`].
    pub fn end_offset_for(&self, epoch: LeaderEpoch, log_end: Offset) -> EpochEnd {
        let (latest, _) = self.latest()?;
        if epoch == latest {
            return Some((latest, log_end));
        }
        let (_, next_start) = self.starts.range(LeaderEpoch(epoch.0.saturating_add(1))..).next()?;
        match self.starts.range(..=epoch).next_back() {
            Some((floor, _)) => Some((*floor, *next_start)),
            // Asked for an epoch older than the oldest still in the log: it ended where the
            // oldest began.
            None => Some((epoch, *next_start)),
        }
    }

    /// Forgets the epochs that begin at or past `end`: the log was truncated there.
    pub fn truncate_from_end(&mut self, end: Offset) {
        self.starts.retain(|_, start| *start < end);
        self.check_invariants();
    }

    /// Forgets what lies before `log_start`: epochs that ended before it go, and the one in
    /// effect there now starts at `log_start`.
    pub fn truncate_from_start(&mut self, log_start: Offset) {
        let below: Vec<LeaderEpoch> = self
            .starts
            .iter()
            .filter(|(_, start)| **start < log_start)
            .map(|(epoch, _)| *epoch)
            .collect();
        if let Some(in_effect) = below.last().copied() {
            let starts_at_log_start = self.starts.values().any(|start| *start == log_start);
            for epoch in &below {
                self.starts.remove(epoch);
            }
            if !starts_at_log_start {
                self.starts.insert(in_effect, log_start);
            }
        }
        self.check_invariants();
    }

    /// The checkpoint file's bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut text = format!("{CHECKPOINT_VERSION}\n{}\n", self.starts.len());
        for (epoch, start) in &self.starts {
            text.push_str(&format!("{epoch} {start}\n"));
        }
        text.into_bytes()
    }

    /// Reads a checkpoint; Err says what is wrong with it.
    pub fn decode(bytes: &[u8]) -> Result<EpochCache, String> {
        let text = std::str::from_utf8(bytes).map_err(|e| format!("not text: {e}"))?;
        let mut lines = text.lines();
        let version: u32 = parse(lines.next(), "version")?;
        if version != CHECKPOINT_VERSION {
            return Err(format!("version {version}, expected {CHECKPOINT_VERSION}"));
        }
        let count: usize = parse(lines.next(), "count")?;
        if count > EPOCH_ENTRIES_MAX {
            return Err(format!("{count} entries, more than {EPOCH_ENTRIES_MAX}"));
        }
        let mut cache = EpochCache::default();
        let mut previous: Option<(LeaderEpoch, Offset)> = None;
        for index in 0..count {
            let line = lines
                .next()
                .ok_or_else(|| format!("{count} entries announced, {index} present"))?;
            let mut fields = line.split_whitespace();
            let epoch = LeaderEpoch(parse(fields.next(), "epoch")?);
            let start = Offset(parse(fields.next(), "start offset")?);
            if fields.next().is_some() || epoch.0 < 0 || start.0 < 0 {
                return Err(format!("bad entry {line:?}"));
            }
            if previous.is_some_and(|(e, s)| epoch <= e || start <= s) {
                return Err(format!("entry {line:?} does not increase"));
            }
            previous = Some((epoch, start));
            cache.starts.insert(epoch, start);
        }
        if lines.any(|line| !line.trim().is_empty()) {
            return Err("lines after the last entry".to_string());
        }
        Ok(cache)
    }

    fn check_invariants(&self) {
        let mut previous: Option<(LeaderEpoch, Offset)> = None;
        for (epoch, start) in self.entries() {
            if let Some((e, s)) = previous {
                assert!(
                    epoch > e && start > s,
                    "leader epochs out of order: {e} at {s}, then {epoch} at {start}"
                );
            }
            previous = Some((epoch, start));
        }
    }
}

fn parse<T: std::str::FromStr>(field: Option<&str>, what: &str) -> Result<T, String> {
    let field = field.ok_or_else(|| format!("no {what}"))?;
    field.trim().parse().map_err(|_| format!("bad {what} {field:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cache(entries: &[(i32, i64)]) -> EpochCache {
        let mut cache = EpochCache::default();
        for &(epoch, start) in entries {
            cache.assign(LeaderEpoch(epoch), Offset(start));
        }
        cache
    }

    fn entries(cache: &EpochCache) -> Vec<(i32, i64)> {
        cache.entries().map(|(e, s)| (e.0, s.0)).collect()
    }

    #[test]
    fn assigning_keeps_epochs_and_offsets_increasing() {
        let mut epochs = cache(&[(0, 0), (1, 10), (3, 25)]);
        epochs.assign(LeaderEpoch(3), Offset(30));
        assert_eq!(
            entries(&epochs),
            vec![(0, 0), (1, 10), (3, 25)],
            "same epoch again: no change"
        );
        // A new leader at epoch 2 that starts at 20 replaces what epoch 3 wrote.
        epochs.assign(LeaderEpoch(2), Offset(20));
        assert_eq!(entries(&epochs), vec![(0, 0), (1, 10), (2, 20)]);
        // A higher epoch starting earlier drops the entries it overlaps.
        epochs.assign(LeaderEpoch(5), Offset(15));
        assert_eq!(entries(&epochs), vec![(0, 0), (1, 10), (5, 15)]);
    }

    #[test]
    fn end_offsets_answer_as_offset_for_leader_epoch_does() {
        let epochs = cache(&[(1, 0), (3, 10), (4, 25)]);
        let end = Offset(40);
        let at = |epoch: i32| epochs.end_offset_for(LeaderEpoch(epoch), end).map(|(e, o)| (e.0, o.0));
        assert_eq!(at(4), Some((4, 40)), "the latest epoch ends at the log end");
        assert_eq!(at(3), Some((3, 25)));
        assert_eq!(
            at(2),
            Some((1, 10)),
            "an epoch with no entry: the one before it, to the next start"
        );
        assert_eq!(
            at(0),
            Some((0, 0)),
            "older than the oldest: ends where the oldest began"
        );
        assert_eq!(at(5), None, "above the latest");
        assert_eq!(EpochCache::default().end_offset_for(LeaderEpoch(0), end), None);
    }

    #[test]
    fn truncation_from_either_end() {
        let mut epochs = cache(&[(0, 0), (1, 10), (2, 20)]);
        epochs.truncate_from_end(Offset(20));
        assert_eq!(entries(&epochs), vec![(0, 0), (1, 10)]);
        epochs.truncate_from_start(Offset(15));
        assert_eq!(entries(&epochs), vec![(1, 15)]);
        epochs.truncate_from_start(Offset(15));
        assert_eq!(entries(&epochs), vec![(1, 15)]);
        let mut exact = cache(&[(0, 0), (1, 10)]);
        exact.truncate_from_start(Offset(10));
        assert_eq!(entries(&exact), vec![(1, 10)]);
    }

    /// Golden bytes: Kafka's checkpoint layout, so the file reads the same to both.
    #[test]
    fn checkpoint_layout_is_pinned_and_round_trips() {
        let epochs = cache(&[(0, 0), (2, 117)]);
        assert_eq!(epochs.encode(), b"0\n2\n0 0\n2 117\n");
        assert_eq!(EpochCache::decode(&epochs.encode()), Ok(epochs));
        assert_eq!(EpochCache::decode(b"0\n0\n"), Ok(EpochCache::default()));
    }

    #[test]
    fn damaged_checkpoints_are_refused() {
        for bad in [
            &b""[..],
            b"1\n0\n",
            b"0\n2\n0 0\n",
            b"0\n2\n1 10\n0 20\n",
            b"0\n2\n0 10\n1 10\n",
            b"0\n1\n0 x\n",
            b"0\n1\n-1 0\n",
            b"0\n1\n0 0 0\n",
            b"0\n1\n0 0\n1 5\n",
            b"0\n99999999999\n",
        ] {
            assert!(EpochCache::decode(bad).is_err(), "{:?}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    #[should_panic(expected = "assigning epoch")]
    fn negative_epochs_are_refused() {
        EpochCache::default().assign(LeaderEpoch(-1), Offset(0));
    }
}
