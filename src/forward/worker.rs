//! One target's worker: follows the store with the target's cursor, sends what
//! matches (up to `concurrency` at once, one at a time per repository when
//! `ordered`), and moves the cursor past a delivery only once the target took it
//! or it was marked failed for the target. What is done past the cursor is in the
//! target's [`Journal`](super::journal): after a restart or a crash of the process
//! it resumes from the cursor, skips what the journal holds, and sends again what
//! was in flight (at least once).

use std::collections::{BTreeSet, HashSet, VecDeque};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::Target;
use super::breaker::{Turn, backoff};
use super::send::{self, Outbound};
use super::status::{Attempt, FailedDelivery};
use crate::domain::timestamp;
use crate::store::{EventRecord, ForwardingChange, Status, Store, StoredEvent};

/// Matching deliveries read ahead of what is sent.
const READ_AHEAD: usize = 512;
/// The read-ahead is filled again once it holds fewer than this: a target catching
/// up reads hundreds of deliveries at once, not the few done since the last read
/// (each read is a trip to a blocking thread and a read transaction).
const REFILL_BELOW: usize = READ_AHEAD / 2;
/// Body bytes read from the store at once (besides the first event).
const READ_BYTES: usize = 16 << 20;
/// After a commit, wait this long before reading, to take several commits at once.
const COALESCE: Duration = Duration::from_millis(5);
/// The cursor is saved (durably: a target sees every repeat) at most this often;
/// what is done past it is in the journal meanwhile, which each save shortens. Five
/// durable commits a second are a small part of the writer's work, and each also
/// makes the deliveries applied so far durable.
const SAVE_EVERY: Duration = Duration::from_millis(200);
/// Attempts kept with a failed delivery.
const KEPT_ATTEMPTS: usize = 10;
/// Pause after the store could not be read.
const READ_RETRY: Duration = Duration::from_secs(1);

pub enum Command {
    /// Send these failed deliveries again.
    Resend(Vec<u64>),
}

struct Done {
    seq: u64,
    /// The repository it held, for an ordered target.
    holds: Option<String>,
    resend: bool,
    outcome: Outcome,
}

enum Outcome {
    Taken,
    Failed(FailedDelivery),
    /// A failed delivery to re-send was retired meanwhile: nothing is left to send.
    Gone,
}

pub struct Worker {
    target: Arc<Target>,
    store: Store,
    /// Every stored delivery up to here was taken, failed, or did not match.
    cursor: u64,
    /// Every stored delivery up to here is read.
    read: u64,
    /// Seqs past the cursor done before a restart (the journal's): not sent again.
    done_before: HashSet<u64>,
    waiting: VecDeque<Outbound>,
    /// Matching deliveries read and not done (waiting or running).
    pending: BTreeSet<u64>,
    /// Repositories with a delivery running (ordered targets).
    busy: HashSet<String>,
    resends: VecDeque<u64>,
    resending: HashSet<u64>,
    running: JoinSet<Done>,
    saved: u64,
    saved_at: Instant,
}

impl Worker {
    pub fn new(target: Arc<Target>, store: Store, cursor: u64, done_before: HashSet<u64>) -> Self {
        target.status.cursor.store(cursor, Ordering::Relaxed);
        Self {
            target,
            store,
            cursor,
            read: cursor,
            done_before,
            waiting: VecDeque::new(),
            pending: BTreeSet::new(),
            busy: HashSet::new(),
            resends: VecDeque::new(),
            resending: HashSet::new(),
            running: JoinSet::new(),
            saved: cursor,
            saved_at: Instant::now(),
        }
    }

