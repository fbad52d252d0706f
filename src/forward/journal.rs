//! A target's done journal (`<data>/forward/<target>.done`): the seqs past its
//! durable cursor that the target took, or that were recorded failed for it, so a
//! restart after the process was killed skips them and sends again only what was in
//! flight.
//!
//! The cursor is saved durably at most every 200 ms, and only up to the oldest
//! delivery not done (with `concurrency` > 1, later ones finish first). Each seq
//! done past it is appended here with one `write(2)` as it is done, without an
//! fsync: the page cache outlives the process (SIGKILL, a panic, the OOM killer),
//! not the machine. After a power loss the durable cursor alone holds and what lies
//! past it is sent again: at least once, as before. A seq is written only once it
//! is done, so whatever the file holds is true; lost writes only repeat deliveries.
//!
//! Each durable save of the cursor rewrites the file with the seqs past it (a temp
//! file renamed over it, so a kill mid-way leaves the old or the new one), so it
//! holds what finished since the oldest delivery still unfinished: a few KB, or
//! more while one delivery is retried for minutes and the others go on.

use std::collections::HashSet;
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// One record: a seq, little-endian.
const RECORD: usize = 8;

pub struct Journal {
    path: PathBuf,
    state: Mutex<State>,
}

struct State {
    /// Open for appending; `None` after a write failed (then nothing more is
    /// journaled until the next rewrite: only repeats are at stake).
    file: Option<File>,
    /// What the file holds, in the order written.
    done: Vec<u64>,
}

impl Journal {
    /// Opens the journal of `target` in `dir` (made if missing) for a worker
    /// starting at `cursor`; returns it with the seqs past `cursor` it holds: those
    /// are done and must not be sent again.
    pub fn open(dir: &Path, target: &str, cursor: u64) -> io::Result<(Self, HashSet<u64>)> {
        std::fs::create_dir_all(dir)?;
        let path = path(dir, target);
        let mut bytes = Vec::new();
        match File::open(&path) {
            Ok(mut file) => {
                file.read_to_end(&mut bytes)?;
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        // A record cut short (only a power loss can do that) is left out.
        let done: Vec<u64> = bytes
            .chunks_exact(RECORD)
            .map(|b| u64::from_le_bytes(b.try_into().expect("8 bytes")))
            .filter(|&seq| seq > cursor)
            .collect();
        let file = rewrite(&path, &done)?;
        let skip = done.iter().copied().collect();
        let journal = Self {
            path,
            state: Mutex::new(State {
                file: Some(file),
                done,
            }),
        };
        Ok((journal, skip))
    }

    /// Journals `seq` as done: taken by the target, or recorded failed for it.
    pub fn record(&self, seq: u64) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let Some(file) = &mut state.file else {
            return;
        };
        // A few bytes into the page cache: microseconds, fine on the executor.
        if let Err(error) = file.write_all(&seq.to_le_bytes()) {
            tracing::warn!(path = %self.path.display(), %error, "cannot write a forwarding journal; a crash would repeat deliveries");
            state.file = None;
            return;
        }
        state.done.push(seq);
    }

    /// The cursor was saved durably at `cursor`: what the journal holds up to it is
    /// no longer needed.
    pub fn saved(&self, cursor: u64) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let before = state.done.len();
        state.done.retain(|&seq| seq > cursor);
        if state.done.len() == before && state.file.is_some() {
            return;
        }
        match rewrite(&self.path, &state.done) {
            Ok(file) => state.file = Some(file),
            Err(error) => {
                tracing::warn!(path = %self.path.display(), %error, "cannot rewrite a forwarding journal; a crash would repeat deliveries");
                state.file = None;
            }
        }
    }

    /// Forgets the journal of a target deleted or made anew.
    pub fn remove(dir: &Path, target: &str) -> io::Result<()> {
        match std::fs::remove_file(path(dir, target)) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }
}

fn path(dir: &Path, target: &str) -> PathBuf {
    dir.join(format!("{target}.done"))
}

/// Replaces the file with `done`, through a temp file renamed over it; returns it
/// open for appending.
fn rewrite(path: &Path, done: &[u64]) -> io::Result<File> {
    let temp = path.with_extension("done.new");
    let mut file = OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .open(&temp)?;
    let bytes: Vec<u8> = done.iter().flat_map(|seq| seq.to_le_bytes()).collect();
    file.write_all(&bytes)?;
    std::fs::rename(&temp, path)?;
    Ok(file)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_restart_skips_what_was_done_past_the_cursor() {
        let dir = tempfile::tempdir().unwrap();
        let (journal, skip) = Journal::open(dir.path(), "ci", 10).unwrap();
        assert!(skip.is_empty());
        for seq in [12, 11, 14, 20] {
            journal.record(seq);
        }
        drop(journal);
        // Killed: the cursor was saved at 10, or at 12 before the kill.
        let (_, skip) = Journal::open(dir.path(), "ci", 10).unwrap();
        assert_eq!(skip, HashSet::from([11, 12, 14, 20]));
        let (_, skip) = Journal::open(dir.path(), "ci", 12).unwrap();
        assert_eq!(skip, HashSet::from([14, 20]));
    }

    #[test]
    fn a_durable_save_leaves_only_what_lies_past_it() {
        let dir = tempfile::tempdir().unwrap();
        let (journal, _) = Journal::open(dir.path(), "ci", 0).unwrap();
        for seq in [2, 1, 5, 7] {
            journal.record(seq);
        }
        journal.saved(5);
        journal.record(9);
        let file = dir.path().join("ci.done");
        assert_eq!(std::fs::metadata(&file).unwrap().len(), 2 * RECORD as u64);
        let (_, skip) = Journal::open(dir.path(), "ci", 5).unwrap();
        assert_eq!(skip, HashSet::from([7, 9]));
        Journal::remove(dir.path(), "ci").unwrap();
        assert!(!file.exists());
        let (_, skip) = Journal::open(dir.path(), "ci", 0).unwrap();
        assert!(skip.is_empty());
    }

    #[test]
    fn a_record_cut_short_is_left_out() {
        let dir = tempfile::tempdir().unwrap();
        let mut bytes = 3u64.to_le_bytes().to_vec();
        bytes.extend_from_slice(&[4, 0, 0]);
        std::fs::write(dir.path().join("ci.done"), bytes).unwrap();
        let (_, skip) = Journal::open(dir.path(), "ci", 0).unwrap();
        assert_eq!(skip, HashSet::from([3]));
    }
}
