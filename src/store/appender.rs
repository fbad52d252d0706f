//! The log writer: the first stop of every delivery. One thread takes every ingest
//! request waiting, decides each one (a delivery id already stored or in flight is a
//! duplicate; content seen within the window makes a content duplicate), gives the
//! new ones their sequence numbers, appends them to the acknowledgement log and makes
//! the batch durable with one `fdatasync`. Then it puts the batch in the acknowledged
//! tail (readable by delivery id at once), queues it for the store writer, which
//! applies it to redb, and answers the callers. A 2xx is therefore sent only for a
//! delivery on disk in the log, and it never waits for redb; the store follows the
//! log.
//!
//! In cluster mode the log is a replicated JetStream stream (`crate::cluster`): a
//! delivery is appended there first, and every node's materializer hands each
//! message of the stream, in stream order, to this thread, which then has no file to
//! write and decides exactly as above. Since every node decides the same messages
//! in the same order from the same state, every node gives a delivery the same seq.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use redb::ReadableDatabase;
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot};

use super::dedup::{ContentWindow, Original};
use super::request::{DuplicateReason, IngestOutcome, PreparedEvent, WriteRequest};
use super::slot::DbSlot;
use super::tables;
use super::tail::Tail;
use super::{EventRecord, StoreError, codec};
use crate::domain::ContentKey;
use crate::log::Log;

/// Most deliveries appended with one `fdatasync`.
const MAX_BATCH: usize = 1024;

pub type Reply = oneshot::Sender<Result<IngestOutcome, StoreError>>;

pub enum AppendRequest {
    Delivery(Append),
    /// Cluster mode: a change from the replicated log, passed on to the store
    /// writer behind the deliveries before it.
    Pass {
        request: WriteRequest,
        stream_seq: u64,
    },
}

/// A delivery to decide, append and apply.
pub struct Append {
    pub event: Box<PreparedEvent>,
    /// `None` for a message of the cluster log another node acknowledged.
    pub reply: Option<Reply>,
    /// Cluster mode: the message's position in the replicated log.
    pub stream_seq: Option<u64>,
}

/// One frame's payload: everything the store needs to rebuild the event.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LogEntry {
    pub seq: u64,
    pub record: EventRecord,
    pub compressed_body: Vec<u8>,
    pub encoded_headers: Vec<u8>,
    /// Seq of the stored event this one duplicates by content.
    pub duplicate_of: Option<u64>,
}

/// Where the log and its application stand, for health and metrics.
#[derive(Debug, Default)]
pub struct LogProgress {
    /// Highest seq appended and synced.
    pub appended: AtomicU64,
    /// Highest seq applied to redb (visible to readers).
    pub applied: AtomicU64,
    /// Highest seq applied by a durable commit: the log up to it can go.
    pub durable: AtomicU64,
    /// How long the last batch waited between its append and its application (µs).
    pub last_apply_us: AtomicU64,
    pub bytes: AtomicU64,
    pub segments: AtomicU64,
    /// Cluster mode: the last message of the replicated log decided here (readable
    /// by delivery id from then on).
    pub stream_decided: AtomicU64,
}

impl LogProgress {
    /// Frames appended but not yet applied.
    pub fn lag(&self) -> u64 {
        let appended = self.appended.load(Ordering::Relaxed);
        appended.saturating_sub(self.applied.load(Ordering::Relaxed))
    }
}

pub struct Appender {
    pub db: Arc<DbSlot>,
    /// The local log; `None` in cluster mode, where the replicated log holds every
    /// delivery before it reaches this thread.
    pub log: Option<Log>,
    pub window: ContentWindow,
    pub next_seq: u64,
    pub writer: mpsc::Sender<WriteRequest>,
    pub progress: Arc<LogProgress>,
    /// What readers find before the store writer has applied it.
    pub tail: Arc<Tail>,
    pub on_append: Option<super::CommitObserver>,
    /// Delivery ids appended but maybe not yet applied, oldest first, so the store
    /// and this map together know every delivery id. Not `tail`: that one empties
    /// when a commit becomes visible, and a read transaction begun before it would
    /// miss the ids in between; this one forgets only before a batch's read begins.
    pub in_flight: HashMap<String, u64>,
    pub in_flight_order: VecDeque<(u64, String)>,
}

/// What the batch decided for one request.
enum Decision {
    Append {
        entry: Box<LogEntry>,
        /// The content key this delivery is the first of, to remember.
        key: Option<ContentKey>,
        /// For a content duplicate, its original's delivery id.
        duplicate_of: Option<String>,
    },
    Answer(IngestOutcome),
}

