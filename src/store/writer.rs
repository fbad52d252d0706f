//! The single writer: one thread owns every write transaction and packs all the
//! requests waiting in its queue into one durable commit (group commit). Each caller
//! is answered only after that commit has reached the disk.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::{Duration, Instant};

use redb::{Durability, ReadableTable, WriteTransaction};
use tokio::sync::{mpsc, oneshot, watch};

use super::dedup::ContentWindow;
use super::events::{self, StatusUpdate};
use super::rejected::{self, RejectedDelivery};
use super::slot::DbSlot;
use super::tables::{WriteTables, meta};
use super::{EventRecord, StoreError};
use crate::domain::{ContentKey, timestamp};

/// Most requests committed in one transaction. Bounds the time one commit holds the
/// callers of the batch, and the memory of one transaction.
const MAX_BATCH: usize = 1024;

/// redb's two-phase commit: the new root is made live by a second fsync instead of
/// being trusted on its (non-cryptographic) checksum, which someone who controls
/// bytes in a transaction could in theory forge into a torn commit that looks whole.
/// Deliveries carry bytes chosen by whoever writes an issue or a header, so the
/// extra fsync (about 10% of the commit rate here, `benches/commit_modes.rs`) is
/// paid. Quick repair is left off: it made commits 5x slower to save a repair that
/// only a crash needs (about 0.4 s per 100k events).
const TWO_PHASE_COMMIT: bool = true;

/// How often a database that failed is tried again.
const REOPEN_INTERVAL: Duration = Duration::from_millis(500);

/// A delivery made ready for storage by its caller (encoding and compression happen
/// there, in parallel, so the writer only inserts).
pub struct PreparedEvent {
    pub content_key: Option<ContentKey>,
    /// Known to duplicate the content of this stored delivery (an imported
    /// duplicate): stored as its duplicate whatever the dedup window says.
    pub duplicate_of: Option<String>,
    pub record: EventRecord,
    pub compressed_body: Vec<u8>,
    pub encoded_headers: Vec<u8>,
}

pub enum WriteRequest {
    Ingest {
        event: Box<PreparedEvent>,
        reply: oneshot::Sender<Result<IngestOutcome, StoreError>>,
    },
    Update {
        update: StatusUpdate,
        reply: oneshot::Sender<Result<Option<EventRecord>, StoreError>>,
    },
    /// Retention: retire these events; answers how many were still there.
    Retire {
        seqs: Vec<u64>,
        reply: oneshot::Sender<Result<usize, StoreError>>,
    },
    /// Remove these test events entirely; answers how many were removed.
    RemoveTests {
        seqs: Vec<u64>,
        reply: oneshot::Sender<Result<usize, StoreError>>,
    },
    /// A delivery refused at the edge, for the rejected log. Nobody waits for it.
    Reject(Box<RejectedDelivery>),
}

/// What the store did with a delivery. Both variants are durable when returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IngestOutcome {
    Stored {
        seq: u64,
    },
    /// `seq` is where the delivery id is found: the earlier copy for a redelivery,
    /// the duplicate's own event for a content duplicate.
    Duplicate {
        seq: u64,
        reason: DuplicateReason,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DuplicateReason {
    /// The delivery id is already stored (a redelivery, or a racing copy).
    DeliveryId,
    /// The same content came within the dedup window under another delivery id:
    /// stored, marked `duplicate` of that one (`None` if it was retired meanwhile).
    Content { of: Option<String> },
}

enum Outcome {
    Ingest(IngestOutcome),
    Update(Option<Box<EventRecord>>),
    Retire(usize),
    Removed(usize),
    Rejected,
}

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
    pub window: ContentWindow,
    /// The highest committed change id: the change feed later stages follow.
    pub committed: watch::Sender<u64>,
    pub health: Arc<WriteHealth>,
    pub on_commit: Option<super::CommitObserver>,
    /// When the last commit that waited for the disk finished.
    pub last_durable: Instant,
    /// When the last commit of any kind finished.
    pub last_commit: Instant,
}

impl Writer {
    /// Runs until every sender is dropped. Blocking: call on its own thread.
    pub fn run(mut self, mut queue: mpsc::Receiver<WriteRequest>) {
        while let Some(first) = queue.blocking_recv() {
            let mut batch = vec![first];
            while batch.len() < MAX_BATCH {
                match queue.try_recv() {
                    Ok(request) => batch.push(request),
                    Err(_) => break,
                }
            }
            if let Err(error) = self.commit_batch(batch)
                && self.flush().is_err()
            {
                // Not this batch alone: the database refuses everything now.
                if !self.recover(&mut queue, &error) {
                    return;
                }
            }
        }
        // Rejected-log entries may still be in non-durable commits: flush them.
        if self.last_durable < self.last_commit
            && let Err(error) = self.flush()
        {
            tracing::warn!(%error, "final flush of the rejected log failed");
        }
    }

