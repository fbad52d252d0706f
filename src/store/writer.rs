//! The single writer, the store's applier: one thread owns every write transaction
//! and packs all the requests waiting in its queue into one commit (group commit).
//!
//! Deliveries reach it already durable in the acknowledgement log and answered
//! (`appender`): it applies them with non-durable commits, which readers see at once,
//! then drops them from the acknowledged tail, and makes everything durable about
//! once a second with one commit that also records the log position it covers. A
//! crash loses only non-durable commits, and the log holds every delivery they held.
//! Status changes, retirements and removals have no log behind them: they commit
//! durably before their callers are answered.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::{Duration, Instant};

use redb::Durability;
use tokio::sync::{mpsc, watch};

use super::StoreError;
use super::appender::LogProgress;
use super::apply::{apply_batch, logged_after, write_entries};
use super::request::{Outcome, WriteRequest, refuse};
use super::slot::DbSlot;
use super::tail::Tail;
use crate::domain::timestamp;

/// Most requests committed in one transaction. Bounds the time one commit holds the
/// callers of the batch, and the memory of one transaction.
pub(super) const MAX_BATCH: usize = 1024;

/// redb's two-phase commit: the new root is made live by a second fsync instead of
/// being trusted on its (non-cryptographic) checksum, which someone who controls
/// bytes in a transaction could in theory forge into a torn commit that looks whole.
/// Deliveries carry bytes chosen by whoever writes an issue or a header, so the
/// extra fsync (about 10% of the commit rate here, `benches/commit_modes.rs`) is
/// paid. Quick repair is left off: it made commits 5x slower to save a repair that
/// only a crash needs (about 0.4 s per 100k events).
pub(super) const TWO_PHASE_COMMIT: bool = true;

/// How often a database that failed is tried again.
const REOPEN_INTERVAL: Duration = Duration::from_millis(500);

/// Longest time applied deliveries stay in non-durable commits. Each durable commit
/// costs two fsyncs and the pages the batch dirtied; once a second they are a small
/// part of the disk's work, and at most a second of deliveries is applied again from
/// the log after a crash.
const DURABLE_EVERY: Duration = Duration::from_secs(1);

/// Shortest time between two commits that only apply deliveries. Acks do not wait
/// for the apply (reads find answered deliveries in the tail), so deliveries arriving
/// within this time share one transaction: each commit rewrites the B-tree pages it
/// touches and wakes every follower of the change feed, and the fewer commits there
/// are, the less of both a delivery pays. Lists, statistics and search see a delivery
/// at most this much later.
const APPLY_EVERY: Duration = Duration::from_millis(10);

/// How the writer's commits have been going, for health.
#[derive(Debug, Default)]
pub struct WriteHealth {
    /// Time of the last failed commit (0: none).
    last_failure_ms: AtomicI64,
    /// From a failed commit until the next one succeeds: the store cannot write
    /// (even once the file is reopened, a disk that is still full refuses again).
    failing: AtomicBool,
}

impl WriteHealth {
    fn failed(&self) {
        self.last_failure_ms
            .store(timestamp::now_ms(), Ordering::Relaxed);
        self.failing.store(true, Ordering::Relaxed);
    }

    fn succeeded(&self) {
        self.failing.store(false, Ordering::Relaxed);
    }

    /// When a commit last failed, if ever.
    pub fn last_failure_ms(&self) -> Option<i64> {
        Some(self.last_failure_ms.load(Ordering::Relaxed)).filter(|&at| at > 0)
    }

    /// True while no durable commit has succeeded since a commit failed.
    pub fn failing(&self) -> bool {
        self.failing.load(Ordering::Relaxed)
    }
}

pub struct Writer {
    pub db: Arc<DbSlot>,
    /// The highest committed change id: the change feed later stages follow.
    pub committed: watch::Sender<u64>,
    pub health: Arc<WriteHealth>,
    pub on_commit: Option<super::CommitObserver>,
    pub progress: Arc<LogProgress>,
    pub tail: Arc<Tail>,
    /// When the last commit that waited for the disk finished.
    pub last_durable: Instant,
    /// The acknowledgement log, read again when a reopened database has rolled back
    /// to its last durable commit.
    pub log_dir: std::path::PathBuf,
    /// Some commit since the last durable one was not durable.
    pub nondurable: bool,
    /// When the last commit finished.
    pub last_commit: Instant,
    /// The insight windows kept in memory: given the hourly rows each commit
    /// changed, and reset when the database is reopened.
    pub windows: Arc<super::actions::InsightWindows>,
}

