//! One reconcile run: for each hook, read its log, find what the store lacks, ask
//! GitHub to redeliver it (paced, 422s retried), then watch the store for the
//! redeliveries to arrive through the ingest endpoint, for a bounded time.

use std::collections::HashSet;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::Backfill;
use super::github::{GitHub, GitHubError};
use super::hooks::{self, HookRef};
use super::reconcile::{self, Verdict};
use super::summary::{self, HookReport, Summary, Trigger};
use crate::domain::timestamp;

/// Stored deliveries whose headers name the hooks, when none are configured.
const DISCOVERY_SCAN: usize = 5_000;
/// A scheduled run reads a hook's log back to the last clean run's start less this,
/// so a delivery GitHub was still attempting then is seen again.
const WATERMARK_OVERLAP_MS: i64 = 60 * 60_000;
/// Tries of one redelivery GitHub answers 422 ("spammed"), waiting 1 s, then 2 s.
const UNPROCESSABLE_TRIES: u32 = 3;

/// What a run was asked to do.
#[derive(Debug, Clone, Copy)]
pub struct Request {
    pub trigger: Trigger,
    /// Back to this time.
    pub since: Duration,
    pub dry_run: bool,
}

/// What the hooks of a run add up to.
#[derive(Default)]
struct Tally {
    checked: u64,
    in_flight: u64,
    gave_up: u64,
    missing: Vec<String>,
    requested: Vec<String>,
}

impl Backfill {
    pub(super) async fn reconcile(&self, github: &GitHub, request: Request) -> Summary {
        let started = Instant::now();
        let started_ms = timestamp::now_ms();
        let since_ms = started_ms - request.since.as_millis() as i64;
        let waits_before = github.waits.load(Ordering::Relaxed);
        self.forget_old_asks();
        let mut summary = Summary {
            trigger: request.trigger,
            dry_run: request.dry_run,
            since: timestamp::to_rfc3339(since_ms),
            started_at: timestamp::to_rfc3339(started_ms),
            finished_at: String::new(),
            duration_ms: 0,
            hooks: Vec::new(),
            checked: 0,
            missing: 0,
            missing_ids: Vec::new(),
            in_flight: 0,
            gave_up: 0,
            requested: 0,
            confirmed: 0,
            unconfirmed_ids: Vec::new(),
            rate_limit_waits: 0,
            errors: Vec::new(),
        };
        let mut tally = Tally::default();
        match self.hooks().await {
            Ok(hooks) if hooks.is_empty() => summary.errors.push(
                "no hooks to reconcile: set HOOKVAULT_BACKFILL_HOOKS, or wait for a delivery \
                 with X-GitHub-Hook-* headers to name its hook"
                    .into(),
            ),
            Ok(hooks) => {
                for hook in hooks {
                    let hook_since = match request.trigger {
                        Trigger::Api => since_ms,
                        _ => self.watermark(&hook).map_or(since_ms, |w| w.max(since_ms)),
                    };
                    let report = self
                        .reconcile_hook(github, &hook, hook_since, request.dry_run, &mut tally)
                        .await;
                    if report.error.is_none() && !request.dry_run {
                        self.set_watermark(hook, started_ms - WATERMARK_OVERLAP_MS);
                    }
                    if let Some(error) = &report.error {
                        summary.errors.push(format!("{}: {error}", report.hook));
                    }
                    summary.hooks.push(report);
                }
            }
            Err(e) => summary
                .errors
                .push(format!("cannot read the stored deliveries' hooks: {e}")),
        }
        summary.checked = tally.checked;
        summary.in_flight = tally.in_flight;
        summary.gave_up = tally.gave_up;
        summary.missing = tally.missing.len() as u64;
        summary.missing_ids = summary::listed(&tally.missing);
        summary.requested = tally.requested.len() as u64;
        if !tally.requested.is_empty() {
            let unconfirmed = self.confirm(tally.requested).await;
            summary.confirmed = summary.requested - unconfirmed.len() as u64;
            summary.unconfirmed_ids = summary::listed(&unconfirmed);
        }
        let finished_ms = timestamp::now_ms();
        summary.finished_at = timestamp::to_rfc3339(finished_ms);
        summary.duration_ms = started.elapsed().as_millis() as u64;
        summary.rate_limit_waits = github.waits.load(Ordering::Relaxed) - waits_before;
        summary
    }