    pub async fn run(
        mut self,
        mut commands: mpsc::Receiver<Command>,
        mut stop: watch::Receiver<bool>,
    ) {
        let mut feed = self.store.subscribe();
        let mut more = true;
        // Timers kept across turns of the loop (one per delivery done), not made anew.
        let read_soon = tokio::time::sleep(Duration::ZERO);
        let save_soon = tokio::time::sleep(Duration::ZERO);
        tokio::pin!(read_soon, save_soon);
        let (mut read_armed, mut save_armed) = (false, false);
        loop {
            if *stop.borrow() {
                break;
            }
            if more && self.waiting.len() < REFILL_BELOW {
                feed.borrow_and_update();
                match self.fill().await {
                    Ok(found) => more = found,
                    Err(error) => {
                        tracing::warn!(target = %self.target.spec.name, %error, "forwarding cannot read the store");
                        tokio::select! {
                            _ = stop.changed() => break,
                            _ = tokio::time::sleep(READ_RETRY) => {}
                        }
                    }
                }
            }
            self.dispatch();
            self.advance();
            if more && self.waiting.len() < REFILL_BELOW {
                continue;
            }
            if !save_armed && self.cursor > self.saved {
                save_soon.as_mut().reset(self.saved_at + SAVE_EVERY);
                save_armed = true;
            }
            tokio::select! {
                biased;
                _ = stop.changed() => break,
                Some(done) = self.running.join_next(), if !self.running.is_empty() => {
                    // And every other one done by now: one turn of the loop for all.
                    let mut next = Some(done);
                    while let Some(done) = next {
                        match done {
                            Ok(done) => self.finish(done).await,
                            Err(error) => tracing::error!(%error, "a forwarding task panicked"),
                        }
                        next = self.running.try_join_next();
                    }
                }
                Some(command) = commands.recv() => match command {
                    Command::Resend(seqs) => {
                        for seq in seqs {
                            if self.resending.insert(seq) {
                                self.resends.push_back(seq);
                            }
                        }
                    }
                },
                // Deliveries keep going while the read waits for more commits.
                changed = feed.changed(), if !more && !read_armed => match changed {
                    Ok(()) => {
                        read_soon.as_mut().reset(Instant::now() + COALESCE);
                        read_armed = true;
                    }
                    Err(_) => break,
                },
                () = &mut read_soon, if read_armed => {
                    read_armed = false;
                    more = true;
                }
                () = &mut save_soon, if save_armed => {
                    save_armed = false;
                    self.save();
                }
            }
        }
        // What is in flight now is sent again after the restart. The last cursor is
        // committed before the worker ends, so a worker started next (a PUT) reads it.
        self.running.abort_all();
        let last = ForwardingChange::Saved {
            name: self.target.spec.name.clone(),
            seq: self.cursor,
        };
        match self.store.change_forwarding(vec![last]).await {
            Ok(()) => self.target.journal.saved(self.cursor),
            Err(error) => tracing::warn!(%error, "cannot save a forwarding cursor"),
        }
    }

    /// Reads what follows `read`; true when it stopped at a limit (there is more).
    async fn fill(&mut self) -> Result<bool, String> {
        let room = READ_AHEAD - self.waiting.len();
        let target = self.target.clone();
        let batch = self
            .store
            .events_to_forward(self.read, room, READ_BYTES, move |record| {
                forwarded(record) && target.filter.matches(record)
            })
            .await
            .map_err(|e| e.to_string())?;
        self.read = batch.last;
        for event in batch.events {
            if !self.done_before.remove(&event.seq) {
                self.pending.insert(event.seq);
                self.waiting.push_back(outbound(event));
            }
        }
        if !self.done_before.is_empty() {
            // Those not read (filtered out since, or retired) are dropped too.
            let read = self.read;
            self.done_before.retain(|&seq| seq > read);
        }
        Ok(batch.more)
    }

    fn dispatch(&mut self) {
        let limit = self.target.spec.concurrency as usize;
        while self.running.len() < limit {
            let Some(seq) = self.resends.pop_front() else {
                break;
            };
            let (target, store) = (self.target.clone(), self.store.clone());
            self.running.spawn(resend(target, store, seq));
        }
        let ordered = self.target.spec.ordered;
        let mut blocked = HashSet::new();
        let mut next = 0;
        while self.running.len() < limit && next < self.waiting.len() {
            let holds = if ordered {
                let repository = self.waiting[next].repository.clone().unwrap_or_default();
                if self.busy.contains(&repository) || blocked.contains(&repository) {
                    // Later deliveries of a repository wait for its earlier ones.
                    blocked.insert(repository);
                    next += 1;
                    continue;
                }
                self.busy.insert(repository.clone());
                Some(repository)
            } else {
                None
            };
            let delivery = self.waiting.remove(next).expect("next is in bounds");
            let target = self.target.clone();
            self.running.spawn(async move {
                let seq = delivery.seq;
                let outcome = match deliver(&target, &delivery, 0).await {
                    Ok(()) => {
                        // At once, so a kill from here on does not send it again.
                        target.journal.record(seq);
                        Outcome::Taken
                    }
                    Err(attempts) => Outcome::Failed(failed_delivery(&delivery, attempts)),
                };
                Done {
                    seq,
                    holds,
                    resend: false,
                    outcome,
                }
            });
        }
        let in_flight = self.running.len() as u64;
        self.target
            .status
            .in_flight
            .store(in_flight, Ordering::Relaxed);
    }

    async fn finish(&mut self, done: Done) {
        if let Some(repository) = &done.holds {
            self.busy.remove(repository);
        }
        let name = self.target.spec.name.clone();
        let status = &self.target.status;
        let cleared = || ForwardingChange::Cleared {
            target: name.clone(),
            seqs: vec![done.seq],
        };
        let change = match &done.outcome {
            Outcome::Gone => Some(cleared()),
            Outcome::Taken => {
                status.delivered.fetch_add(1, Ordering::Relaxed);
                self.target.metrics_delivered();
                done.resend.then(cleared)
            }
            Outcome::Failed(failed) => {
                status.failed.fetch_add(1, Ordering::Relaxed);
                self.target.metrics_failed();
                tracing::warn!(target = %name, seq = done.seq, delivery = %failed.delivery_id, "delivery failed for the target after its attempts");
                Some(ForwardingChange::Failed {
                    target: name.clone(),
                    seq: done.seq,
                    record: serde_json::to_vec(failed).expect("records serialize"),
                })
            }
        };
        // Recorded durably before the cursor may pass it: a failed delivery is never
        // forgotten.
        if let Some(change) = change {
            while let Err(error) = self.store.change_forwarding(vec![change.clone()]).await {
                tracing::warn!(%error, "cannot record a forwarding outcome; trying again");
                tokio::time::sleep(READ_RETRY).await;
            }
        }
        if done.resend {
            self.resending.remove(&done.seq);
        } else {
            if matches!(done.outcome, Outcome::Failed(_)) {
                self.target.journal.record(done.seq);
            }
            self.pending.remove(&done.seq);
        }
    }

