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
    /// Whether this node runs the target: always on a single node; in cluster mode
    /// only on the node holding the cluster's lease (the others show its saved
    /// cursor, and no attempts).
    pub runs_here: bool,
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

/// A target in the registry: on a cluster node that does not run forwarding, shown
/// from the store, without a worker.
struct Running {
    target: Arc<Target>,
    worker: Option<WorkerHandle>,
}

struct WorkerHandle {
    commands: mpsc::Sender<worker::Command>,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

/// Cluster mode: what forwarding is told of the cluster.
pub struct Shared {
    /// True while this node holds the cluster's lease: it runs every target.
    pub leading: watch::Receiver<bool>,
    /// Changes other nodes made through the log.
    pub notices: mpsc::UnboundedReceiver<Notice>,
}

/// A forwarding change another node made, once this node applied it.
#[derive(Debug)]
pub enum Notice {
    /// A target was made, replaced or deleted.
    Targets,
    /// Failed deliveries of a target to send again.
    Resend { target: String, seqs: Vec<u64> },
}

/// What forwarding's changes from the log tell this node's registry.
pub fn notices(changes: &[ForwardingChange]) -> Vec<Notice> {
    let mut notices = Vec::new();
    for change in changes {
        match change {
            ForwardingChange::PutTarget { .. } | ForwardingChange::DeleteTarget { .. } => {
                notices.push(Notice::Targets)
            }
            ForwardingChange::Resend { target, seqs } => notices.push(Notice::Resend {
                target: target.clone(),
                seqs: seqs.clone(),
            }),
            _ => {}
        }
    }
    notices
}

pub struct Forwarding {
    store: Store,
    metrics: Arc<Metrics>,
    /// `HOOKVAULT_FORWARD`'s targets (the same on every node of a cluster).
    settings: Vec<TargetSpec>,
    /// Whether this node runs the workers: always on a single node; on a cluster
    /// node while it holds the cluster's lease.
    leading: watch::Receiver<bool>,
    cluster: bool,
    targets: Mutex<BTreeMap<String, Running>>,
    /// Following the cluster (leadership, other nodes' changes), until stopped.
    following: std::sync::Mutex<Option<(watch::Sender<bool>, JoinHandle<()>)>>,
}

impl Forwarding {
    /// Starts a worker for each target: those of `urls` (`HOOKVAULT_FORWARD`) and
    /// those made through the API. In cluster mode (`shared`) only while this node
    /// holds the cluster's lease.
    pub async fn start(
        store: Store,
        metrics: Arc<Metrics>,
        urls: &[String],
        shared: Option<Shared>,
    ) -> anyhow::Result<Arc<Self>> {
        let settings = settings_targets(urls)?;
        let saved = store.forwarding_targets().await?;
        if let Some(spec) = settings
            .iter()
            .find(|s| saved.iter().any(|t| t.name == s.name))
        {
            anyhow::bail!(
                "HOOKVAULT_FORWARD: the target for {} would be named {:?}, like a target made through the API; delete that one first",
                spec.url,
                spec.name
            );
        }
        let (leading, notices) = match shared {
            Some(shared) => (shared.leading, Some(shared.notices)),
            None => (watch::channel(true).1, None),
        };
        let forwarding = Arc::new(Self {
            store,
            metrics,
            settings,
            leading,
            cluster: notices.is_some(),
            targets: Mutex::new(BTreeMap::new()),
            following: std::sync::Mutex::new(None),
        });
        forwarding.reconcile().await?;
        if let Some(notices) = notices {
            let (stop, stopped) = watch::channel(false);
            let task = tokio::spawn(forwarding.clone().follow(notices, stopped));
            *forwarding.following.lock().expect("not poisoned") = Some((stop, task));
        }
        Ok(forwarding)
    }

    /// Whether this node runs the targets' workers (in cluster mode, whether it holds
    /// the cluster's lease).
    pub fn runs_here(&self) -> bool {
        *self.leading.borrow()
    }

    /// Cluster mode: starts and stops the workers as the lease comes and goes, and
    /// follows the other nodes' changes.
    async fn follow(
        self: Arc<Self>,
        mut notices: mpsc::UnboundedReceiver<Notice>,
        mut stop: watch::Receiver<bool>,
    ) {
        let mut leading = self.leading.clone();
        loop {
            let resend = tokio::select! {
                _ = stop.changed() => break,
                changed = leading.changed() => match changed {
                    Ok(()) => None,
                    Err(_) => break,
                },
                notice = notices.recv() => match notice {
                    Some(Notice::Targets) => None,
                    Some(Notice::Resend { target, seqs }) => Some((target, seqs)),
                    None => break,
                },
            };
            let done = match resend {
                Some((target, seqs)) => self.resend_here(&target, seqs).await.map(drop),
                None => self
                    .reconcile()
                    .await
                    .map_err(|e| ForwardError::Invalid(e.to_string())),
            };
            if let Err(error) = done {
                tracing::warn!(%error, "forwarding could not follow a change");
            }
        }
    }