    /// The configured hooks, or those the newest stored deliveries name.
    async fn hooks(&self) -> Result<Vec<HookRef>, crate::store::StoreError> {
        if let Some(hooks) = &self.config.hooks {
            return Ok(hooks.clone());
        }
        let stored = self.store.recent_headers(DISCOVERY_SCAN).await?;
        Ok(hooks::discover(&stored))
    }

    async fn reconcile_hook(
        &self,
        github: &GitHub,
        hook: &HookRef,
        since_ms: i64,
        dry_run: bool,
        tally: &mut Tally,
    ) -> HookReport {
        let mut report = HookReport {
            hook: hook.to_string(),
            checked: 0,
            missing: 0,
            requested: 0,
            error: None,
        };
        if !github.can_reach(hook) {
            let needs = match hook.needs_app() {
                true => "HOOKVAULT_GITHUB_APP_ID and HOOKVAULT_GITHUB_APP_KEY",
                false => "HOOKVAULT_GITHUB_TOKEN",
            };
            report.error = Some(format!("needs {needs}"));
            return report;
        }
        let attempts = match reconcile::read_log(github, hook, since_ms).await {
            Ok(attempts) => attempts,
            Err(e) => {
                report.error = Some(format!("reading its delivery log: {e}"));
                return report;
            }
        };
        let logged = reconcile::group(&attempts);
        report.checked = logged.len() as u64;
        tally.checked += report.checked;
        let guids: Vec<String> = logged.iter().map(|l| l.guid.clone()).collect();
        let stored = match self.store.stored_ids(guids).await {
            Ok(stored) => stored,
            Err(e) => {
                report.error = Some(format!("reading the store: {e}"));
                return report;
            }
        };
        let now = timestamp::now_ms();
        let mut refused = Vec::new();
        for delivery in &logged {
            let asked = self.asked(&delivery.guid);
            let verdict = reconcile::verdict(delivery, stored.contains(&delivery.guid), asked, now);
            if verdict == Verdict::Stored {
                continue;
            }
            report.missing += 1;
            tally.missing.push(delivery.guid.clone());
            match verdict {
                Verdict::InFlight => tally.in_flight += 1,
                Verdict::GaveUp => tally.gave_up += 1,
                _ if dry_run => {}
                _ => {
                    if report.requested > 0 || !refused.is_empty() {
                        tokio::time::sleep(self.config.pace).await;
                    }
                    match redeliver(github, hook, delivery.newest_id).await {
                        Ok(()) => {
                            self.note_asked(&delivery.guid);
                            report.requested += 1;
                            tally.requested.push(delivery.guid.clone());
                        }
                        Err(e) => refused.push(format!("{}: {e}", delivery.guid)),
                    }
                }
            }
        }
        if !refused.is_empty() {
            report.error = Some(format!(
                "{} redelivery request(s) refused; first: {}",
                refused.len(),
                refused[0]
            ));
        }
        report
    }

    /// Watches the store until every requested delivery is in it or the time is up;
    /// the ids still missing.
    async fn confirm(&self, requested: Vec<String>) -> Vec<String> {
        let deadline = tokio::time::Instant::now() + self.config.confirm_wait;
        let mut changes = self.store.subscribe();
        let mut waiting: HashSet<String> = requested.iter().cloned().collect();
        loop {
            if let Ok(found) = self
                .store
                .stored_ids(waiting.iter().cloned().collect())
                .await
            {
                waiting.retain(|id| !found.contains(id));
            }
            if waiting.is_empty() || tokio::time::Instant::now() >= deadline {
                break;
            }
            // The change feed moves when the store applies; the tail answers before
            // that, so a short poll too.
            tokio::select! {
                _ = changes.changed() => {}
                () = tokio::time::sleep(Duration::from_millis(250)) => {}
                () = tokio::time::sleep_until(deadline) => {}
            }
        }
        requested
            .into_iter()
            .filter(|id| waiting.contains(id))
            .collect()
    }
}

/// Asks for one redelivery; a 422 (GitHub's "validation failed, or the endpoint has
/// been spammed") is tried again after a pause.
async fn redeliver(github: &GitHub, hook: &HookRef, id: u64) -> Result<(), GitHubError> {
    let mut tries = 0;
    loop {
        tries += 1;
        match github.redeliver(hook, id).await {
            Err(e) if e.is_unprocessable() && tries < UNPROCESSABLE_TRIES => {
                tracing::info!(%hook, id, error = %e, "GitHub refused a redelivery request; trying again");
                tokio::time::sleep(Duration::from_secs(1 << (tries - 1))).await;
            }
            outcome => return outcome,
        }
    }
}
