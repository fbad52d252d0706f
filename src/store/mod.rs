//! redb, the single source of truth. Everything that names redb lives under this
//! module: the table layout, the group-commit writer, the secondary indexes, the
//! materialized counters and the read queries. Callers get a cheap-to-clone
//! [`Store`] handle.

mod actions;
mod alerts;
mod appender;
mod apply;
mod codec;
mod compression;
mod counters;
mod dedup;
mod error;
mod events;
mod forwarding;
mod index;
mod open;
mod query;
mod reads;
mod record;
mod rejected;
mod request;
mod shared_log;
mod slot;
mod snapshot;
mod stats;
mod tables;
mod tail;
mod tokens;
mod verify;
mod writer;

use std::path::Path;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use redb::{Database, ReadableDatabase};
use tokio::sync::{mpsc, oneshot, watch};

pub use actions::state::{
    BOUNDS_S as ACTIONS_BOUNDS_S, LAYOUT as ACTIONS_ROW, TimeSlots as ActionsTimeSlots,
    metric as actions_metric,
};
pub use actions::{ActionsTotals, InsightCells, LiveJob, WindowSums};
pub use appender::LogProgress;
pub use counters::{HOUR_MS, OPEN_SECURITY_ALERTS};
pub use error::StoreError;
pub use events::StatusUpdate;
pub use forwarding::{ForwardingChange, SavedTarget};
pub use open::{StoreOptions, compact};
use open::{initialize, recent_content_window};
pub use query::{EventQuery, Page};
pub use reads::{HealthFacts, SeqReader, StoredEvent, StoredHeaders};
pub use record::{EventRecord, Fact, Origin, Status};
pub use rejected::{KEEP as REJECTED_KEPT, RejectedDelivery, RejectedLog};
pub use request::{DuplicateReason, IngestOutcome, PreparedEvent};
use shared_log::counted;
pub use shared_log::{Appended, ChangeOutcome, LoggedChange, LoggedDelivery, SharedLog};
pub use snapshot::SnapshotFacts;
pub use stats::{EventStats, JobStats, RepoStats, Statistics, bucket_upper_us};
pub use tables::SCHEMA_VERSION;
pub use tokens::TokenChange;
pub use verify::Difference;

use crate::domain::Delivery;
use crate::log::Log;
use appender::{Append, AppendRequest, Appender, LogEntry};
use request::WriteRequest;
use slot::DbSlot;
use std::sync::atomic::Ordering;
use tables::meta;
use writer::{WriteHealth, Writer};

/// File name of the database inside the data directory.
pub const DB_FILE: &str = "hookvault.redb";

/// Delivery ids of synthesized test events start with this, and sort below
/// `TEST_ID_END` (the next character after `-`).
pub const TEST_ID_PREFIX: &str = "test-";
const TEST_ID_END: &str = "test.";

/// Requests that may wait for the writer before callers wait for room (backpressure).
const QUEUE_DEPTH: usize = 4096;

/// Called after every successful group commit (or log append) with its size and
/// duration.
pub type CommitObserver = Arc<dyn Fn(usize, Duration) + Send + Sync>;

/// Handle to the store: reads run on the blocking pool; deliveries go to the log
/// writer, every other write to the store writer.
#[derive(Clone)]
pub struct Store {
    db: Arc<DbSlot>,
    appends: mpsc::Sender<AppendRequest>,
    queue: mpsc::Sender<WriteRequest>,
    committed: watch::Receiver<u64>,
    write_health: Arc<WriteHealth>,
    log: Arc<LogProgress>,
    tail: Arc<tail::Tail>,
    /// The Actions insight windows kept in memory, which the writer keeps current.
    windows: Arc<actions::InsightWindows>,
    /// Cluster mode: the replicated log deliveries are appended to, once connected.
    shared_log: Option<Arc<std::sync::OnceLock<Arc<dyn SharedLog>>>>,
}

/// Owns the log writer and store writer threads. [`WriterHandle::join`] returns once
/// every [`Store`] clone is dropped and the last batch is committed durably, which
/// leaves the database closed.
pub struct WriterHandle {
    appender: JoinHandle<()>,
    writer: JoinHandle<()>,
}