impl Writer {
    /// Runs until every sender is dropped. Blocking: call on its own thread.
    pub fn run(mut self, mut queue: mpsc::Receiver<WriteRequest>) {
        let timer = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .expect("a timer for the writer thread");
        loop {
            // While something is not durable, wait no longer than its deadline.
            let first = if self.nondurable {
                let left = DURABLE_EVERY.saturating_sub(self.last_durable.elapsed());
                // The timer is made inside the runtime that drives it.
                let waited =
                    timer.block_on(async { tokio::time::timeout(left, queue.recv()).await });
                match waited {
                    Ok(Some(request)) => request,
                    Ok(None) => break,
                    Err(_) => {
                        self.flush_or_recover(&mut queue);
                        continue;
                    }
                }
            } else {
                match queue.blocking_recv() {
                    Some(request) => request,
                    None => break,
                }
            };
            let mut batch = vec![first];
            while batch.len() < MAX_BATCH {
                match queue.try_recv() {
                    Ok(request) => batch.push(request),
                    Err(_) => break,
                }
            }
            self.gather_applies(&timer, &mut queue, &mut batch);
            let applies = batch
                .iter()
                .any(|r| matches!(r, WriteRequest::Apply { .. }));
            if let Err(error) = self.commit_batch(batch) {
                // Deliveries of a failed batch are only in the log now; reopening
                // the database applies them again from it.
                if (applies || self.flush().is_err()) && !self.recover(&mut queue, &error) {
                    return;
                }
            } else if self.nondurable && self.last_durable.elapsed() >= DURABLE_EVERY {
                self.flush_or_recover(&mut queue);
            }
        }
        if self.nondurable
            && let Err(error) = self.flush()
        {
            tracing::warn!(%error, "final durable commit failed; the log holds what it covers");
        }
    }

    /// Holds a batch of nothing but deliveries to apply until `APPLY_EVERY` has
    /// passed since the last commit, taking in what arrives meanwhile. Anything else
    /// (a status change, a cursor, a retirement) ends the wait: its caller waits for
    /// the commit.
    fn gather_applies(
        &self,
        timer: &tokio::runtime::Runtime,
        queue: &mut mpsc::Receiver<WriteRequest>,
        batch: &mut Vec<WriteRequest>,
    ) {
        let only_applies = |batch: &[WriteRequest]| {
            batch
                .iter()
                .all(|r| matches!(r, WriteRequest::Apply { .. }))
        };
        let until = self.last_commit + APPLY_EVERY;
        while batch.len() < MAX_BATCH && only_applies(batch) {
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            match timer.block_on(async { tokio::time::timeout(left, queue.recv()).await }) {
                Ok(Some(request)) => batch.push(request),
                Ok(None) | Err(_) => break,
            }
        }
    }

    fn flush_or_recover(&mut self, queue: &mut mpsc::Receiver<WriteRequest>) {
        if let Err(error) = self.flush() {
            tracing::error!(%error, "durable commit failed");
            self.health.failed();
            self.recover(queue, &error);
        }
    }

    /// An empty durable commit, which makes every earlier non-durable one durable,
    /// with the log position they recorded.
    fn flush(&mut self) -> Result<(), StoreError> {
        let mut txn = self.db.get()?.begin_write()?;
        txn.set_durability(Durability::Immediate)?;
        txn.set_two_phase_commit(TWO_PHASE_COMMIT);
        txn.commit()?;
        self.durable_now();
        Ok(())
    }

    /// After a durable commit: the log up to what is applied can go.
    fn durable_now(&mut self) {
        self.last_durable = Instant::now();
        self.nondurable = false;
        self.health.succeeded();
        let applied = self.progress.applied.load(Ordering::Acquire);
        self.progress.durable.store(applied, Ordering::Release);
    }

    /// After an I/O failure: gives up the database handle and reopens the file
    /// once it can, refusing requests meanwhile (callers answer 503; GitHub and
    /// other senders retry). Returns false if every sender went away meanwhile.
    fn recover(&mut self, queue: &mut mpsc::Receiver<WriteRequest>, cause: &StoreError) -> bool {
        tracing::error!(%cause, "the store cannot write; refusing writes until it can reopen the database");
        // The reopened file is rolled back, then the log applied again without
        // passing the windows its deltas: they are summed again once asked for.
        self.windows.reset();
        self.db.close(cause.to_string());
        let refusal = StoreError::Unavailable(cause.to_string());
        loop {
            let pause_until = Instant::now() + REOPEN_INTERVAL;
            while Instant::now() < pause_until {
                match queue.try_recv() {
                    Ok(request) => refuse(request, &refusal),
                    Err(mpsc::error::TryRecvError::Empty) => {
                        std::thread::sleep(Duration::from_millis(20));
                    }
                    Err(mpsc::error::TryRecvError::Disconnected) => return false,
                }
            }
            // The reopened file is rolled back to the last durable commit: the
            // deliveries the log holds past it are applied again before anyone
            // reads it.
            let mut reapplied = 0;
            let reopened = self.db.reopen_then(|db| {
                let entries = logged_after(&self.log_dir, db)?;
                reapplied = entries.len();
                write_entries(db, &entries, &self.committed)?;
                Ok(entries.last().map(|e| e.seq))
            });
            match reopened {
                Ok(last) => {
                    self.windows.reset();
                    tracing::info!(reapplied, "database reopened; writes resume");
                    if let Some(seq) = last {
                        self.applied_through(seq);
                        // Wakes whoever waits for these to be visible.
                        self.committed.send_modify(|_| {});
                    }
                    self.durable_now();
                    return true;
                }
                Err(error) => tracing::debug!(%error, "database not reopened yet"),
            }
        }
    }

