//! Forwarding: every stored delivery passed on to targets inside the network, as
//! GitHub sent it, at least once. Like the search indexer and the NATS sink, each
//! target is a consumer of the store with a cursor of its own (`cursors_v1`,
//! `forward/<name>`): nothing on the ingest path waits for a target, and a target
//! that is down, slow or gone only grows its backlog.
//!
//! - [`target`]: what a target is (URL, filters, secret, limits), checked.
//! - [`address`]: which addresses a target may reach.
//! - [`outgoing`]: the headers sent (GitHub's, signatures passed through or signed again).
//! - [`send`]: one attempt, over HTTP; [`http1`]: the lean client for plain `http`.
//! - [`breaker`]: the retry schedule and the circuit breaker.
//! - [`worker`]: a target's loop: cursor, concurrency, order, retries, failures.
//! - [`journal`]: what was done past the durable cursor, so a crash repeats only
//!   what was in flight.
//! - [`status`]: what the API and `/metrics` show of a target.
//!
//! This module is the registry: the targets from the settings (`HOOKVAULT_FORWARD`)
//! and those made through the API (kept in the store), each with its running worker.

pub mod address;
pub mod breaker;
pub mod filter;
mod from_settings;
mod http1;
mod journal;
pub mod outgoing;
pub mod send;
pub mod status;
pub mod target;
mod worker;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::histogram::Histogram;
use serde::Serialize;
use tokio::sync::{Mutex, mpsc, watch};
use tokio::task::JoinHandle;
use utoipa::ToSchema;

use crate::metrics::{Metrics, TargetLabels, TargetOutcomeLabels};
use crate::store::{ForwardingChange, Store, StoreError};
use breaker::Breaker;
use filter::Filter;
pub use from_settings::settings_targets;
use journal::Journal;
use status::{Attempt, FailedDelivery, LastError, TargetStatus};
use target::{SpecView, Start, TargetSpec};

/// Attempts shown with a target.
const RECENT_ATTEMPTS: usize = 20;
/// Failed deliveries re-sent by one request at most.
pub const MAX_RESEND: usize = 10_000;

/// Where a target was defined.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    /// `POST /api/forwarding/targets`; kept in the store.
    Api,
    /// `HOOKVAULT_FORWARD`; changed only there.
    Settings,
}

/// A target as its worker uses it.
pub struct Target {
    pub spec: TargetSpec,
    pub source: Source,
    filter: Filter,
    client: send::Client,
    breaker: Breaker,
    journal: Journal,
    pub status: TargetStatus,
    metrics: TargetMetrics,
}

/// The target's `/metrics` series, looked up once: an attempt only counts.
struct TargetMetrics {
    delivered: Counter,
    failed: Counter,
    attempts_ok: Counter,
    attempts_error: Counter,
    attempt_time: Histogram,
}

impl TargetMetrics {
    fn new(metrics: &Metrics, name: &str) -> Self {
        let target = TargetLabels {
            target: name.to_owned(),
        };
        let attempts = |outcome: &str| {
            let labels = TargetOutcomeLabels {
                target: name.to_owned(),
                outcome: outcome.to_owned(),
            };
            metrics.forward_attempts.get_or_create(&labels).clone()
        };
        Self {
            delivered: metrics.forward_delivered.get_or_create(&target).clone(),
            failed: metrics.forward_failed.get_or_create(&target).clone(),
            attempts_ok: attempts("ok"),
            attempts_error: attempts("error"),
            attempt_time: metrics.forward_attempt_time.get_or_create(&target).clone(),
        }
    }
}

impl Target {
    fn new(
        spec: TargetSpec,
        source: Source,
        metrics: &Metrics,
        cursor: u64,
        journal: Journal,
    ) -> Result<Self, String> {
        Ok(Self {
            metrics: TargetMetrics::new(metrics, &spec.name),
            filter: Filter::new(&spec),
            journal,
            client: send::client(&spec)?,
            breaker: Breaker::new(
                spec.circuit_threshold,
                std::time::Duration::from_millis(spec.max_backoff_ms),
            ),
            status: TargetStatus::new(cursor),
            source,
            spec,
        })
    }

    fn labels(&self) -> TargetLabels {
        TargetLabels {
            target: self.spec.name.clone(),
        }
    }

    fn metrics_delivered(&self) {
        self.metrics.delivered.inc();
    }