impl WriterHandle {
    pub fn join(self) {
        // The log writer holds a sender of the store writer's queue: it ends first.
        if self.appender.join().is_err() {
            tracing::error!("log writer thread panicked");
        }
        if self.writer.join().is_err() {
            tracing::error!("store writer thread panicked");
        }
    }
}

/// Directory of the acknowledgement log inside the data directory.
pub const LOG_DIR: &str = "log";

impl Store {
    /// Opens (or creates) the database in `dir`, checks its schema, applies what the
    /// acknowledgement log holds beyond the last durable commit, rebuilds the
    /// content-dedup window from recent events and starts the two writer threads.
    /// Blocking.
    pub fn open(dir: &Path, options: &StoreOptions) -> Result<(Store, WriterHandle), StoreError> {
        let path = dir.join(DB_FILE);
        open::private_file(&path)?;
        let db = Database::builder()
            .set_cache_size(options.cache_bytes)
            .create(&path)?;
        let position = initialize(&db)?;
        if options.cluster && position.stream_applied.is_none() && position.next_seq > 1 {
            return Err(StoreError::Log(format!(
                "cluster mode needs an empty data directory or a backup of a cluster node: \
                 this store holds {} events that are not in the cluster's log",
                position.next_seq - 1
            )));
        }
        let (committed_tx, committed) = watch::channel(position.last_change);

        let started = Instant::now();
        let (log, recovered) = Log::open(
            &dir.join(LOG_DIR),
            position.log_applied,
            position.next_seq,
            options.log_segment_bytes,
        )
        .map_err(|e| StoreError::Log(e.to_string()))?;
        let entries = recovered
            .frames
            .iter()
            .map(|frame| codec::decode::<LogEntry>(&frame.payload))
            .collect::<Result<Vec<_>, _>>()?;
        let replayed = entries.len();
        apply::write_entries(&db, &entries, &committed_tx)?;
        let next_seq = entries.last().map_or(position.next_seq, |e| e.seq + 1);
        if replayed > 0 || recovered.torn_bytes > 0 {
            tracing::info!(
                replayed,
                torn_bytes = recovered.torn_bytes,
                took_ms = started.elapsed().as_millis() as u64,
                "applied the acknowledgement log's tail"
            );
        }

        let window = recent_content_window(&db, options.dedup_ttl)?;
        let db = Arc::new(DbSlot::new(db, path, options.cache_bytes));
        let progress = Arc::new(LogProgress::default());
        let applied = next_seq - 1;
        for mark in [&progress.appended, &progress.applied, &progress.durable] {
            mark.store(applied, Ordering::Relaxed);
        }
        progress
            .stream_decided
            .store(position.stream_applied.unwrap_or(0), Ordering::Relaxed);
        progress.bytes.store(log.bytes(), Ordering::Relaxed);
        progress
            .segments
            .store(log.segments() as u64, Ordering::Relaxed);

        let (queue, receiver) = mpsc::channel(QUEUE_DEPTH);
        let write_health = Arc::new(WriteHealth::default());
        let tail = Arc::new(tail::Tail::default());
        let windows = Arc::new(actions::InsightWindows::default());
        let writer = Writer {
            db: db.clone(),
            committed: committed_tx,
            health: write_health.clone(),
            on_commit: options.on_commit.clone(),
            progress: progress.clone(),
            tail: tail.clone(),
            last_durable: Instant::now(),
            log_dir: dir.join(LOG_DIR),
            nondurable: false,
            last_commit: Instant::now(),
            windows: windows.clone(),
        };
        let writer = std::thread::Builder::new()
            .name("store-writer".into())
            .spawn(move || writer.run(receiver))?;
        let (appends, append_receiver) = mpsc::channel(QUEUE_DEPTH);
        let appender = Appender {
            db: db.clone(),
            log: (!options.cluster).then_some(log),
            window,
            next_seq,
            writer: queue.clone(),
            progress: progress.clone(),
            tail: tail.clone(),
            on_append: options.on_append.clone(),
            in_flight: Default::default(),
            in_flight_order: Default::default(),
        };
        let appender = std::thread::Builder::new()
            .name("log-writer".into())
            .spawn(move || appender.run(append_receiver))?;
        let store = Store {
            db,
            appends,
            queue,
            committed,
            write_health,
            log: progress,
            tail,
            windows,
            shared_log: options.cluster.then(Default::default),
        };
        Ok((store, WriterHandle { appender, writer }))
    }