    /// Makes the registry what the store and the settings define, each target with a
    /// worker where this node runs forwarding: new targets start, deleted ones stop
    /// (their done journal removed), changed ones start again with their new spec.
    async fn reconcile(&self) -> anyhow::Result<()> {
        let leading = *self.leading.borrow();
        let mut wanted = BTreeMap::new();
        for saved in self.store.forwarding_targets().await? {
            let spec: TargetSpec = serde_json::from_slice(&saved.spec)
                .map_err(|e| anyhow::anyhow!("forwarding target {}: {e}", saved.name))?;
            wanted.insert(saved.name, (spec, Source::Api));
        }
        for spec in &self.settings {
            wanted
                .entry(spec.name.clone())
                .or_insert_with(|| (spec.clone(), Source::Settings));
        }
        let mut targets = self.targets.lock().await;
        let names: Vec<String> = targets.keys().cloned().collect();
        for name in names {
            let running = &targets[&name];
            let same = wanted.get(&name).is_some_and(|(spec, _)| {
                *spec == running.target.spec && running.worker.is_some() == leading
            });
            if same {
                continue;
            }
            let running = targets.remove(&name).expect("listed above");
            let labels = running.target.labels();
            stop(running).await;
            if !wanted.contains_key(&name) {
                self.forget_journal(&name)?;
                self.metrics.forward_backlog.remove(&labels);
                self.metrics.forward_circuit_open.remove(&labels);
            }
        }
        for (name, (spec, source)) in wanted {
            if let std::collections::btree_map::Entry::Vacant(entry) = targets.entry(name) {
                entry.insert(self.launch(spec, source, leading).await?);
            }
        }
        Ok(())
    }

    async fn launch(&self, spec: TargetSpec, source: Source, run: bool) -> anyhow::Result<Running> {
        let name = spec.name.clone();
        let mut cursor = self.store.forwarding_cursor(&name).await?;
        if run && cursor.is_none() {
            // A target from the settings starts with what is stored from now on;
            // the cursor is durable first, so a restart does not skip what came
            // meanwhile.
            self.forget_journal(&name)?;
            let seq = self.store.log_progress().appended.load(Ordering::Acquire);
            self.store
                .change_forwarding(vec![ForwardingChange::StartAt {
                    name: name.clone(),
                    seq,
                }])
                .await?;
            cursor = Some(seq);
        }
        let cursor = cursor.unwrap_or(0);
        let dir = self.store.forwarding_dir();
        let (journal, mut done) = Journal::open(&dir, &name, cursor)
            .map_err(|e| anyhow::anyhow!("forwarding target {name}: {}: {e}", dir.display()))?;
        let target = Arc::new(
            Target::new(spec, source, &self.metrics, cursor, journal)
                .map_err(|e| anyhow::anyhow!("forwarding target {name}: {e}"))?,
        );
        if !run {
            target.status.saved_cursor.store(cursor, Ordering::Relaxed);
            return Ok(Running {
                target,
                worker: None,
            });
        }
        // Recorded failed past the cursor: done too, even if the journal missed it.
        let (failed, _) = self
            .store
            .forwarding_failed(&name, cursor + 1, u64::MAX, usize::MAX)
            .await?;
        done.extend(failed.into_iter().map(|(seq, _)| seq));
        let (commands, receiver) = mpsc::channel(16);
        let (stop, stopped) = watch::channel(false);
        let worker = worker::Worker::new(target.clone(), self.store.clone(), cursor, done);
        let task = tokio::spawn(worker.run(receiver, stopped));
        Ok(Running {
            target,
            worker: Some(WorkerHandle {
                commands,
                stop,
                task,
            }),
        })
    }

    pub async fn list(&self) -> Result<Vec<TargetView>, ForwardError> {
        let targets: Vec<(Arc<Target>, bool)> = self
            .targets
            .lock()
            .await
            .values()
            .map(|r| (r.target.clone(), r.worker.is_some()))
            .collect();
        let mut views = Vec::with_capacity(targets.len());
        for (target, runs) in targets {
            views.push(self.view(&target, runs).await?);
        }
        Ok(views)
    }

    pub async fn get(&self, name: &str) -> Result<TargetView, ForwardError> {
        let (target, runs) = self.target(name).await?;
        self.view(&target, runs).await
    }

