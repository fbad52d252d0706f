//! The insight windows asked for lately, summed per group and kept in memory: a
//! repeated question (the dashboard's 24 hours, say) is answered from one sum per
//! group instead of a row per hour and group read from redb.
//!
//! The hourly rows stay the durable truth. A window is summed from them once, on the
//! first question, then kept equal to them: every commit that changes hourly rows
//! hands its row deltas to [`InsightWindows::committed`] while it holds the commit
//! lock, which adds them to each window holding their hour. A window summed from a
//! read snapshot is put in only at the generation (count of such commits) the
//! snapshot saw, or brought up to the current one with the deltas committed since,
//! which the last [`LOG_BATCHES`] commits keep. Anything that changes hourly rows
//! otherwise (the writer reopening a database rolled back to its last durable commit)
//! calls [`InsightWindows::reset`]. A window's hours are fixed: when the hour turns,
//! the next question is a new window, summed from the closest kept one (minus the
//! rows of its hours left behind, plus those of the new ones) rather than from all
//! of its hours.

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};

/// (repository, workflow, job name, label set).
pub type GroupKey = (String, String, String, String);

/// The rows of one commit that changed: (hour, group, change of each slot).
pub type RowDeltas = Vec<(i64, GroupKey, Vec<i64>)>;

/// Windows kept at most; the least recently asked goes first.
const MAX_WINDOWS: usize = 8;
/// Group sums kept at most over all windows (about 0.5 KB each): a fleet with more
/// groups than this in one window is summed from redb on every question.
const MAX_GROUPS: usize = 64 * 1024;
/// Commits whose deltas are kept, to bring a window summed from an older snapshot up
/// to date (a sum over a long window takes tens of milliseconds; the writer commits
/// at most every 10 ms).
pub const LOG_BATCHES: usize = 256;

/// The hourly rows of hours `first_hour..=last_hour` summed per group (groups without
/// a row in the window are absent, and every sum kept has a non-zero slot).
#[derive(Debug, Clone)]
pub struct WindowSums {
    pub first_hour: i64,
    pub last_hour: i64,
    pub groups: BTreeMap<GroupKey, Box<[i64]>>,
    /// Unique to these sums in this process: changed with them, so that whatever
    /// follows from them alone (an answer written as text) can be kept under it.
    pub version: u64,
}

/// Equal sums of the same hours (whatever their versions).
impl PartialEq for WindowSums {
    fn eq(&self, other: &Self) -> bool {
        (self.first_hour, self.last_hour, &self.groups)
            == (other.first_hour, other.last_hour, &other.groups)
    }
}

impl Eq for WindowSums {}

fn next_version() -> u64 {
    static VERSIONS: AtomicU64 = AtomicU64::new(1);
    VERSIONS.fetch_add(1, Ordering::Relaxed)
}

impl WindowSums {
    pub fn new(first_hour: i64, last_hour: i64) -> Self {
        Self {
            first_hour,
            last_hour,
            groups: BTreeMap::new(),
            version: next_version(),
        }
    }

    /// The same sums over other hours (to which the caller brings them).
    pub fn rehoused(&self, first_hour: i64, last_hour: i64) -> Self {
        Self {
            first_hour,
            last_hour,
            groups: self.groups.clone(),
            version: next_version(),
        }
    }

    /// Adds one row (or one row's change) to its group's sum, if its hour is in.
    pub fn add(&mut self, hour: i64, group: &GroupKey, row: &[i64]) {
        if hour < self.first_hour || hour > self.last_hour {
            return;
        }
        self.version = next_version();
        let sum = match self.groups.get_mut(group) {
            Some(sum) => sum,
            None => self
                .groups
                .entry(group.clone())
                .or_insert_with(|| vec![0; row.len()].into()),
        };
        for (total, value) in sum.iter_mut().zip(row) {
            *total += value;
        }
        // Rows never hold negative counts: a sum back to zero has no row left.
        if sum.iter().all(|v| *v == 0) {
            self.groups.remove(group);
        }
    }

    /// Adds `sign` times a row to its group's sum, whatever its hour.
    pub fn add_any_hour(&mut self, group: GroupKey, row: &[i64], sign: i64) {
        self.version = next_version();
        let sum = self
            .groups
            .entry(group)
            .or_insert_with(|| vec![0; row.len()].into());
        for (total, value) in sum.iter_mut().zip(row) {
            *total += value * sign;
        }
    }

    /// Drops the groups whose sums are all zero (no row left in the window).
    pub fn drop_empty(&mut self) {
        self.version = next_version();
        self.groups.retain(|_, sum| sum.iter().any(|v| *v != 0));
    }

    fn apply(&mut self, deltas: &RowDeltas) {
        for (hour, group, delta) in deltas {
            self.add(*hour, group, delta);
        }
    }
}

/// Hours of `sums` outside `first..=last` and of `first..=last` outside `sums`.
fn changed_hours(sums: &WindowSums, first: i64, last: i64) -> i64 {
    let outside = |from: i64, to: i64, of_first: i64, of_last: i64| {
        let span = |a: i64, b: i64| (b - a + 1).max(0);
        span(from, to.min(of_first - 1)) + span(from.max(of_last + 1), to)
    };
    outside(sums.first_hour, sums.last_hour, first, last)
        + outside(first, last, sums.first_hour, sums.last_hour)
}