    /// Stores a delivery durably, or recognizes it as a duplicate. Resolves once it
    /// is durable in the log: from then on [`Store::get`] finds it, and lists,
    /// counters and the change feed have it once applied ([`Store::applied`]).
    pub async fn ingest(&self, delivery: Delivery) -> Result<IngestOutcome, StoreError> {
        self.ingest_prepared(Self::prepare(delivery)?).await
    }

    /// Encodes and compresses a delivery for [`Store::ingest_prepared`]: CPU work
    /// done by the caller, so it runs in parallel, not on the writer. The record is
    /// `pending`; a caller that processes the event first records the outcome in it
    /// with [`EventRecord::record_attempt`].
    pub fn prepare(delivery: Delivery) -> Result<PreparedEvent, StoreError> {
        request::prepare(delivery)
    }

    /// [`Store::ingest`] of a prepared event: the one way every delivery is stored
    /// (webhooks, test events, imports).
    pub async fn ingest_prepared(&self, event: PreparedEvent) -> Result<IngestOutcome, StoreError> {
        if let Some(log) = self.cluster_log()? {
            return self.append_shared(log, event).await;
        }
        let (reply, answer) = oneshot::channel();
        self.decide(event, Some(reply), None).await?;
        answer.await.map_err(|_| StoreError::Closed)?
    }

    pub(super) async fn decide(
        &self,
        event: PreparedEvent,
        reply: Option<appender::Reply>,
        stream_seq: Option<u64>,
    ) -> Result<(), StoreError> {
        let request = AppendRequest::Delivery(Append {
            event: Box::new(event),
            reply,
            stream_seq,
        });
        self.appends
            .send(request)
            .await
            .map_err(|_| StoreError::Closed)
    }

    /// Resolves once the delivery logged under `seq` is applied to redb: in lists,
    /// counters and the change feed.
    pub async fn applied(&self, seq: u64) -> Result<(), StoreError> {
        let mut changes = self.committed.clone();
        loop {
            changes.borrow_and_update();
            if self.log.applied.load(Ordering::Acquire) >= seq {
                return Ok(());
            }
            changes.changed().await.map_err(|_| StoreError::Closed)?;
        }
    }

    /// Where the acknowledgement log and its application stand.
    pub fn log_progress(&self) -> &LogProgress {
        &self.log
    }

    /// Records a processing outcome durably; returns the updated record (`None` if
    /// the event no longer exists).
    pub async fn record_processing(
        &self,
        update: StatusUpdate,
    ) -> Result<Option<EventRecord>, StoreError> {
        if let Some(log) = self.cluster_log()? {
            return match log.change(LoggedChange::Processed(update)).await? {
                ChangeOutcome::Record(record) => Ok(record.map(|r| *r)),
                ChangeOutcome::Count(_) | ChangeOutcome::Done | ChangeOutcome::Applied(_) => {
                    Err(StoreError::Cluster("no record for an update".into()))
                }
            };
        }
        let (reply, answer) = oneshot::channel();
        self.send(WriteRequest::Update { update, reply }).await?;
        answer.await.map_err(|_| StoreError::Closed)?
    }

    /// Retires events (retention) in one transaction; returns how many were retired.
    pub async fn retire(&self, seqs: Vec<u64>) -> Result<usize, StoreError> {
        if let Some(log) = self.cluster_log()? {
            return counted(log.change(LoggedChange::Retire(seqs)).await?);
        }
        let (reply, answer) = oneshot::channel();
        self.send(WriteRequest::Retire { seqs, reply }).await?;
        answer.await.map_err(|_| StoreError::Closed)?
    }

    /// Removes every synthesized test event and its counts; returns how many.
    pub async fn remove_test_events(&self) -> Result<usize, StoreError> {
        let seqs = self
            .read(|db| {
                let txn = db.begin_read()?;
                let deliveries = txn.open_table(tables::DELIVERIES)?;
                let mut seqs = Vec::new();
                // Test delivery ids are `test-<hex>` (`POST /api/webhooks/test`).
                for entry in deliveries.range(TEST_ID_PREFIX..TEST_ID_END)? {
                    seqs.push(entry?.1.value());
                }
                Ok(seqs)
            })
            .await?;
        if let Some(log) = self.cluster_log()? {
            return counted(log.change(LoggedChange::RemoveTests(seqs)).await?);
        }
        let (reply, answer) = oneshot::channel();
        self.send(WriteRequest::RemoveTests { seqs, reply }).await?;
        answer.await.map_err(|_| StoreError::Closed)?
    }