    /// An empty durable commit, which makes every earlier non-durable one durable.
    fn flush(&self) -> Result<(), StoreError> {
        let mut txn = self.db.get()?.begin_write()?;
        txn.set_durability(Durability::Immediate)?;
        txn.set_two_phase_commit(TWO_PHASE_COMMIT);
        txn.commit()?;
        Ok(())
    }

    /// After an I/O failure: gives up the database handle and reopens the file
    /// once it can, refusing requests meanwhile (callers answer 503; GitHub and
    /// other senders retry). Returns false if every sender went away meanwhile.
    fn recover(&mut self, queue: &mut mpsc::Receiver<WriteRequest>, cause: &StoreError) -> bool {
        tracing::error!(%cause, "the store cannot write; refusing writes until it can reopen the database");
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
            match self.db.reopen() {
                Ok(()) => {
                    tracing::info!("database reopened; writes resume");
                    return true;
                }
                Err(error) => tracing::debug!(%error, "database not reopened yet"),
            }
        }
    }

    /// Commits one batch and answers its callers; the error, if the commit failed.
    fn commit_batch(&mut self, batch: Vec<WriteRequest>) -> Result<(), StoreError> {
        let now = Instant::now();
        // A batch of rejected-log entries only is not worth an fsync of its own (a
        // flood of bad requests must not cost a disk flush each): it rides on the
        // next durable commit. During a flood, the first such batch a second or more
        // after the last durable commit is made durable itself; the last entries of a
        // flood wait for the next commit or the flush at shutdown.
        let durable = !batch.iter().all(|r| matches!(r, WriteRequest::Reject(_)))
            || now.duration_since(self.last_durable) >= Duration::from_secs(1);
        let durability = if durable {
            Durability::Immediate
        } else {
            Durability::None
        };
        match self.write(&batch, now, durability) {
            Ok((outcomes, last_change)) => {
                self.last_commit = Instant::now();
                if durable {
                    self.last_durable = self.last_commit;
                    // Only a commit that reached the disk shows the disk takes writes
                    // again; a non-durable one (rejected-log entries) may not have.
                    self.health.succeeded();
                }
                for (request, outcome) in batch.iter().zip(&outcomes) {
                    if let (
                        WriteRequest::Ingest { event, .. },
                        Outcome::Ingest(IngestOutcome::Stored { seq }),
                    ) = (request, outcome)
                        && let Some(key) = event.content_key
                    {
                        self.window.remember(key, *seq, now);
                    }
                }
                if last_change > *self.committed.borrow() {
                    self.committed.send_replace(last_change);
                }
                for (request, outcome) in batch.into_iter().zip(outcomes) {
                    match (request, outcome) {
                        (WriteRequest::Ingest { reply, .. }, Outcome::Ingest(outcome)) => {
                            let _ = reply.send(Ok(outcome));
                        }
                        (WriteRequest::Update { reply, .. }, Outcome::Update(record)) => {
                            let _ = reply.send(Ok(record.map(|r| *r)));
                        }
                        (WriteRequest::Retire { reply, .. }, Outcome::Retire(count))
                        | (WriteRequest::RemoveTests { reply, .. }, Outcome::Removed(count)) => {
                            let _ = reply.send(Ok(count));
                        }
                        (WriteRequest::Reject(_), Outcome::Rejected) => {}
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

    fn write(
        &self,
        batch: &[WriteRequest],
        now: Instant,
        durability: Durability,
    ) -> Result<(Vec<Outcome>, u64), StoreError> {
        let mut txn = self.db.get()?.begin_write()?;
        txn.set_durability(durability)?;
        txn.set_two_phase_commit(TWO_PHASE_COMMIT);
        let (outcomes, last_change) = self.apply_batch(&txn, batch, now)?;
        let applied = now.elapsed();
        txn.commit()?;
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

    /// Applies every request of the batch; returns their outcomes and the last change id.
    fn apply_batch(
        &self,
        txn: &WriteTransaction,
        batch: &[WriteRequest],
        now: Instant,
    ) -> Result<(Vec<Outcome>, u64), StoreError> {
        let mut t = WriteTables::open(txn)?;
        let mut next_seq = t.meta.get(meta::NEXT_SEQ)?.map_or(1, |v| v.value());
        let mut next_change = t.meta.get(meta::NEXT_CHANGE)?.map_or(1, |v| v.value());
        let mut changed = |t: &mut WriteTables, seq: u64| -> Result<(), StoreError> {
            t.changes.insert(next_change, seq)?;
            next_change += 1;
            Ok(())
        };
        let mut delivery_dups = 0;
        let mut content_dups = 0;
        // Keys stored earlier in this same batch: not in the window until the commit.
        let mut batch_keys: HashMap<ContentKey, u64> = HashMap::new();
        let mut outcomes = Vec::with_capacity(batch.len());

        for request in batch {
            let event = match request {
                WriteRequest::Update { update, .. } => {
                    let record = events::update_status(&mut t, update)?;
                    if record.is_some() {
                        changed(&mut t, update.seq)?;
                    }
                    outcomes.push(Outcome::Update(record.map(Box::new)));
                    continue;
                }
                WriteRequest::Retire { seqs, .. } => {
                    let mut retired = 0;
                    for seq in seqs {
                        if events::retire(&mut t, *seq)? {
                            changed(&mut t, *seq)?;
                            retired += 1;
                        }
                    }
                    outcomes.push(Outcome::Retire(retired));
                    continue;
                }
                WriteRequest::RemoveTests { seqs, .. } => {
                    let mut removed = 0;
                    for seq in seqs {
                        if events::remove_test(&mut t, *seq)? {
                            changed(&mut t, *seq)?;
                            removed += 1;
                        }
                    }
                    outcomes.push(Outcome::Removed(removed));
                    continue;
                }
                WriteRequest::Reject(entry) => {
                    rejected::insert(&mut t, entry)?;
                    outcomes.push(Outcome::Rejected);
                    continue;
                }
                WriteRequest::Ingest { event, .. } => event,
            };
            let id = event.record.delivery_id.as_str();
            let known = match t.deliveries.get(id)? {
                Some(seq) => Some(seq.value()),
                None => t.content_duplicates.get(id)?.map(|v| v.value().0),
            };
            if let Some(seq) = known {
                delivery_dups += 1;
                outcomes.push(Outcome::Ingest(IngestOutcome::Duplicate {
                    seq,
                    reason: DuplicateReason::DeliveryId,
                }));
                continue;
            }

            let same_content = match &event.duplicate_of {
                Some(original) => t.deliveries.get(original.as_str())?.map(|s| s.value()),
                None => event
                    .content_key
                    .filter(|_| self.window.is_enabled())
                    .and_then(|key| {
                        batch_keys
                            .get(&key)
                            .copied()
                            .or_else(|| self.window.lookup(&key, now))
                    }),
            };
            let seq = next_seq;
            next_seq += 1;
            if let Some(original) = same_content {
                let of = events::insert_content_duplicate(&mut t, seq, event, original)?;
                changed(&mut t, seq)?;
                content_dups += 1;
                outcomes.push(Outcome::Ingest(IngestOutcome::Duplicate {
                    seq,
                    reason: DuplicateReason::Content { of },
                }));
                continue;
            }

            events::insert(&mut t, seq, event)?;
            changed(&mut t, seq)?;
            if let Some(key) = event.content_key.filter(|_| self.window.is_enabled()) {
                batch_keys.insert(key, seq);
            }
            outcomes.push(Outcome::Ingest(IngestOutcome::Stored { seq }));
        }

        t.flush()?;
        t.meta.insert(meta::NEXT_SEQ, next_seq)?;
        t.meta.insert(meta::NEXT_CHANGE, next_change)?;
        for (key, added) in [
            (meta::DELIVERY_DUPLICATES, delivery_dups),
            (meta::CONTENT_DUPLICATES, content_dups),
        ] {
            if added > 0 {
                let count = t.meta.get(key)?.map_or(0, |v| v.value());
                t.meta.insert(key, count + added)?;
            }
        }
        Ok((outcomes, next_change - 1))
    }
}

/// Answers a request that will not be carried out.
fn refuse(request: WriteRequest, error: &StoreError) {
    match request {
        WriteRequest::Ingest { reply, .. } => {
            let _ = reply.send(Err(error.clone()));
        }
        WriteRequest::Update { reply, .. } => {
            let _ = reply.send(Err(error.clone()));
        }
        WriteRequest::Retire { reply, .. } | WriteRequest::RemoveTests { reply, .. } => {
            let _ = reply.send(Err(error.clone()));
        }
        WriteRequest::Reject(_) => {}
    }
}