    fn metrics_failed(&self) {
        self.metrics.failed.inc();
    }

    fn metrics_attempt(&self, attempt: &Attempt) {
        let attempts = match attempt.succeeded() {
            true => &self.metrics.attempts_ok,
            false => &self.metrics.attempts_error,
        };
        attempts.inc();
        self.metrics
            .attempt_time
            .observe(attempt.latency_ms / 1000.0);
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ForwardError {
    #[error("{0}")]
    Invalid(String),
    #[error("a target named {0:?} exists already")]
    Exists(String),
    #[error("no target named {0:?}")]
    NotFound(String),
    #[error("target {0:?} is defined by HOOKVAULT_FORWARD; change it there")]
    FromSettings(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A target as the API shows it: its spec (never its secret) and its state.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TargetView {
    #[serde(flatten)]
    pub spec: SpecView,
    pub source: Source,
    /// `healthy`, `retrying` (failed attempts since the last success) or `open`
    /// (the circuit is open: attempts paused but for probes).
    pub state: &'static str,
    /// Every stored delivery up to this seq was taken, failed or did not match.
    pub cursor: u64,
    /// The cursor as last saved durably: after a crash the target is sent again
    /// what was in flight past it (the done journal has the rest).
    pub saved_cursor: u64,
    /// Stored deliveries after the cursor (not all may match the filters).
    pub backlog: u64,
    pub in_flight: u64,
    /// Deliveries the target took since hookvault started.
    pub delivered: u64,
    /// Deliveries marked failed for this target and not re-sent since.
    pub failed: u64,
    pub last_success_at: Option<String>,
    pub last_error: Option<LastError>,
    /// The last attempts, newest first.
    pub recent_attempts: Vec<Attempt>,
}

struct Running {
    target: Arc<Target>,
    commands: mpsc::Sender<worker::Command>,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

pub struct Forwarding {
    store: Store,
    metrics: Arc<Metrics>,
    targets: Mutex<BTreeMap<String, Running>>,
}

impl Forwarding {
    /// Starts a worker for each target: those of `urls` (`HOOKVAULT_FORWARD`) and
    /// those made through the API.
    pub async fn start(
        store: Store,
        metrics: Arc<Metrics>,
        urls: &[String],
    ) -> anyhow::Result<Arc<Self>> {
        let forwarding = Arc::new(Self {
            store,
            metrics,
            targets: Mutex::new(BTreeMap::new()),
        });
        let mut targets = forwarding.targets.lock().await;
        for saved in forwarding.store.forwarding_targets().await? {
            let spec: TargetSpec = serde_json::from_slice(&saved.spec)
                .map_err(|e| anyhow::anyhow!("forwarding target {}: {e}", saved.name))?;
            let running = forwarding.launch(spec, Source::Api).await?;
            targets.insert(saved.name, running);
        }
        for spec in settings_targets(urls)? {
            if targets.contains_key(&spec.name) {
                anyhow::bail!(
                    "HOOKVAULT_FORWARD: the target for {} would be named {:?}, like a target made through the API; delete that one first",
                    spec.url,
                    spec.name
                );
            }
            if forwarding
                .store
                .forwarding_cursor(&spec.name)
                .await?
                .is_none()
            {
                // A new target starts with what is stored from now on; the cursor is
                // durable first, so a restart does not skip what came meanwhile.
                forwarding.forget_journal(&spec.name)?;
                let seq = forwarding
                    .store
                    .log_progress()
                    .appended
                    .load(Ordering::Acquire);
                forwarding
                    .store
                    .change_forwarding(vec![ForwardingChange::StartAt {
                        name: spec.name.clone(),
                        seq,
                    }])
                    .await?;
            }
            let name = spec.name.clone();
            let running = forwarding.launch(spec, Source::Settings).await?;
            targets.insert(name, running);
        }
        drop(targets);
        Ok(forwarding)
    }

    async fn launch(&self, spec: TargetSpec, source: Source) -> anyhow::Result<Running> {
        let cursor = self.store.forwarding_cursor(&spec.name).await?.unwrap_or(0);
        let name = spec.name.clone();
        let dir = self.store.forwarding_dir();
        let (journal, mut done) = Journal::open(&dir, &name, cursor)
            .map_err(|e| anyhow::anyhow!("forwarding target {name}: {}: {e}", dir.display()))?;
        // Recorded failed past the cursor: done too, even if the journal missed it.
        let (failed, _) = self
            .store
            .forwarding_failed(&name, cursor + 1, u64::MAX, usize::MAX)
            .await?;
        done.extend(failed.into_iter().map(|(seq, _)| seq));
        let target = Arc::new(
            Target::new(spec, source, &self.metrics, cursor, journal)
                .map_err(|e| anyhow::anyhow!("forwarding target {name}: {e}"))?,
        );
        let (commands, receiver) = mpsc::channel(16);
        let (stop, stopped) = watch::channel(false);
        let worker = worker::Worker::new(target.clone(), self.store.clone(), cursor, done);
        let task = tokio::spawn(worker.run(receiver, stopped));
        Ok(Running {
            target,
            commands,
            stop,
            task,
        })
    }

    pub async fn list(&self) -> Result<Vec<TargetView>, ForwardError> {
        let targets: Vec<Arc<Target>> = self
            .targets
            .lock()
            .await
            .values()
            .map(|r| r.target.clone())
            .collect();
        let mut views = Vec::with_capacity(targets.len());
        for target in targets {
            views.push(self.view(&target).await?);
        }
        Ok(views)
    }

    pub async fn get(&self, name: &str) -> Result<TargetView, ForwardError> {
        let target = self.target(name).await?;
        self.view(&target).await
    }

    async fn target(&self, name: &str) -> Result<Arc<Target>, ForwardError> {
        let targets = self.targets.lock().await;
        targets
            .get(name)
            .map(|r| r.target.clone())
            .ok_or_else(|| ForwardError::NotFound(name.to_owned()))
    }

    async fn view(&self, target: &Target) -> Result<TargetView, ForwardError> {
        let (_, failed) = self
            .store
            .forwarding_failed(&target.spec.name, 0, 0, 0)
            .await?;
        let status = &target.status;
        let cursor = status.cursor();
        let appended = self.store.log_progress().appended.load(Ordering::Relaxed);
        Ok(TargetView {
            spec: SpecView::from(&target.spec),
            source: target.source,
            state: target.breaker.state(),
            cursor,
            saved_cursor: status.saved_cursor.load(Ordering::Relaxed),
            backlog: appended.saturating_sub(cursor),
            in_flight: status.in_flight.load(Ordering::Relaxed),
            delivered: status.delivered.load(Ordering::Relaxed),
            failed,
            last_success_at: status.last_success(),
            last_error: status.last_error(),
            recent_attempts: status.recent_attempts(RECENT_ATTEMPTS),
        })
    }

    /// Creates a target through the API: durable, then running.
    pub async fn create(&self, spec: TargetSpec) -> Result<TargetView, ForwardError> {
        spec.check().map_err(ForwardError::Invalid)?;
        let targets = self.targets.lock().await;
        if targets.contains_key(&spec.name) {
            return Err(ForwardError::Exists(spec.name));
        }
        let seq = match spec.start.unwrap_or(Start::Now) {
            Start::Now => self.store.log_progress().appended.load(Ordering::Acquire),
            Start::Beginning => 0,
            Start::After(seq) => seq,
        };
        let name = spec.name.clone();
        self.forget_journal(&name)?;
        self.store
            .change_forwarding(vec![
                ForwardingChange::PutTarget {
                    name: name.clone(),
                    spec: stored(&spec),
                },
                ForwardingChange::StartAt {
                    name: name.clone(),
                    seq,
                },
            ])
            .await?;
        self.run_target(targets, spec).await
    }

    /// Replaces a target's spec; its cursor and failed deliveries stay. A spec
    /// without a secret keeps the target's secret.
    pub async fn replace(&self, mut spec: TargetSpec) -> Result<TargetView, ForwardError> {
        spec.check().map_err(ForwardError::Invalid)?;
        let mut targets = self.targets.lock().await;
        let Some(old) = targets.get(&spec.name) else {
            return Err(ForwardError::NotFound(spec.name));
        };
        if old.target.source == Source::Settings {
            return Err(ForwardError::FromSettings(spec.name));
        }
        if spec.secret.is_none() {
            spec.secret = old.target.spec.secret.clone();
        }
        spec.start = None;
        let name = spec.name.clone();
        self.store
            .change_forwarding(vec![ForwardingChange::PutTarget {
                name: name.clone(),
                spec: stored(&spec),
            }])
            .await?;
        let old = targets.remove(&name).expect("checked above");
        stop(old).await;
        self.run_target(targets, spec).await
    }

    /// Starts the worker of an API target whose spec is stored, and shows it.
    async fn run_target(
        &self,
        mut targets: tokio::sync::MutexGuard<'_, BTreeMap<String, Running>>,
        spec: TargetSpec,
    ) -> Result<TargetView, ForwardError> {
        let name = spec.name.clone();
        let running = self
            .launch(spec, Source::Api)
            .await
            .map_err(|e| ForwardError::Invalid(e.to_string()))?;
        let target = running.target.clone();
        targets.insert(name, running);
        drop(targets);
        self.view(&target).await
    }

    /// Stops and forgets a target made through the API, with its cursor and failures.
    pub async fn delete(&self, name: &str) -> Result<(), ForwardError> {
        let mut targets = self.targets.lock().await;
        match targets.get(name) {
            None => return Err(ForwardError::NotFound(name.to_owned())),
            Some(r) if r.target.source == Source::Settings => {
                return Err(ForwardError::FromSettings(name.to_owned()));
            }
            Some(_) => {}
        }
        let running = targets.remove(name).expect("checked above");
        let labels = running.target.labels();
        stop(running).await;
        self.store
            .change_forwarding(vec![ForwardingChange::DeleteTarget {
                name: name.to_owned(),
            }])
            .await?;
        self.forget_journal(name)?;
        self.metrics.forward_backlog.remove(&labels);
        self.metrics.forward_circuit_open.remove(&labels);
        Ok(())
    }

    /// Removes the done journal a target of this name left (deleted, or never
    /// started), so a target made anew skips nothing.
    fn forget_journal(&self, name: &str) -> Result<(), ForwardError> {
        Journal::remove(&self.store.forwarding_dir(), name)
            .map_err(|e| ForwardError::Store(e.into()))
    }

    /// A target's failed deliveries with seq in `from..=to`, oldest first, and how
    /// many it has in all.
    pub async fn failed(
        &self,
        name: &str,
        from: u64,
        to: u64,
        limit: usize,
    ) -> Result<(Vec<FailedDelivery>, u64), ForwardError> {
        self.target(name).await?;
        let (records, total) = self.store.forwarding_failed(name, from, to, limit).await?;
        let failed = records
            .into_iter()
            .filter_map(|(_, bytes)| serde_json::from_slice(&bytes).ok())
            .collect();
        Ok((failed, total))
    }

    /// Queues failed deliveries to be sent again; they leave the failed list once the
    /// target takes them.
    pub async fn resend(&self, name: &str, seqs: Vec<u64>) -> Result<usize, ForwardError> {
        let commands = {
            let targets = self.targets.lock().await;
            let running = targets
                .get(name)
                .ok_or_else(|| ForwardError::NotFound(name.to_owned()))?;
            running.commands.clone()
        };
        let count = seqs.len();
        if count > 0 {
            commands
                .send(worker::Command::Resend(seqs))
                .await
                .map_err(|_| ForwardError::Store(StoreError::Closed))?;
        }
        Ok(count)
    }

    /// Sets the gauges read at scrape time.
    pub async fn observe(&self) {
        let appended = self.store.log_progress().appended.load(Ordering::Relaxed);
        for running in self.targets.lock().await.values() {
            let target = &running.target;
            let labels = target.labels();
            let backlog = appended.saturating_sub(target.status.cursor());
            self.metrics
                .forward_backlog
                .get_or_create(&labels)
                .set(backlog as i64);
            let open = i64::from(target.breaker.state() == "open");
            self.metrics
                .forward_circuit_open
                .get_or_create(&labels)
                .set(open);
        }
    }

    /// Stops every worker; each saves its cursor.
    pub async fn stop(&self) {
        let targets = std::mem::take(&mut *self.targets.lock().await);
        for running in targets.into_values() {
            stop(running).await;
        }
    }
}

async fn stop(running: Running) {
    let _ = running.stop.send(true);
    let _ = running.task.await;
}

/// The spec as stored: with its secret (the data directory is private to the
/// service user).
fn stored(spec: &TargetSpec) -> Vec<u8> {
    serde_json::to_vec(spec).expect("specs serialize")
}