/// What a reader's snapshot saw: the generation, and the epoch it belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ticket {
    epoch: u64,
    generation: u64,
}

#[derive(Default)]
pub struct InsightWindows {
    /// Held for writing by a commit that changes hourly rows until its deltas are
    /// added, and for reading while a reader opens its snapshot: a snapshot's
    /// generation is then exactly the rows it reads.
    commit: RwLock<()>,
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    /// Bumped by [`InsightWindows::reset`]: tickets of earlier epochs are refused.
    epoch: u64,
    /// Commits that changed hourly rows this epoch.
    generation: u64,
    windows: Vec<Kept>,
    /// The deltas of the last commits, oldest first, with their generations.
    log: VecDeque<(u64, Arc<RowDeltas>)>,
    /// For least-recently-asked eviction.
    clock: u64,
}

struct Kept {
    sums: Arc<WindowSums>,
    asked: u64,
}

impl InsightWindows {
    fn inner(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The window of these hours, if kept: equal to the rows as last committed.
    pub fn get(&self, first_hour: i64, last_hour: i64) -> Option<Arc<WindowSums>> {
        let mut inner = self.inner();
        inner.clock += 1;
        let now = inner.clock;
        let kept = inner
            .windows
            .iter_mut()
            .find(|k| k.sums.first_hour == first_hour && k.sums.last_hour == last_hour)?;
        kept.asked = now;
        Some(kept.sums.clone())
    }

    /// Opens a read snapshot with `begin`, with the ticket of what it sees and the
    /// kept window closest to hours `first..=last` (fewest hours in one and not in
    /// the other, fewer than the window has), which equals the snapshot's rows: the
    /// window after the hour turned is the one before it, minus its first hour's
    /// rows, plus the new hour's.
    pub fn snapshot<T, E>(
        &self,
        first: i64,
        last: i64,
        begin: impl FnOnce() -> Result<T, E>,
    ) -> Result<(Ticket, Option<Arc<WindowSums>>, T), E> {
        let _commit = self.commit.read().unwrap_or_else(|e| e.into_inner());
        let snapshot = begin()?;
        let inner = self.inner();
        let ticket = Ticket {
            epoch: inner.epoch,
            generation: inner.generation,
        };
        let base = inner
            .windows
            .iter()
            .map(|k| (changed_hours(&k.sums, first, last), &k.sums))
            .filter(|(hours, _)| *hours < last - first + 1)
            .min_by_key(|(hours, _)| *hours)
            .map(|(_, sums)| sums.clone());
        Ok((ticket, base, snapshot))
    }

    /// Keeps a window summed from the snapshot of `ticket`, brought up to the last
    /// commit; returns it (as summed, if it could not be brought up to date).
    pub fn install(&self, ticket: Ticket, mut sums: WindowSums) -> Arc<WindowSums> {
        let mut inner = self.inner();
        if ticket.epoch != inner.epoch {
            return Arc::new(sums);
        }
        if ticket.generation != inner.generation {
            let next = ticket.generation + 1;
            if inner.log.front().is_none_or(|(g, _)| *g > next) {
                return Arc::new(sums); // the deltas since are no longer all kept
            }
            for (_, deltas) in inner.log.iter().filter(|(g, _)| *g >= next) {
                sums.apply(deltas);
            }
        }
        inner.clock += 1;
        let asked = inner.clock;
        if let Some(kept) = inner
            .windows
            .iter_mut()
            .find(|k| k.sums.first_hour == sums.first_hour && k.sums.last_hour == sums.last_hour)
        {
            kept.asked = asked;
            return kept.sums.clone();
        }
        let sums = Arc::new(sums);
        if sums.groups.len() > MAX_GROUPS {
            return sums;
        }
        inner.windows.push(Kept {
            sums: sums.clone(),
            asked,
        });
        let kept_groups =
            |inner: &Inner| -> usize { inner.windows.iter().map(|k| k.sums.groups.len()).sum() };
        while inner.windows.len() > MAX_WINDOWS || kept_groups(&inner) > MAX_GROUPS {
            let oldest = (0..inner.windows.len())
                .min_by_key(|&i| inner.windows[i].asked)
                .expect("a window is kept");
            inner.windows.swap_remove(oldest);
        }
        sums
    }

    /// Runs `commit` (a commit whose hourly rows changed by `deltas`) and, if it
    /// succeeds, adds the deltas to every window.
    pub fn committed<T, E>(
        &self,
        deltas: RowDeltas,
        commit: impl FnOnce() -> Result<T, E>,
    ) -> Result<T, E> {
        if deltas.is_empty() {
            return commit();
        }
        let _commit = self.commit.write().unwrap_or_else(|e| e.into_inner());
        let done = commit()?;
        let mut inner = self.inner();
        inner.generation += 1;
        let generation = inner.generation;
        for kept in &mut inner.windows {
            if deltas
                .iter()
                .any(|(hour, _, _)| (kept.sums.first_hour..=kept.sums.last_hour).contains(hour))
            {
                Arc::make_mut(&mut kept.sums).apply(&deltas);
            }
        }
        inner.log.push_back((generation, Arc::new(deltas)));
        if inner.log.len() > LOG_BATCHES {
            inner.log.pop_front();
        }
        Ok(done)
    }

    /// Forgets every window, and refuses what readers summed before: the hourly rows
    /// changed without their deltas.
    pub fn reset(&self) {
        let _commit = self.commit.write().unwrap_or_else(|e| e.into_inner());
        let mut inner = self.inner();
        inner.epoch += 1;
        inner.generation = 0;
        inner.windows.clear();
        inner.log.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn group(name: &str) -> GroupKey {
        ("o/r".into(), "CI".into(), name.into(), "linux".into())
    }

    fn sums(first: i64, last: i64, rows: &[(i64, &str, [i64; 2])]) -> WindowSums {
        let mut out = WindowSums::new(first, last);
        for (hour, name, row) in rows {
            out.add(*hour, &group(name), row);
        }
        out
    }

    #[test]
    fn a_window_summed_before_a_commit_is_brought_up_to_it() {
        let windows = InsightWindows::default();
        let (ticket, _, ()) = windows.snapshot(0, 0, || Ok::<_, ()>(())).unwrap();
        // Committed after the snapshot, before the reader puts its sums in.
        let deltas = vec![(11, group("a"), vec![1, 0]), (9, group("b"), vec![1, 1])];
        windows.committed(deltas, || Ok::<_, ()>(())).unwrap();
        let summed = sums(10, 12, &[(10, "a", [2, 1])]);
        let version = summed.version;
        let kept = windows.install(ticket, summed);
        assert_ne!(kept.version, version, "changed since summed");
        assert_eq!(*kept, sums(10, 12, &[(10, "a", [3, 1])]));
        assert_eq!(windows.get(10, 12), Some(kept));
        // Later commits reach it; one that empties a group removes it.
        windows
            .committed(vec![(12, group("a"), vec![-3, -1])], || Ok::<_, ()>(()))
            .unwrap();
        assert!(windows.get(10, 12).unwrap().groups.is_empty());
        // A failed commit changes nothing.
        let failed = windows.committed(vec![(12, group("c"), vec![1, 0])], || Err::<(), _>(()));
        assert!(failed.is_err());
        assert!(windows.get(10, 12).unwrap().groups.is_empty());
    }

    #[test]
    fn what_was_summed_before_a_reset_or_too_long_ago_is_not_kept() {
        let windows = InsightWindows::default();
        let (ticket, _, ()) = windows.snapshot(0, 0, || Ok::<_, ()>(())).unwrap();
        windows.reset();
        windows.install(ticket, sums(0, 1, &[]));
        assert!(windows.get(0, 1).is_none());

        let (ticket, _, ()) = windows.snapshot(0, 0, || Ok::<_, ()>(())).unwrap();
        for _ in 0..=LOG_BATCHES {
            windows
                .committed(vec![(0, group("a"), vec![1, 0])], || Ok::<_, ()>(()))
                .unwrap();
        }
        let summed = windows.install(ticket, sums(0, 1, &[]));
        assert!(summed.groups.is_empty());
        assert!(windows.get(0, 1).is_none());
    }

    #[test]
    fn the_closest_kept_window_is_offered_as_a_base() {
        assert_eq!(changed_hours(&sums(10, 33, &[]), 11, 34), 2);
        assert_eq!(changed_hours(&sums(10, 33, &[]), 10, 33), 0);
        assert_eq!(changed_hours(&sums(10, 33, &[]), 40, 41), 26);
        assert_eq!(changed_hours(&sums(10, 33, &[]), 12, 20), 15);
        let windows = InsightWindows::default();
        for (first, last) in [(10, 33), (0, 33)] {
            let (ticket, _, ()) = windows.snapshot(first, last, || Ok::<_, ()>(())).unwrap();
            windows.install(ticket, sums(first, last, &[]));
        }
        let (_, base, ()) = windows.snapshot(11, 34, || Ok::<_, ()>(())).unwrap();
        assert_eq!(base.map(|b| b.first_hour), Some(10));
        // Not when summing the window's own hours reads fewer.
        let (_, base, ()) = windows.snapshot(40, 41, || Ok::<_, ()>(())).unwrap();
        assert!(base.is_none());
    }

    #[test]
    fn the_least_recently_asked_window_goes_first() {
        let windows = InsightWindows::default();
        for first in 0..MAX_WINDOWS as i64 {
            let (ticket, _, ()) = windows.snapshot(0, 0, || Ok::<_, ()>(())).unwrap();
            windows.install(ticket, sums(first, 100, &[]));
        }
        assert!(windows.get(0, 100).is_some());
        let (ticket, _, ()) = windows.snapshot(0, 0, || Ok::<_, ()>(())).unwrap();
        windows.install(ticket, sums(-1, 100, &[]));
        assert!(windows.get(0, 100).is_some());
        assert!(windows.get(1, 100).is_none());
        assert!(windows.get(-1, 100).is_some());
    }
}