impl Appender {
    /// Runs until every sender is dropped. Blocking: call on its own thread.
    pub fn run(mut self, mut queue: mpsc::Receiver<AppendRequest>) {
        while let Some(first) = queue.blocking_recv() {
            let mut batch = Vec::new();
            let mut next = Some(first);
            while let Some(request) = next.take() {
                match request {
                    AppendRequest::Delivery(append) => batch.push(append),
                    AppendRequest::Pass {
                        request,
                        stream_seq,
                    } => {
                        // In stream order: behind every delivery before it.
                        if !batch.is_empty() {
                            self.append_batch(std::mem::take(&mut batch));
                        }
                        self.pass(request, stream_seq);
                    }
                }
                if batch.len() < MAX_BATCH {
                    next = queue.try_recv().ok();
                }
            }
            if !batch.is_empty() {
                self.append_batch(batch);
            }
        }
    }

    /// Passes a change on, then the log position it reaches (in a transaction of its
    /// own, or sharing the next group commit): changes are idempotent, so a crash
    /// between the two only applies the change once more.
    fn pass(&mut self, request: WriteRequest, stream_seq: u64) {
        let position = WriteRequest::Apply {
            entries: Vec::new(),
            delivery_duplicates: 0,
            appended_at: Instant::now(),
            stream_position: Some(stream_seq),
        };
        if self.writer.blocking_send(request).is_err()
            || self.writer.blocking_send(position).is_err()
        {
            tracing::warn!("store writer stopped; the change is applied again at the next start");
            return;
        }
        self.progress
            .stream_decided
            .store(stream_seq, Ordering::Release);
    }

    fn forget_applied(&mut self) {
        let applied = self.progress.applied.load(Ordering::Acquire);
        while let Some((seq, _)) = self.in_flight_order.front() {
            if *seq > applied {
                break;
            }
            let (_, id) = self.in_flight_order.pop_front().expect("front exists");
            self.in_flight.remove(&id);
        }
    }

    fn append_batch(&mut self, batch: Vec<Append>) {
        // Ids applied since the last batch are in redb now, for a read begun after.
        self.forget_applied();
        let first_seq = self.next_seq;
        let stream_position = batch.iter().filter_map(|r| r.stream_seq).max();
        let (events, replies): (Vec<_>, Vec<_>) =
            batch.into_iter().map(|r| (*r.event, r.reply)).unzip();
        let decisions = match self.decide(events) {
            Ok(decisions) => decisions,
            Err(error) => return refuse_all(replies, &error),
        };
        let frames: Vec<(u64, Vec<u8>)> = decisions
            .iter()
            .filter_map(|d| match d {
                Decision::Append { entry, .. } => Some((entry.seq, codec::encode(entry))),
                Decision::Answer(_) => None,
            })
            .collect();
        if let Some(log) = self.log.as_mut().filter(|_| !frames.is_empty()) {
            let started = Instant::now();
            let appended = log.append(
                frames
                    .iter()
                    .map(|(seq, payload)| (*seq, payload.as_slice())),
            );
            if let Err(error) = appended {
                tracing::error!(%error, "the acknowledgement log refused a batch");
                self.next_seq = first_seq; // nothing of the batch was kept
                return refuse_all(replies, &StoreError::Unavailable(error.to_string()));
            }
            if let Some(observe) = &self.on_append {
                observe(frames.len(), started.elapsed());
            }
            self.progress.bytes.store(log.bytes(), Ordering::Relaxed);
            self.progress
                .segments
                .store(log.segments() as u64, Ordering::Relaxed);
        }
        if let Some((last, _)) = frames.last() {
            self.progress.appended.store(*last, Ordering::Release);
        }

        let now = Instant::now();
        let mut entries = Vec::new();
        let mut readable = Vec::new();
        let mut outcomes = Vec::with_capacity(decisions.len());
        let mut delivery_duplicates = 0;
        for decision in decisions {
            match decision {
                Decision::Append {
                    entry,
                    key,
                    duplicate_of,
                } => {
                    let entry: Arc<LogEntry> = Arc::from(entry);
                    let id = entry.record.origin.delivery_id.clone();
                    if let Some(key) = key {
                        let original = Original {
                            seq: entry.seq,
                            delivery_id: id.as_str().into(),
                        };
                        self.window
                            .remember(key, original, entry.record.received_at_ms);
                    }
                    outcomes.push(match entry.duplicate_of {
                        Some(_) => IngestOutcome::Duplicate {
                            seq: entry.seq,
                            reason: DuplicateReason::Content {
                                of: duplicate_of.clone(),
                            },
                        },
                        None => IngestOutcome::Stored { seq: entry.seq },
                    });
                    self.in_flight.insert(id.clone(), entry.seq);
                    self.in_flight_order.push_back((entry.seq, id));
                    readable.push((entry.clone(), duplicate_of));
                    entries.push(entry);
                }
                Decision::Answer(outcome) => {
                    delivery_duplicates += 1;
                    outcomes.push(outcome);
                }
            }
        }
        self.tail.add(readable);
        // Queued before anyone is answered, so whatever a caller asks of the store
        // writer next (a status change, a replay) comes after the apply.
        let request = WriteRequest::Apply {
            entries,
            delivery_duplicates,
            appended_at: now,
            stream_position,
        };
        if self.writer.blocking_send(request).is_err() {
            // The store writer is gone (a stop): the log holds the batch, and the
            // next start applies it.
            tracing::warn!("store writer stopped; the logged batch is applied at the next start");
        }
        if let Some(position) = stream_position {
            self.progress
                .stream_decided
                .store(position, Ordering::Release);
        }
        for (reply, outcome) in replies.into_iter().zip(outcomes) {
            if let Some(reply) = reply {
                let _ = reply.send(Ok(outcome));
            }
        }
        self.remove_applied_segments();
    }