    /// Adds an entry to the rejected-delivery log, without waiting: when the writer's
    /// queue is full the entry is dropped (returns false) rather than slowing ingest.
    pub fn record_rejection(&self, entry: RejectedDelivery) -> bool {
        self.queue
            .try_send(WriteRequest::Reject(Box::new(entry)))
            .is_ok()
    }

    /// Saves a consumer's cursor (the highest seq it is done with). Committed with the
    /// writer's next batch and made durable with its next durable commit (within a
    /// second): a crash may take it back that far, never past what the store holds.
    pub async fn save_cursor(&self, name: &str, seq: u64) -> Result<(), StoreError> {
        let name = name.to_owned();
        self.send(WriteRequest::Cursor { name, seq }).await
    }

    /// A consumer's saved cursor (0 when it never saved one).
    pub async fn cursor(&self, name: &'static str) -> Result<u64, StoreError> {
        self.read(move |db| {
            let txn = db.begin_read()?;
            let cursors = txn.open_table(tables::CURSORS)?;
            Ok(cursors.get(name)?.map_or(0, |v| v.value()))
        })
        .await
    }

    /// The newest `limit` rejected deliveries and the running count per reason code.
    pub async fn rejected(&self, limit: usize) -> Result<RejectedLog, StoreError> {
        self.read(move |db| rejected::list(db, rejected::EdgeLog::Rejected, limit))
            .await
    }

    /// Up to `limit` of the oldest events received before `cutoff_ms`.
    pub async fn received_before(
        &self,
        cutoff_ms: i64,
        limit: usize,
    ) -> Result<Vec<u64>, StoreError> {
        self.read(move |db| {
            let txn = db.begin_read()?;
            let index_table = txn.open_table(tables::EVENT_INDEX)?;
            let mut seqs = Vec::new();
            for entry in index_table
                .range((index::ALL, "", i64::MIN, 0u64)..(index::ALL, "", cutoff_ms, 0u64))?
                .take(limit)
            {
                seqs.push(entry?.0.value().3);
            }
            Ok(seqs)
        })
        .await
    }

    /// The oldest events whose payloads, removed, bring the stored payload bytes down
    /// to `cap` (at most `limit` of them).
    pub async fn oldest_over_cap(&self, cap: u64, limit: usize) -> Result<Vec<u64>, StoreError> {
        self.read(move |db| {
            let txn = db.begin_read()?;
            let stored = txn
                .open_table(tables::META)?
                .get(meta::PAYLOAD_BYTES)?
                .map_or(0, |v| v.value());
            let mut excess = stored.saturating_sub(cap);
            let index_table = txn.open_table(tables::EVENT_INDEX)?;
            let payloads = txn.open_table(tables::PAYLOADS)?;
            let mut seqs = Vec::new();
            let all = (index::ALL, "", i64::MIN, 0u64)..=(index::ALL, "", i64::MAX, u64::MAX);
            for entry in index_table.range(all)? {
                if excess == 0 || seqs.len() >= limit {
                    break;
                }
                let seq = entry?.0.value().3;
                let size = payloads.get(seq)?.map_or(0, |p| p.value().len() as u64);
                excess = excess.saturating_sub(size);
                seqs.push(seq);
            }
            Ok(seqs)
        })
        .await
    }

    async fn send(&self, request: WriteRequest) -> Result<(), StoreError> {
        self.queue
            .send(request)
            .await
            .map_err(|_| StoreError::Closed)
    }

    /// Follows the highest committed change id: the change feed for derived views.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.committed.clone()
    }

    pub async fn list(&self, query: EventQuery) -> Result<Page, StoreError> {
        self.read(move |db| query::list(&db.begin_read()?, &query))
            .await
    }

    pub(crate) async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Database) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let db = self.db.get()?;
        tokio::task::spawn_blocking(move || f(&db))
            .await
            .map_err(|e| StoreError::Database(format!("read task failed: {e}")))?
    }
}