    /// Commits one batch and answers its callers; the error, if the commit failed.
    fn commit_batch(&mut self, batch: Vec<WriteRequest>) -> Result<(), StoreError> {
        // Applied deliveries are in the log already, and rejected-log entries and
        // cursors are worth no fsync of their own: those ride on the next durable
        // commit.
        let durable = batch.iter().any(|r| {
            matches!(
                r,
                WriteRequest::Update { .. }
                    | WriteRequest::Retire { .. }
                    | WriteRequest::RemoveTests { .. }
                    | WriteRequest::Forwarding { .. }
                    | WriteRequest::Tokens { .. }
            )
        });
        let durability = if durable {
            Durability::Immediate
        } else {
            Durability::None
        };
        let last_seq = batch
            .iter()
            .filter_map(|r| match r {
                WriteRequest::Apply { entries, .. } => entries.last().map(|e| e.seq),
                _ => None,
            })
            .max();
        match self.write(&batch, durability) {
            Ok((outcomes, last_change)) => {
                if let Some(seq) = last_seq {
                    self.applied_through(seq);
                }
                if durable {
                    self.durable_now();
                } else {
                    self.nondurable = true;
                }
                if last_change > *self.committed.borrow() {
                    self.committed.send_replace(last_change);
                }
                for (request, outcome) in batch.into_iter().zip(outcomes) {
                    match (request, outcome) {
                        (WriteRequest::Apply { appended_at, .. }, Outcome::Applied) => {
                            let waited = appended_at.elapsed().as_micros() as u64;
                            self.progress.last_apply_us.store(waited, Ordering::Relaxed);
                        }
                        (WriteRequest::Update { reply, .. }, Outcome::Update(record)) => {
                            let _ = reply.send(Ok(record.map(|r| *r)));
                        }
                        (WriteRequest::Retire { reply, .. }, Outcome::Retire(count))
                        | (WriteRequest::RemoveTests { reply, .. }, Outcome::Removed(count)) => {
                            let _ = reply.send(Ok(count));
                        }
                        (WriteRequest::Forwarding { reply, .. }, Outcome::Forwarding) => {
                            let _ = reply.send(Ok(()));
                        }
                        (WriteRequest::Tokens { reply, .. }, Outcome::Tokens(applied)) => {
                            let _ = reply.send(Ok(applied));
                        }
                        (WriteRequest::Reject(_) | WriteRequest::Ignore(_), Outcome::Rejected)
                        | (WriteRequest::Cursor { .. }, Outcome::Cursor) => {}
                        _ => unreachable!("outcomes are produced in request order"),
                    }
                }
            }
            Err(error) => {
                tracing::error!(%error, batch = batch.len(), "group commit failed; requests answered with an error");
                self.health.failed();
                // A failed commit is the disk's or the file's doing, not the caller's.
                let answer = match &error {
                    StoreError::Database(reason) => StoreError::Unavailable(reason.clone()),
                    other => other.clone(),
                };
                for request in batch {
                    refuse(request, &answer);
                }
                return Err(error);
            }
        }
        Ok(())
    }

    /// Deliveries through `seq` are visible in redb: out of the tail.
    fn applied_through(&self, seq: u64) {
        let applied = self
            .progress
            .applied
            .fetch_max(seq, Ordering::AcqRel)
            .max(seq);
        self.tail.applied_through(applied);
    }

    fn write(
        &mut self,
        batch: &[WriteRequest],
        durability: Durability,
    ) -> Result<(Vec<Outcome>, u64), StoreError> {
        let now = Instant::now();
        let mut txn = self.db.get()?.begin_write()?;
        txn.set_durability(durability)?;
        txn.set_two_phase_commit(TWO_PHASE_COMMIT);
        let (outcomes, last_change, changed_rows) = apply_batch(&txn, batch)?;
        let applied = now.elapsed();
        self.windows.committed(changed_rows, || txn.commit())?;
        self.last_commit = Instant::now();
        tracing::debug!(
            batch = batch.len(),
            insert_us = applied.as_micros() as u64,
            commit_us = (now.elapsed() - applied).as_micros() as u64,
            "group commit"
        );
        if let Some(observe) = &self.on_commit {
            observe(batch.len(), now.elapsed());
        }
        Ok((outcomes, last_change))
    }
}
