//! `GET /api/actions/queue`, `/api/actions/runners` and `/api/actions/insights`:
//! what a self-hosted runner fleet needs to know, answered from the Actions state
//! the store materializes as job deliveries arrive (`docs/actions.md`).

mod exposition;
mod insights;

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};

use super::openapi::Envelope;
use super::{ApiError, AppState, envelope};
use crate::domain::job::JobStatus;
use crate::domain::{Visibility, timestamp};
use crate::store::LiveJob;
use utoipa_axum::{router::OpenApiRouter, routes};

pub use exposition::render as exposition;
pub use insights::{GroupFilter as InsightsFilter, answer as insights_answer};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(queue))
        .routes(routes!(runners))
        .routes(routes!(insights::insights))
}

fn seconds_since(at_ms: Option<i64>, now_ms: i64) -> i64 {
    at_ms.map_or(0, |at| (now_ms - at).max(0) / 1000)
}

fn job_json(job: &LiveJob) -> Value {
    json!({
        "jobId": job.job_id,
        "runId": job.run_id,
        "runAttempt": job.run_attempt,
        "repository": job.repository,
        "workflow": job.workflow,
        "job": job.name,
        "labels": job.labels,
        "createdAt": job.created_ms.map(timestamp::to_rfc3339),
    })
}

/// The queued and running jobs of the repositories the caller may see.
async fn visible_live(state: &AppState, visibility: &Visibility) -> Result<Vec<LiveJob>, ApiError> {
    let mut live = state.store.actions_live().await?;
    live.retain(|job| visibility.sees_repository(&job.repository));
    Ok(live)
}

/// Per label set: queued, in progress, the oldest queued job's creation time.
#[derive(Default)]
struct LabelLine {
    queued: u64,
    in_progress: u64,
    oldest_ms: Option<i64>,
}

#[utoipa::path(get, path = "/api/actions/queue", tag = "actions",
    responses(
        (status = 200, description = "jobs (queued now, oldest first, with waitSeconds), byLabels (queued, inProgress, oldestWaitSeconds, starved: queued with none in progress)", body = Envelope),
    ))]
async fn queue(
    State(state): State<AppState>,
    visibility: Visibility,
) -> Result<Json<Value>, ApiError> {
    let now_ms = timestamp::now_ms();
    let mut live = visible_live(&state, &visibility).await?;
    live.sort_by_key(|j| (j.created_ms.unwrap_or(0), j.job_id));
    let mut by_labels: BTreeMap<&str, LabelLine> = BTreeMap::new();
    for job in &live {
        let line = by_labels.entry(job.labels.as_str()).or_default();
        match job.status {
            JobStatus::Queued => {
                line.queued += 1;
                line.oldest_ms = line.oldest_ms.or(job.created_ms);
            }
            _ => line.in_progress += 1,
        }
    }
    let jobs: Vec<Value> = live
        .iter()
        .filter(|j| j.status == JobStatus::Queued)
        .map(|j| {
            let mut line = job_json(j);
            line["waitSeconds"] = json!(seconds_since(j.created_ms, now_ms));
            line
        })
        .collect();
    let mut lines: Vec<Value> = by_labels
        .iter()
        .map(|(labels, l)| {
            json!({
                "labels": labels,
                "queued": l.queued,
                "inProgress": l.in_progress,
                "oldestWaitSeconds": l.oldest_ms.map(|at| seconds_since(Some(at), now_ms)),
                "starved": l.queued > 0 && l.in_progress == 0,
            })
        })
        .collect();
    // Longest-waiting label sets first: those are the ones short of runners.
    lines.sort_by_key(|l| std::cmp::Reverse(l["oldestWaitSeconds"].as_i64().unwrap_or(-1)));
    Ok(envelope::ok(json!({
        "queued": jobs.len(),
        "jobs": jobs,
        "byLabels": lines,
    })))
}

#[utoipa::path(get, path = "/api/actions/runners", tag = "actions",
    responses(
        (status = 200, description = "runners (runnerName, runnerGroup, jobs in progress with runningSeconds), inProgress", body = Envelope),
    ))]
async fn runners(
    State(state): State<AppState>,
    visibility: Visibility,
) -> Result<Json<Value>, ApiError> {
    let now_ms = timestamp::now_ms();
    let mut live = visible_live(&state, &visibility).await?;
    live.retain(|j| j.status == JobStatus::InProgress);
    live.sort_by_key(|j| (j.started_ms.unwrap_or(0), j.job_id));
    let mut runners: BTreeMap<(String, String), Vec<Value>> = BTreeMap::new();
    for job in &live {
        let key = (
            job.runner_name.clone().unwrap_or_default(),
            job.runner_group.clone().unwrap_or_default(),
        );
        let mut line = job_json(job);
        line["startedAt"] = json!(job.started_ms.map(timestamp::to_rfc3339));
        line["runningSeconds"] = json!(seconds_since(job.started_ms, now_ms));
        runners.entry(key).or_default().push(line);
    }
    let runners: Vec<Value> = runners
        .into_iter()
        .map(
            |((name, group), jobs)| json!({"runnerName": name, "runnerGroup": group, "jobs": jobs}),
        )
        .collect();
    Ok(envelope::ok(json!({
        "inProgress": live.len(),
        "runners": runners,
    })))
}
