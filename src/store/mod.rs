//! redb, the single source of truth. Everything that names redb lives under this
//! module: the table layout, the group-commit writer, the secondary indexes, the
//! materialized counters and the read queries. Callers get a cheap-to-clone
//! [`Store`] handle.

mod alerts;
mod codec;
mod compression;
mod counters;
mod dedup;
mod error;
mod events;
mod index;
mod query;
mod reads;
mod record;
mod rejected;
mod slot;
mod stats;
mod tables;
mod verify;
mod writer;

use std::path::Path;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use redb::{Database, ReadableDatabase, ReadableTable};
use tokio::sync::{mpsc, oneshot, watch};

pub use counters::{HOUR_MS, OPEN_SECURITY_ALERTS};
pub use error::StoreError;
pub use events::StatusUpdate;
pub use query::{EventQuery, Page};
pub use reads::{HealthFacts, StoredEvent};
pub use record::{EventRecord, Fact, Status};
pub use rejected::{KEEP as REJECTED_KEPT, RejectedDelivery, RejectedLog};
pub use stats::{EventStats, JobStats, RepoStats, Statistics, bucket_upper_us};
pub use verify::Difference;
pub use writer::{DuplicateReason, IngestOutcome, PreparedEvent};

use crate::domain::{ContentKey, Delivery, timestamp};
use dedup::ContentWindow;
use slot::DbSlot;
use tables::meta;
use writer::{WriteHealth, WriteRequest, Writer};

/// File name of the database inside the data directory.
pub const DB_FILE: &str = "hookvault.redb";

/// Delivery ids of synthesized test events start with this, and sort below
/// `TEST_ID_END` (the next character after `-`).
pub const TEST_ID_PREFIX: &str = "test-";
const TEST_ID_END: &str = "test.";

/// Requests that may wait for the writer before callers wait for room (backpressure).
const QUEUE_DEPTH: usize = 4096;

/// Called after every successful group commit with its size and duration.
pub type CommitObserver = Arc<dyn Fn(usize, Duration) + Send + Sync>;

#[derive(Clone)]
pub struct StoreOptions {
    /// redb's page cache. redb's default is 1 GiB, far too much for a small host.
    pub cache_bytes: usize,
    pub dedup_ttl: Duration,
    pub on_commit: Option<CommitObserver>,
}

/// Handle to the store: reads run on the blocking pool, writes go to the writer.
#[derive(Clone)]
pub struct Store {
    db: Arc<DbSlot>,
    queue: mpsc::Sender<WriteRequest>,
    committed: watch::Receiver<u64>,
    write_health: Arc<WriteHealth>,
}

/// Owns the writer thread. [`WriterHandle::join`] returns once every [`Store`] clone
/// is dropped and the last batch is committed, which leaves the database closed.
pub struct WriterHandle(JoinHandle<()>);

impl WriterHandle {
    pub fn join(self) {
        if self.0.join().is_err() {
            tracing::error!("store writer thread panicked");
        }
    }
}

impl Store {
    /// Opens (or creates) the database in `dir`, checks its schema, rebuilds the
    /// content-dedup window from recent events and starts the writer. Blocking.
    pub fn open(dir: &Path, options: &StoreOptions) -> Result<(Store, WriterHandle), StoreError> {
        let path = dir.join(DB_FILE);
        let db = Database::builder()
            .set_cache_size(options.cache_bytes)
            .create(&path)?;
        let last_change = initialize(&db)?;
        let window = recent_content_window(&db, options.dedup_ttl)?;
        let db = Arc::new(DbSlot::new(db, path, options.cache_bytes));

        let (queue, receiver) = mpsc::channel(QUEUE_DEPTH);
        let (committed_tx, committed) = watch::channel(last_change);
        let write_health = Arc::new(WriteHealth::default());
        let writer = Writer {
            db: db.clone(),
            window,
            committed: committed_tx,
            health: write_health.clone(),
            on_commit: options.on_commit.clone(),
            last_durable: Instant::now(),
            last_commit: Instant::now(),
        };
        let thread = std::thread::Builder::new()
            .name("store-writer".into())
            .spawn(move || writer.run(receiver))?;
        let store = Store {
            db,
            queue,
            committed,
            write_health,
        };
        Ok((store, WriterHandle(thread)))
    }

    /// Stores a delivery durably, or recognizes it as a duplicate. Resolves only after
    /// the commit holding it is on disk.
    pub async fn ingest(&self, delivery: Delivery) -> Result<IngestOutcome, StoreError> {
        self.ingest_prepared(Self::prepare(delivery)?).await
    }

    /// Encodes and compresses a delivery for [`Store::ingest_prepared`]: CPU work
    /// done by the caller, so it runs in parallel, not on the writer. The record is
    /// `pending`; a caller that processes the event first records the outcome in it
    /// with [`EventRecord::record_attempt`].
    pub fn prepare(delivery: Delivery) -> Result<PreparedEvent, StoreError> {
        prepare(delivery)
    }

