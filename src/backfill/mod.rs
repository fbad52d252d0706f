//! Backfill: reconciling with GitHub's delivery log. GitHub keeps every delivery it
//! attempted (3 days on github.com) but does not retry a failed one; the delivery
//! ids it lists that the store lacks are exactly what hookvault missed, and GitHub
//! is asked to redeliver them. They come back signed through the ingest endpoint
//! (verify → dedup → log) like any delivery: nothing from the API is stored.
//!
//! - [`hooks`]: which hooks, from the settings or the stored deliveries' headers.
//! - [`github`]: the API client: delivery log pages, redelivery, rate limits, JWT.
//! - [`reconcile`]: a log grouped by delivery id, and what to do with each delivery.
//! - [`run`]: one run over every hook, and watching for the redeliveries to arrive.
//! - [`summary`]: what a run reports.
//! - [`command`]: `hookvault backfill`, a client of `POST /api/backfill`.
//!
//! This module is the scheduler: a run at startup and every interval, one run at a
//! time (an API call meanwhile is refused), the last run kept for the API, health
//! and `/metrics`. docs/backfill.md has the whole design.

pub mod command;
pub mod github;
pub mod hooks;
pub mod reconcile;
mod run;
pub mod summary;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;
use tokio::sync::{OwnedMutexGuard, watch};
use tokio::task::JoinHandle;
use utoipa::ToSchema;

use crate::config::BackfillConfig;
use crate::domain::timestamp;
use crate::metrics::{Metrics, OutcomeLabels};
use crate::store::Store;
use github::GitHub;
use hooks::HookRef;
pub use run::Request;
use summary::{Summary, Trigger};

/// How far back a run looks unless told: all GitHub keeps on github.com.
pub const DEFAULT_SINCE: Duration = Duration::from_secs(3 * 86_400);

#[derive(Debug, thiserror::Error)]
pub enum BackfillError {
    #[error(
        "backfill is off: set HOOKVAULT_GITHUB_TOKEN (or HOOKVAULT_GITHUB_APP_ID and HOOKVAULT_GITHUB_APP_KEY) and restart"
    )]
    NotConfigured,
    #[error("a backfill is running already; GET /api/backfill shows it when it is done")]
    Running,
    #[error("hookvault is shutting down")]
    Stopped,
}

/// What this instance remembers between runs (not kept across restarts: the first
/// run after a start reads the whole window, which is the catching up it needs).
#[derive(Default)]
struct Memory {
    /// Per hook: a scheduled run reads its log back to here.
    watermarks: HashMap<HookRef, i64>,
    /// Delivery id → when its redelivery was asked for.
    asked: HashMap<String, i64>,
}

/// Backfill's settings and state as `GET /api/backfill` shows them (never a token).
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct StatusView {
    /// There is a credential to call GitHub with.
    pub enabled: bool,
    /// `token`, `app`, `token and app` or `none`.
    pub auth: &'static str,
    pub api_url: String,
    /// `settings` (HOOKVAULT_BACKFILL_HOOKS) or `discovered` (the stored deliveries'
    /// X-GitHub-Hook-* headers).
    pub hooks_from: &'static str,
    /// The configured hooks, or those the last run found.
    pub hooks: Vec<String>,
    /// Minutes between scheduled runs; `null`: on demand only.
    pub interval_minutes: Option<u64>,
    pub running: bool,
    pub last_run: Option<Summary>,
}

pub struct Backfill {
    config: BackfillConfig,
    store: Store,
    metrics: Arc<Metrics>,
    github: Option<Arc<GitHub>>,
    /// Held by the run in progress.
    running: Arc<tokio::sync::Mutex<()>>,
    last: Mutex<Option<Summary>>,
    memory: Mutex<Memory>,
    stop: watch::Sender<bool>,
    scheduler: Mutex<Option<JoinHandle<()>>>,
    /// Cluster mode: true while this node holds the cluster's lease; scheduled runs
    /// happen only then, so one node asks GitHub, not each.
    leading: Option<watch::Receiver<bool>>,
}