    fn remove_applied_segments(&mut self) {
        let Some(log) = self.log.as_mut() else {
            return;
        };
        let durable = self.progress.durable.load(Ordering::Acquire);
        match log.remove_through(durable) {
            Ok(0) => {}
            Ok(removed) => {
                tracing::debug!(removed, durable, "log segments applied durably removed")
            }
            Err(error) => tracing::warn!(%error, "could not remove an applied log segment"),
        }
    }

    /// Decides every request of the batch against the store (read once), the
    /// appended tail and the content window.
    fn decide(&mut self, batch: Vec<PreparedEvent>) -> Result<Vec<Decision>, StoreError> {
        let txn = self.read_transaction()?;
        let deliveries = txn.open_table(tables::DELIVERIES)?;
        // Content duplicates folded before schema 2 left only a row here.
        let folded = txn.open_table(tables::CONTENT_DUPLICATES)?;
        let mut in_batch: HashMap<String, u64> = HashMap::new();
        let mut batch_keys: HashMap<ContentKey, Original> = HashMap::new();
        let mut decisions = Vec::with_capacity(batch.len());
        for event in batch {
            let id = event.record.origin.delivery_id.as_str();
            let known = match in_batch.get(id).or_else(|| self.in_flight.get(id)) {
                Some(seq) => Some(*seq),
                None => match deliveries.get(id)? {
                    Some(seq) => Some(seq.value()),
                    None => folded.get(id)?.map(|v| v.value().0),
                },
            };
            if let Some(seq) = known {
                decisions.push(Decision::Answer(IngestOutcome::Duplicate {
                    seq,
                    reason: DuplicateReason::DeliveryId,
                }));
                continue;
            }
            let key = event.content_key.filter(|_| self.window.is_enabled());
            let original = match &event.duplicate_of {
                Some(original) => in_batch
                    .get(original.as_str())
                    .or_else(|| self.in_flight.get(original.as_str()))
                    .copied()
                    .or(deliveries.get(original.as_str())?.map(|s| s.value()))
                    .map(|seq| Original {
                        seq,
                        delivery_id: original.as_str().into(),
                    }),
                None => key.and_then(|key| {
                    batch_keys
                        .get(&key)
                        .cloned()
                        .or_else(|| self.window.lookup(&key, event.record.received_at_ms))
                }),
            };
            let seq = self.next_seq;
            self.next_seq += 1;
            in_batch.insert(id.to_owned(), seq);
            let remembered = match original {
                Some(_) => None,
                None => key,
            };
            if let Some(key) = remembered {
                let first = Original {
                    seq,
                    delivery_id: id.into(),
                };
                batch_keys.insert(key, first);
            }
            decisions.push(Decision::Append {
                entry: Box::new(LogEntry {
                    seq,
                    record: event.record,
                    compressed_body: event.compressed_body,
                    encoded_headers: event.encoded_headers,
                    duplicate_of: original.as_ref().map(|o| o.seq),
                }),
                key: remembered,
                duplicate_of: original.map(|o| o.delivery_id.to_string()),
            });
        }
        Ok(decisions)
    }
}

impl Appender {
    /// A read of the store to decide against. The local log refuses the batch when
    /// there is none (its callers answer 503 and GitHub sends again); the cluster's
    /// messages are in the replicated log already and cannot be refused, so they
    /// wait until the store reads again.
    fn read_transaction(&self) -> Result<redb::ReadTransaction, StoreError> {
        loop {
            let read = self
                .db
                .get()
                .and_then(|db| db.begin_read().map_err(StoreError::from));
            match read {
                Err(error) if self.log.is_none() => {
                    tracing::warn!(%error, "cannot read the store to decide the cluster log's next messages; retrying");
                    std::thread::sleep(std::time::Duration::from_millis(200));
                }
                read => return read,
            }
        }
    }
}

fn refuse_all(replies: Vec<Option<Reply>>, error: &StoreError) {
    for reply in replies.into_iter().flatten() {
        let _ = reply.send(Err(error.clone()));
    }
}