    /// [`Store::ingest`] of a prepared event.
    pub async fn ingest_prepared(&self, event: PreparedEvent) -> Result<IngestOutcome, StoreError> {
        let event = Box::new(event);
        let (reply, answer) = oneshot::channel();
        self.send(WriteRequest::Ingest { event, reply }).await?;
        answer.await.map_err(|_| StoreError::Closed)?
    }

    /// Records a processing outcome durably; returns the updated record (`None` if
    /// the event no longer exists).
    pub async fn record_processing(
        &self,
        update: StatusUpdate,
    ) -> Result<Option<EventRecord>, StoreError> {
        let (reply, answer) = oneshot::channel();
        self.send(WriteRequest::Update { update, reply }).await?;
        answer.await.map_err(|_| StoreError::Closed)?
    }

    /// Retires events (retention) in one transaction; returns how many were retired.
    pub async fn retire(&self, seqs: Vec<u64>) -> Result<usize, StoreError> {
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

    /// The newest `limit` rejected deliveries and the running count per reason code.
    pub async fn rejected(&self, limit: usize) -> Result<RejectedLog, StoreError> {
        self.read(move |db| rejected::list(db, limit)).await
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

/// Encoding and compression, done by the caller so they run in parallel.
fn prepare(delivery: Delivery) -> Result<PreparedEvent, StoreError> {
    let record = EventRecord {
        delivery_id: delivery.id.as_str().to_owned(),
        event: delivery.event.as_str().to_owned(),
        action: delivery.fields.action,
        repository: delivery.fields.repository,
        organization: delivery.fields.organization,
        sender: delivery.fields.sender,
        installation_id: delivery.fields.installation_id,
        hook_id: delivery.hook_id,
        received_at_ms: delivery.received_at_ms,
        status: Status::Pending,
        attempts: 0,
        last_error: None,
        processing_time_us: None,
        processed_at_ms: None,
        next_attempt_ms: None,
        encoding: delivery.encoding,
        body_len: u32::try_from(delivery.body.len()).unwrap_or(u32::MAX),
        content_key: delivery.content_key.map(|k| k.0),
        content_duplicates: 0,
        test: delivery.test,
        facts: Vec::new(),
    };
    let compressed_body = compression::compress(&delivery.body)?;
    Ok(PreparedEvent {
        content_key: delivery.content_key,
        duplicate_of: None,
        encoded_headers: codec::encode(&delivery.headers),
        compressed_body,
        record,
    })
}

/// Creates every table, checks the schema version, returns the last change id.
fn initialize(db: &Database) -> Result<u64, StoreError> {
    let txn = db.begin_write()?;
    let next_change = {
        let mut t = tables::WriteTables::open(&txn)?;
        let found = t.meta.get(meta::SCHEMA_VERSION)?.map(|v| v.value());
        match found {
            Some(found) if found > tables::SCHEMA_VERSION => {
                return Err(StoreError::NewerSchema {
                    found,
                    known: tables::SCHEMA_VERSION,
                });
            }
            Some(found) if found == tables::SCHEMA_VERSION => {}
            // Older layouts read as they are (see `SCHEMA_VERSION`); what is
            // written from now on may need this binary.
            Some(_) | None => {
                t.meta
                    .insert(meta::SCHEMA_VERSION, tables::SCHEMA_VERSION)?;
            }
        }
        t.meta.get(meta::NEXT_CHANGE)?.map_or(1, |v| v.value())
    };
    txn.commit()?;
    Ok(next_change - 1)
}

/// The content keys of events received within the dedup window, so a restart does
/// not reopen the window for a second hook's copy.
fn recent_content_window(db: &Database, ttl: Duration) -> Result<ContentWindow, StoreError> {
    let mut window = ContentWindow::new(ttl);
    if !window.is_enabled() {
        return Ok(window);
    }
    let now_ms = timestamp::now_ms();
    let now = Instant::now();
    let since = now_ms - i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX);
    let txn = db.begin_read()?;
    let index_table = txn.open_table(tables::EVENT_INDEX)?;
    let events = txn.open_table(tables::EVENTS)?;
    for entry in
        index_table.range((index::ALL, "", since, 0u64)..=(index::ALL, "", i64::MAX, u64::MAX))?
    {
        let seq = entry?.0.value().3;
        let Some(bytes) = events.get(seq)? else {
            continue;
        };
        let record: EventRecord = codec::decode(bytes.value())?;
        if record.status == Status::Duplicate {
            continue;
        }
        if let Some(key) = record.content_key {
            let age =
                Duration::from_millis(u64::try_from(now_ms - record.received_at_ms).unwrap_or(0));
            window.remember(ContentKey(key), seq, now.checked_sub(age).unwrap_or(now));
        }
    }
    Ok(window)
}

/// Rewrites the database file to drop freed pages (`hookvault compact`, on a stopped
/// instance). Returns the file size before and after.
pub fn compact(dir: &Path) -> Result<(u64, u64), StoreError> {
    let path = dir.join(DB_FILE);
    let before = std::fs::metadata(&path)?.len();
    let mut db = Database::builder().create(&path)?;
    db.compact()
        .map_err(|e| StoreError::Database(e.to_string()))?;
    drop(db);
    Ok((before, std::fs::metadata(&path)?.len()))
}