impl Backfill {
    /// Backfill with its scheduler running when it has credentials and an interval
    /// (in cluster mode, its runs while this node holds the cluster's lease).
    pub fn start(
        config: BackfillConfig,
        store: Store,
        metrics: Arc<Metrics>,
        leading: Option<watch::Receiver<bool>>,
    ) -> anyhow::Result<Arc<Self>> {
        let github = match config.enabled() {
            true => Some(Arc::new(GitHub::new(&config).map_err(anyhow::Error::msg)?)),
            false => None,
        };
        let interval = config.interval.filter(|_| github.is_some());
        let backfill = Arc::new(Self {
            config,
            store,
            metrics,
            github,
            running: Arc::default(),
            last: Mutex::new(None),
            memory: Mutex::default(),
            stop: watch::channel(false).0,
            scheduler: Mutex::new(None),
            leading,
        });
        if let Some(interval) = interval {
            let task = tokio::spawn(backfill.clone().schedule(interval));
            *lock(&backfill.scheduler) = Some(task);
        }
        Ok(backfill)
    }

    /// Ends the scheduler and any run in progress (cut short: its summary is lost).
    pub async fn stop(&self) {
        let _ = self.stop.send(true);
        let scheduler = lock(&self.scheduler).take();
        if let Some(task) = scheduler {
            let _ = task.await;
        }
        // A run started through the API ends at the stop signal and lets go.
        let _ = self.running.lock().await;
    }

    /// A run now, for the API: refused while another runs.
    pub async fn run_now(
        self: &Arc<Self>,
        since: Duration,
        dry_run: bool,
    ) -> Result<Summary, BackfillError> {
        let github = self.github.clone().ok_or(BackfillError::NotConfigured)?;
        let guard = self
            .running
            .clone()
            .try_lock_owned()
            .map_err(|_| BackfillError::Running)?;
        let request = Request {
            trigger: Trigger::Api,
            since,
            dry_run,
        };
        // Its own task: a client that goes away does not cut the run short.
        let this = self.clone();
        let run = tokio::spawn(async move { this.execute(&github, request, guard).await });
        run.await.ok().flatten().ok_or(BackfillError::Stopped)
    }

    async fn schedule(self: Arc<Self>, interval: Duration) {
        let Some(github) = self.github.clone() else {
            return;
        };
        let mut stopped = self.stop.subscribe();
        let mut trigger = Trigger::Startup;
        let mut leading = self.leading.clone();
        loop {
            if let Some(leading) = &mut leading
                && !*leading.borrow_and_update()
            {
                // Another node runs it; this one takes over, with a run at once,
                // when it takes the lease.
                tokio::select! {
                    changed = leading.changed() => if changed.is_err() { return },
                    _ = stopped.wait_for(|stop| *stop) => return,
                }
                continue;
            }
            match self.running.clone().try_lock_owned() {
                Ok(guard) => {
                    let request = Request {
                        trigger,
                        since: DEFAULT_SINCE,
                        dry_run: false,
                    };
                    self.execute(&github, request, guard).await;
                }
                Err(_) => tracing::info!("backfill: skipping a scheduled run, one is running"),
            }
            trigger = Trigger::Schedule;
            tokio::select! {
                () = tokio::time::sleep(interval) => {}
                _ = stopped.wait_for(|stop| *stop) => return,
            }
        }
    }

    /// Runs, holding `guard`, until done or stopped; records what it found.
    async fn execute(
        &self,
        github: &GitHub,
        request: Request,
        guard: OwnedMutexGuard<()>,
    ) -> Option<Summary> {
        let mut stopped = self.stop.subscribe();
        if *stopped.borrow() {
            return None;
        }
        self.metrics.backfill_running.set(1);
        let summary = tokio::select! {
            summary = self.reconcile(github, request) => Some(summary),
            _ = stopped.wait_for(|stop| *stop) => None,
        };
        self.metrics.backfill_running.set(0);
        drop(guard);
        let summary = summary?;
        self.record(&summary);
        Some(summary)
    }