    fn advance(&mut self) {
        self.cursor = self.pending.first().map_or(self.read, |first| first - 1);
        self.target
            .status
            .cursor
            .store(self.cursor, Ordering::Relaxed);
    }

    /// Saves the cursor durably (in cluster mode through the cluster's log, for the
    /// node that runs the target next); the loop goes on meanwhile, and
    /// `savedCursor` moves once the commit is durable.
    fn save(&mut self) {
        let (store, seq) = (self.store.clone(), self.cursor);
        let name = self.target.spec.name.clone();
        let target = self.target.clone();
        tokio::spawn(async move {
            let saved = ForwardingChange::Saved { name, seq };
            match store.change_forwarding(vec![saved]).await {
                Ok(()) => {
                    target.status.saved_cursor.fetch_max(seq, Ordering::Relaxed);
                    target.journal.saved(seq);
                }
                Err(error) => tracing::warn!(%error, "cannot save a forwarding cursor"),
            }
        });
        self.saved = self.cursor;
        self.saved_at = Instant::now();
    }
}

/// Content duplicates (another hook's copy of a delivery sent already) and
/// synthesized test events are not forwarded.
fn forwarded(record: &EventRecord) -> bool {
    record.status != Status::Duplicate && !record.test
}

fn outbound(event: StoredEvent) -> Outbound {
    Outbound {
        seq: event.seq,
        delivery_id: event.record.origin.delivery_id,
        event: event.record.origin.event,
        repository: event.record.origin.repository,
        received_at_ms: event.record.received_at_ms,
        headers: event.headers,
        body: event.body.into(),
    }
}

fn failed_delivery(delivery: &Outbound, attempts: Vec<Attempt>) -> FailedDelivery {
    FailedDelivery {
        seq: delivery.seq,
        delivery_id: delivery.delivery_id.clone(),
        event: delivery.event.clone(),
        repository: delivery.repository.clone(),
        received_at_ms: delivery.received_at_ms,
        failed_at: timestamp::to_rfc3339(timestamp::now_ms()),
        attempts,
    }
}

/// Tries until the target takes it, or `maxAttempts` counted attempts failed (the
/// attempts, then). `before`: attempts made earlier (a re-send numbers on).
async fn deliver(target: &Target, delivery: &Outbound, before: u32) -> Result<(), Vec<Attempt>> {
    let spec = &target.spec;
    let mut number = before;
    let mut counted = 0;
    let mut attempts = Vec::new();
    loop {
        let turn = target.breaker.turn().await;
        number += 1;
        let attempt = send::attempt(&target.client, spec, delivery, number).await;
        target.metrics_attempt(&attempt);
        if attempt.succeeded() {
            target.breaker.succeeded();
            target.status.record(attempt);
            return Ok(());
        }
        target.status.record(attempt.clone());
        target.breaker.failed(turn);
        if attempts.len() == KEPT_ATTEMPTS {
            attempts.remove(0);
        }
        attempts.push(attempt);
        if turn == Turn::Normal {
            counted += 1;
            if counted >= spec.max_attempts {
                return Err(attempts);
            }
        }
        let base = Duration::from_millis(spec.backoff_ms);
        let max = Duration::from_millis(spec.max_backoff_ms);
        tokio::time::sleep(backoff(counted.max(1), base, max)).await;
    }
}

/// Sends a failed delivery again, on from its recorded attempts.
async fn resend(target: Arc<Target>, store: Store, seq: u64) -> Done {
    let done = |outcome| Done {
        seq,
        holds: None,
        resend: true,
        outcome,
    };
    let Ok(Some(event)) = store.get_seq(seq).await else {
        tracing::warn!(target = %target.spec.name, seq, "a failed delivery to re-send is no longer stored");
        return done(Outcome::Gone);
    };
    let before = match store
        .forwarding_failed(&target.spec.name, seq, seq, 1)
        .await
    {
        Ok((records, _)) => records
            .first()
            .and_then(|(_, record)| serde_json::from_slice::<FailedDelivery>(record).ok())
            .and_then(|record| record.attempts.last().map(|a| a.attempt))
            .unwrap_or(0),
        Err(_) => 0,
    };
    let delivery = outbound(event);
    match deliver(&target, &delivery, before).await {
        Ok(()) => done(Outcome::Taken),
        Err(attempts) => done(Outcome::Failed(failed_delivery(&delivery, attempts))),
    }
}
