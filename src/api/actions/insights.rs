//! `GET /api/actions/insights`: counts, conclusions, failure rate, flakiness and
//! queue/run time percentiles per repository × workflow × job × label set, summed
//! from the hourly cells of the window.

use std::collections::{BTreeMap, HashMap};
use std::ops::Bound;

use axum::Json;
use axum::extract::{Query, State};
use serde_json::{Value, json};

use crate::api::openapi::{Envelope, ErrorEnvelope};
use crate::api::{ApiError, AppState, envelope};
use crate::domain::{Visibility, timestamp};
use crate::store::{ACTIONS_BOUNDS_S, InsightCells, actions_metric as metric};

/// Longest window: 90 days.
const MAX_HOURS: i64 = 24 * 90;
/// Entries in the `slowest` and `flakiest` lists.
const TOP: usize = 10;

/// `hours`: the window in hours, 24 unless given.
pub(crate) fn parse_hours(params: &HashMap<String, String>) -> Result<i64, ApiError> {
    crate::api::params::window_hours(params, MAX_HOURS)
}

type Metrics = BTreeMap<String, i64>;

/// The bucket bound (seconds) at or below which `q` of the `kind` times fall; the
/// open-ended last bucket answers its lower bound. `None` without times.
pub fn percentile_s(m: &Metrics, kind: &str, q: f64) -> Option<i64> {
    let total = m
        .get(&format!("{kind}{}", metric::TIMED))
        .copied()
        .unwrap_or(0);
    if total <= 0 {
        return None;
    }
    let rank = (q * total as f64).ceil().max(1.0) as i64;
    // The buckets `<kind>:NN` sort in bucket order; empty ones are absent.
    let prefix = format!("{kind}:");
    let mut seen = 0;
    for (name, count) in m.range::<str, _>((Bound::Included(prefix.as_str()), Bound::Unbounded)) {
        let Some(bucket) = name.strip_prefix(&prefix) else {
            break;
        };
        seen += count;
        if seen >= rank {
            let bucket: usize = bucket.parse().unwrap_or(usize::MAX);
            return ACTIONS_BOUNDS_S
                .get(bucket)
                .or(ACTIONS_BOUNDS_S.last())
                .copied();
        }
    }
    ACTIONS_BOUNDS_S.last().copied()
}

fn times(m: &Metrics, kind: &str) -> Value {
    let timed = m
        .get(&format!("{kind}{}", metric::TIMED))
        .copied()
        .unwrap_or(0);
    let sum = m
        .get(&format!("{kind}{}", metric::MS_SUM))
        .copied()
        .unwrap_or(0);
    json!({
        "p50": percentile_s(m, kind, 0.50),
        "p95": percentile_s(m, kind, 0.95),
        "mean": (timed > 0).then(|| (sum as f64 / timed as f64 / 10.0).round() / 100.0),
        "count": timed,
    })
}

fn summary(m: &Metrics) -> Value {
    let count = m.get(metric::COUNT).copied().unwrap_or(0);
    let conclusions: BTreeMap<&str, i64> = m
        .iter()
        .filter_map(|(k, v)| Some((k.strip_prefix(metric::CONCLUSION)?, *v)))
        .collect();
    let failures = conclusions.get("failure").copied().unwrap_or(0);
    json!({
        "count": count,
        "conclusions": conclusions,
        "failureRate": if count > 0 { (failures as f64 / count as f64 * 10_000.0).round() / 10_000.0 } else { 0.0 },
        "flaky": m.get(metric::FLAKY).copied().unwrap_or(0),
        "queueSeconds": times(m, metric::QUEUE),
        "runSeconds": times(m, metric::RUN),
    })
}

#[utoipa::path(get, path = "/api/actions/insights", tag = "actions",
    params(
        ("hours" = Option<i64>, Query, minimum = 1, maximum = 2160, description = "Window of completed jobs, by completion hour. Default 24"),
        ("repository" = Option<String>, Query, description = "Only this repository (owner/name)"),
        ("workflow" = Option<String>, Query, description = "Only this workflow name"),
        ("labels" = Option<String>, Query, description = "Only this label set: the job's labels sorted and joined with commas"),
    ),
    responses(
        (status = 200, description = "window, totals, groups (repository, workflow, job, labels: count, conclusions, failureRate, flaky, queueSeconds and runSeconds p50/p95/mean), slowest, flakiest", body = Envelope),
        (status = 400, description = "Bad window", body = ErrorEnvelope),
    ))]
pub(super) async fn insights(
    State(state): State<AppState>,
    visibility: Visibility,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let hours = parse_hours(&params)?;
    let mut cells = state
        .store
        .actions_insights(timestamp::now_ms(), hours)
        .await?;
    cells
        .groups
        .retain(|(repository, ..), _| visibility.sees_repository(repository));
    let filter = |key: &str| params.get(key).map(String::as_str);
    Ok(envelope::ok(answer(
        cells,
        hours,
        filter("repository"),
        filter("workflow"),
        filter("labels"),
    )))
}

/// The insights answer from the window's cells, with only the groups of this
/// repository, workflow and label set when given. Public so that the statistics
/// bench times the whole answer, not only the store's read.
pub fn answer(
    cells: InsightCells,
    hours: i64,
    repository: Option<&str>,
    workflow: Option<&str>,
    labels: Option<&str>,
) -> Value {
    let wanted = |filter: Option<&str>, value: &str| filter.is_none_or(|w| w == value);
    let mut totals = Metrics::new();
    let mut groups: Vec<(Value, Metrics)> = Vec::new();
    for ((repo, flow, job, set), m) in cells.groups {
        if !(wanted(repository, &repo) && wanted(workflow, &flow) && wanted(labels, &set)) {
            continue;
        }
        for (k, v) in &m {
            *totals.entry(k.clone()).or_default() += v;
        }
        let mut line = summary(&m);
        line["repository"] = json!(repo);
        line["workflow"] = json!(flow);
        line["job"] = json!(job);
        line["labels"] = json!(set);
        groups.push((line, m));
    }
    groups.sort_by_key(|(line, _)| std::cmp::Reverse(line["count"].as_i64().unwrap_or(0)));
    let pick = |key: fn(&Value) -> (i64, i64)| -> Vec<Value> {
        let mut ranked: Vec<&Value> = groups
            .iter()
            .map(|(l, _)| l)
            .filter(|l| key(l).0 > 0)
            .collect();
        ranked.sort_by_key(|l| std::cmp::Reverse(key(l)));
        ranked.into_iter().take(TOP).cloned().collect()
    };
    let slowest = pick(|l| {
        let run = &l["runSeconds"];
        (
            run["p95"].as_i64().unwrap_or(0),
            (run["mean"].as_f64().unwrap_or(0.0) * 100.0) as i64,
        )
    });
    let flakiest = pick(|l| {
        (
            l["flaky"].as_i64().unwrap_or(0),
            l["count"].as_i64().unwrap_or(0),
        )
    });
    json!({
        "window": {"hours": hours, "from": timestamp::to_rfc3339(cells.from_hour_ms)},
        "totals": summary(&totals),
        "groups": groups.into_iter().map(|(l, _)| l).collect::<Vec<_>>(),
        "slowest": slowest,
        "flakiest": flakiest,
    })
}