    /// A target, and whether its worker runs on this node.
    async fn target(&self, name: &str) -> Result<(Arc<Target>, bool), ForwardError> {
        let targets = self.targets.lock().await;
        targets
            .get(name)
            .map(|r| (r.target.clone(), r.worker.is_some()))
            .ok_or_else(|| ForwardError::NotFound(name.to_owned()))
    }

    async fn view(&self, target: &Target, runs: bool) -> Result<TargetView, ForwardError> {
        let name = &target.spec.name;
        let (_, failed) = self.store.forwarding_failed(name, 0, 0, 0).await?;
        let status = &target.status;
        let (cursor, saved_cursor) = if runs {
            let saved = status.saved_cursor.load(Ordering::Relaxed);
            (status.cursor(), saved)
        } else {
            // Another node runs it: where it last saved its cursor.
            let saved = self.store.forwarding_cursor(name).await?.unwrap_or(0);
            (saved, saved)
        };
        let appended = self.store.log_progress().appended.load(Ordering::Relaxed);
        Ok(TargetView {
            spec: SpecView::from(&target.spec),
            source: target.source,
            state: target.breaker.state(),
            runs_here: runs,
            cursor,
            saved_cursor,
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
        drop(targets);
        self.changed(&name).await
    }

    /// Replaces a target's spec; its cursor and failed deliveries stay. A spec
    /// without a secret keeps the target's secret.
    pub async fn replace(&self, mut spec: TargetSpec) -> Result<TargetView, ForwardError> {
        spec.check().map_err(ForwardError::Invalid)?;
        let targets = self.targets.lock().await;
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
        drop(targets);
        self.changed(&name).await
    }

    /// After a change to a target's spec: the registry follows, and the target as
    /// it is now.
    async fn changed(&self, name: &str) -> Result<TargetView, ForwardError> {
        self.reconcile()
            .await
            .map_err(|e| ForwardError::Invalid(e.to_string()))?;
        self.get(name).await
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
        // Its worker stops first here, so nothing it records outlives the target.
        let running = targets.remove(name).expect("checked above");
        let labels = running.target.labels();
        stop(running).await;
        self.forget_journal(name)?;
        self.metrics.forward_backlog.remove(&labels);
        self.metrics.forward_circuit_open.remove(&labels);
        self.store
            .change_forwarding(vec![ForwardingChange::DeleteTarget {
                name: name.to_owned(),
            }])
            .await?;
        drop(targets);
        self.reconcile()
            .await
            .map_err(|e| ForwardError::Invalid(e.to_string()))
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
    /// target takes them. In cluster mode the node running forwarding is asked
    /// through the log.
    pub async fn resend(&self, name: &str, seqs: Vec<u64>) -> Result<usize, ForwardError> {
        if !self.cluster || seqs.is_empty() {
            return self.resend_here(name, seqs).await;
        }
        self.target(name).await?;
        let count = seqs.len();
        self.store
            .change_forwarding(vec![ForwardingChange::Resend {
                target: name.to_owned(),
                seqs,
            }])
            .await?;
        Ok(count)
    }

    /// Hands failed deliveries to the target's worker, if it runs here.
    async fn resend_here(&self, name: &str, seqs: Vec<u64>) -> Result<usize, ForwardError> {
        let commands = {
            let targets = self.targets.lock().await;
            let running = targets
                .get(name)
                .ok_or_else(|| ForwardError::NotFound(name.to_owned()))?;
            running.worker.as_ref().map(|w| w.commands.clone())
        };
        let count = seqs.len();
        if let Some(commands) = commands
            && count > 0
        {
            commands
                .send(worker::Command::Resend(seqs))
                .await
                .map_err(|_| ForwardError::Store(StoreError::Closed))?;
        }
        Ok(count)
    }

    /// Sets the gauges read at scrape time (on a cluster node, for the targets it
    /// runs: the backlog is the node's that runs them).
    pub async fn observe(&self) {
        let appended = self.store.log_progress().appended.load(Ordering::Relaxed);
        for running in self.targets.lock().await.values() {
            if running.worker.is_none() {
                continue;
            }
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
        let following = self.following.lock().expect("not poisoned").take();
        if let Some((stop, task)) = following {
            let _ = stop.send(true);
            let _ = task.await;
        }
        let targets = std::mem::take(&mut *self.targets.lock().await);
        for running in targets.into_values() {
            stop(running).await;
        }
    }
}

async fn stop(running: Running) {
    if let Some(worker) = running.worker {
        let _ = worker.stop.send(true);
        let _ = worker.task.await;
    }
}

/// The spec as stored: with its secret (the data directory is private to the
/// service user).
fn stored(spec: &TargetSpec) -> Vec<u8> {
    serde_json::to_vec(spec).expect("specs serialize")
}
