//! `GET /api/repositories` and `GET /api/repositories/{owner}/{repo}`: activity,
//! totals and job metrics per repository, from the materialized counters.

use std::collections::{BTreeMap, HashMap};

use axum::Json;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, Query, State};
use serde_json::{Map, Value, json};

use super::openapi::{Envelope, ErrorEnvelope, ListEnvelope};
use super::{ApiError, AppState, envelope};
use crate::domain::{Visibility, timestamp};
use crate::process::counter;
use crate::store::{JobStats, RepoStats};
use utoipa_axum::{router::OpenApiRouter, routes};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list))
        .routes(routes!(detail))
}

fn summary(stats: &RepoStats) -> Value {
    let by_event: Map<String, Value> = stats
        .counters
        .iter()
        .filter_map(|(k, v)| {
            k.strip_prefix("event:")
                .map(|event| (event.to_owned(), json!(v)))
        })
        .collect();
    json!({
        "repository": stats.repository,
        "totalEvents": stats.get("total"),
        "firstSeen": stats.first_seen_ms().map(timestamp::to_rfc3339),
        "lastEventTime": stats.last_event_ms().map(timestamp::to_rfc3339),
        "eventsByType": by_event,
        "pushes": stats.get(counter::PUSHES),
        "commits": stats.get(counter::COMMITS),
        "pullRequests": {
            "opened": stats.get(counter::PRS_OPENED),
            "merged": stats.get(counter::PRS_MERGED),
            "closed": stats.get(counter::PRS_CLOSED),
        },
        "issues": {"opened": stats.get(counter::ISSUES_OPENED), "closed": stats.get(counter::ISSUES_CLOSED)},
        "releases": stats.get(counter::RELEASES),
        "openSecurityAlerts": stats.get(counter::OPEN_SECURITY_ALERTS),
    })
}

fn conclusions(counters: &BTreeMap<String, i64>) -> Map<String, Value> {
    counters
        .iter()
        .filter_map(|(k, v)| {
            k.strip_prefix(counter::CONCLUSION_PREFIX)
                .map(|c| (c.to_owned(), json!(v)))
        })
        .collect()
}

fn average(sum: Option<&i64>, count: Option<&i64>) -> Option<f64> {
    match (sum, count) {
        (Some(sum), Some(count)) if *count > 0 => {
            Some((*sum as f64 / *count as f64 * 10.0).round() / 10.0)
        }
        _ => None,
    }
}

fn job_line(job: &JobStats) -> Value {
    let c = &job.counters;
    let total: i64 = c
        .iter()
        .filter(|(k, _)| k.starts_with(counter::CONCLUSION_PREFIX))
        .map(|(_, v)| v)
        .sum();
    json!({
        "workflow": job.workflow,
        "job": job.job,
        "total": total,
        "conclusions": conclusions(c),
        "avgQueueTimeMs": average(c.get(counter::QUEUE_MS_SUM), c.get(counter::QUEUE_COUNT)),
        "avgRunTimeMs": average(c.get(counter::RUN_MS_SUM), c.get(counter::RUN_COUNT)),
    })
}

/// The orders `sort` accepts; the first is the default.
const SORTS: [&str; 3] = ["activity", "recent", "name"];

super::openapi::one_of_schema!(
    /// The `sort` order of the repository list.
    Sort = SORTS
);

/// How `GET /api/repositories` orders its list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RepositoryOrder {
    Activity,
    Recent,
    Name,
}

/// `sort` and `limit` of `GET /api/repositories`; blank ones are as if missing, like
/// every other area's parameters.
pub(crate) fn parse_list(
    params: &HashMap<String, String>,
) -> Result<(RepositoryOrder, usize), ApiError> {
    let text = |name: &str| params.get(name).map(|v| v.trim()).filter(|v| !v.is_empty());
    let order = match text("sort").unwrap_or("activity") {
        "activity" => RepositoryOrder::Activity,
        "recent" => RepositoryOrder::Recent,
        "name" => RepositoryOrder::Name,
        other => {
            return Err(ApiError::bad_parameter(
                "sort",
                format!("{other:?} is not activity, recent or name"),
            ));
        }
    };
    let limit = match text("limit") {
        None => 100,
        Some(raw) => raw
            .parse::<usize>()
            .ok()
            .filter(|l| (1..=1000).contains(l))
            .ok_or_else(|| ApiError::bad_parameter("limit", "must be between 1 and 1000"))?,
    };
    Ok((order, limit))
}

#[utoipa::path(get, path = "/api/repositories", tag = "repositories",
    params(("sort" = inline(Option<Sort>), Query, description = "Default activity"),
        ("limit" = Option<usize>, Query, minimum = 1, maximum = 1000, description = "Default 100")),
    responses((status = 200, description = "Repositories with their activity", body = ListEnvelope),
        (status = 400, description = "Bad sort or limit", body = ErrorEnvelope)))]
async fn list(
    State(state): State<AppState>,
    visibility: Visibility,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let (order, limit) = parse_list(&params)?;
    let mut repos = state.store.repositories().await?;
    repos.retain(|r| visibility.sees_repository(&r.repository));
    match order {
        RepositoryOrder::Activity => repos.sort_by(|a, b| {
            b.get("total")
                .cmp(&a.get("total"))
                .then_with(|| a.repository.cmp(&b.repository))
        }),
        RepositoryOrder::Recent => repos.sort_by_key(|r| std::cmp::Reverse(r.last_event_ms())),
        RepositoryOrder::Name => repos.sort_by(|a, b| a.repository.cmp(&b.repository)),
    }
    let total = repos.len() as u64;
    let data: Vec<Value> = repos.iter().take(limit).map(summary).collect();
    Ok(envelope::paginated(data, total, limit, 0))
}

#[utoipa::path(get, path = "/api/repositories/{owner}/{repo}", tag = "repositories",
    params(("owner" = String, Path, example = "Codertocat"), ("repo" = String, Path, example = "Hello-World")),
    responses((status = 200, description = "Activity, stats, jobs and workflowRuns", body = Envelope),
        (status = 404, description = "The repository never sent anything, or the token may not see it", body = ErrorEnvelope)))]
async fn detail(
    State(state): State<AppState>,
    visibility: Visibility,
    path: Result<Path<(String, String)>, PathRejection>,
) -> Result<Json<Value>, ApiError> {
    let Path((owner, repo)) = path?;
    let name = format!("{owner}/{repo}");
    let (stats, jobs) = state
        .store
        .repository(name.clone())
        .await?
        .filter(|_| visibility.sees_repository(&name))
        .ok_or_else(|| ApiError::not_found(format!("no events from repository {name}")))?;
    let mut body = summary(&stats);
    let (runs, jobs): (Vec<&JobStats>, Vec<&JobStats>) =
        jobs.iter().partition(|j| j.job.is_empty());
    body["jobs"] = json!(jobs.into_iter().map(job_line).collect::<Vec<_>>());
    body["workflowRuns"] = json!(
        runs.into_iter()
            .map(|r| json!({"workflow": r.workflow, "conclusions": conclusions(&r.counters)}))
            .collect::<Vec<_>>()
    );
    Ok(envelope::ok(body))
}
