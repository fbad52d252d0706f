//! Streaming to NATS JetStream: a consumer of the store, like the search indexer.
//! It follows the store by sequence number with a cursor of its own (`cursors_v1`),
//! publishes each stored event once to `hookvault.events.<event>.<owner>.<repo>` with
//! `Nats-Msg-Id` = the delivery id, and moves the cursor only past what JetStream
//! acknowledged. It runs in its own task and never touches the ingest path: a NATS
//! outage, or a full stream, only grows its backlog (docs/streaming.md).

mod connect;
mod message;
mod sink;
mod subject;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use prometheus_client::metrics::counter::Counter;

pub use connect::{DUPLICATE_WINDOW, connect, ensure, jetstream};
pub use message::SEQ_HEADER;
pub use subject::{SUBJECTS, subject, token};

use crate::config::NatsConfig;
use crate::metrics::Metrics;
use crate::store::Store;

/// The sink's name in `cursors_v1`.
pub const CURSOR: &str = "nats";

/// Where the sink stands, for health and `/metrics`.
pub struct Status {
    /// Highest seq published (acknowledged by JetStream) or skipped.
    cursor: AtomicU64,
    connected: AtomicBool,
    /// The problem publishing has now; cleared by the next acknowledgement.
    last_error: std::sync::Mutex<Option<String>>,
    /// Messages JetStream acknowledged (re-sends it recognized as duplicates too).
    pub published: Counter,
    /// Failed connections, stream checks and publishes (each followed by a retry).
    pub errors: Counter,
}

impl Status {
    pub fn new(metrics: &Metrics, cursor: u64) -> Arc<Self> {
        Arc::new(Self {
            cursor: AtomicU64::new(cursor),
            connected: AtomicBool::new(false),
            last_error: Default::default(),
            published: metrics.stream_published.clone(),
            errors: metrics.stream_errors.clone(),
        })
    }

    pub fn cursor(&self) -> u64 {
        self.cursor.load(Ordering::Relaxed)
    }

    /// Acknowledged deliveries not yet published (or skipped).
    pub fn lag(&self, store: &Store) -> u64 {
        let appended = store.log_progress().appended.load(Ordering::Relaxed);
        appended.saturating_sub(self.cursor())
    }

    pub fn connected(&self) -> bool {
        self.connected.load(Ordering::Relaxed)
    }

    pub fn last_error(&self) -> Option<String> {
        self.last_error.lock().expect("not poisoned").clone()
    }

    fn advanced(&self, cursor: u64) {
        self.cursor.store(cursor, Ordering::Relaxed);
    }

    fn failed(&self, error: String) {
        self.errors.inc();
        tracing::warn!(%error, "streaming to NATS");
        *self.last_error.lock().expect("not poisoned") = Some(error);
    }

    /// A problem that is not a failed attempt of its own (waiting for a connection).
    fn note(&self, problem: &str) {
        let mut last = self.last_error.lock().expect("not poisoned");
        if last.is_none() {
            *last = Some(problem.to_owned());
        }
    }

    fn recovered(&self) {
        let mut last = self.last_error.lock().expect("not poisoned");
        if last.is_some() {
            tracing::info!("publishing to NATS again");
            *last = None;
        }
    }
}

/// Longest pause between two attempts after a failure.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// Connects, makes sure the stream is there, and publishes until `shutdown`. Nothing
/// here ends it early: a failure is shown in `status` and tried again.
pub async fn run(
    store: Store,
    config: NatsConfig,
    status: Arc<Status>,
    shutdown: impl std::future::Future<Output = ()> + Send,
) {
    tokio::pin!(shutdown);
    let client = loop {
        match connect::connect(&config).await {
            Ok(client) => break client,
            Err(error) => status.failed(error),
        }
        tokio::select! {
            _ = &mut shutdown => return,
            _ = tokio::time::sleep(MAX_BACKOFF) => {}
        }
    };
    let sink = sink::Sink::new(store, client, config, status);
    sink.run(shutdown).await;
}