    fn record(&self, summary: &Summary) {
        let m = &self.metrics;
        let outcome = if summary.clean() { "ok" } else { "errors" };
        m.backfill_runs
            .get_or_create(&OutcomeLabels {
                outcome: outcome.into(),
            })
            .inc();
        m.backfill_checked.inc_by(summary.checked);
        m.backfill_missing.inc_by(summary.missing);
        m.backfill_requested.inc_by(summary.requested);
        m.backfill_confirmed.inc_by(summary.confirmed);
        m.backfill_errors.inc_by(summary.errors.len() as u64);
        m.backfill_rate_limit_waits.inc_by(summary.rate_limit_waits);
        m.backfill_last_run
            .set(timestamp::now_ms().div_euclid(1000));
        match summary.clean() {
            true => tracing::info!(
                checked = summary.checked,
                missing = summary.missing,
                requested = summary.requested,
                confirmed = summary.confirmed,
                dry_run = summary.dry_run,
                "backfill run done"
            ),
            false => tracing::warn!(
                checked = summary.checked,
                missing = summary.missing,
                requested = summary.requested,
                confirmed = summary.confirmed,
                errors = ?summary.errors,
                "backfill run done, with errors"
            ),
        }
        *lock(&self.last) = Some(summary.clone());
    }

    pub fn status(&self) -> StatusView {
        let last_run = lock(&self.last).clone();
        let (hooks_from, hooks) = match &self.config.hooks {
            Some(hooks) => ("settings", hooks.iter().map(ToString::to_string).collect()),
            None => (
                "discovered",
                last_run
                    .as_ref()
                    .map(|run| run.hooks.iter().map(|h| h.hook.clone()).collect())
                    .unwrap_or_default(),
            ),
        };
        StatusView {
            enabled: self.config.enabled(),
            auth: match (self.config.token.is_some(), self.config.app.is_some()) {
                (true, true) => "token and app",
                (true, false) => "token",
                (false, true) => "app",
                (false, false) => "none",
            },
            api_url: self.config.api_url.clone(),
            hooks_from,
            hooks,
            interval_minutes: self
                .config
                .interval
                .filter(|_| self.config.enabled())
                .map(|i| i.as_secs() / 60),
            running: self.running.try_lock().is_err(),
            last_run,
        }
    }

    /// The facts health shows: counts and times, no delivery ids.
    pub fn health(&self) -> Option<serde_json::Value> {
        if !self.config.enabled() {
            return None;
        }
        let last = lock(&self.last).clone();
        Some(serde_json::json!({
            "running": self.running.try_lock().is_err(),
            "lastRunAt": last.as_ref().map(|s| s.finished_at.clone()),
            "lastRunClean": last.as_ref().map(Summary::clean),
            "checked": last.as_ref().map(|s| s.checked),
            "missing": last.as_ref().map(|s| s.missing),
            "requested": last.as_ref().map(|s| s.requested),
            "confirmed": last.as_ref().map(|s| s.confirmed),
            "errors": last.as_ref().map(|s| s.errors.len()),
        }))
    }

    fn watermark(&self, hook: &HookRef) -> Option<i64> {
        lock(&self.memory).watermarks.get(hook).copied()
    }

    fn set_watermark(&self, hook: HookRef, at_ms: i64) {
        lock(&self.memory).watermarks.insert(hook, at_ms);
    }

    fn asked(&self, guid: &str) -> Option<i64> {
        lock(&self.memory).asked.get(guid).copied()
    }

    fn note_asked(&self, guid: &str) {
        lock(&self.memory)
            .asked
            .insert(guid.to_owned(), timestamp::now_ms());
    }

    /// Only recent requests matter ([`reconcile::IN_FLIGHT_MS`]); a run starts by
    /// forgetting the others.
    fn forget_old_asks(&self) {
        let now = timestamp::now_ms();
        lock(&self.memory)
            .asked
            .retain(|_, at| now - *at < reconcile::IN_FLIGHT_MS);
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // Whole values only are stored under these locks: usable after a panic.
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}
