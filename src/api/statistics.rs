//! `GET /api/webhooks/statistics` and `GET /api/webhooks/health`, both answered from
//! the materialized counters, so their cost does not grow with the stored events.

use std::collections::HashMap;

use axum::Json;
use axum::extract::{Query, State};
use serde::Serialize;
use serde_json::{Value, json};

use super::openapi::{Envelope, ErrorEnvelope};
use super::{ApiError, AppState, envelope};
use crate::domain::{Visibility, timestamp};
use crate::store::{EventStats, HealthFacts, Statistics, StoreError, bucket_upper_us};
use crate::views::success_rate;
use utoipa_axum::{router::OpenApiRouter, routes};

/// Longest window the statistics endpoint accepts: a year of hour buckets.
const MAX_HOURS: i64 = 24 * 366;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(statistics))
}

/// Health stays public, with or without an API token: it reveals no payload data.
pub fn health_router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(health))
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct EventLine {
    event: String,
    total: i64,
    processed: i64,
    failed: i64,
    pending: i64,
    duplicates: i64,
    avg_processing_time_ms: f64,
}

fn avg_ms(stats: &EventStats) -> f64 {
    if stats.timed == 0 {
        return 0.0;
    }
    round3(stats.time_us_sum as f64 / stats.timed as f64 / 1000.0)
}

fn round3(value: f64) -> f64 {
    (value * 1000.0).round() / 1000.0
}

/// The bucket upper bound (ms) below which `q` of the processing times fall.
fn percentile_ms(stats: &Statistics, q: f64) -> Option<f64> {
    let total: i64 = stats.histogram.values().sum();
    if total == 0 {
        return None;
    }
    let rank = (q * total as f64).ceil().max(1.0) as i64;
    let mut seen = 0;
    for (bucket, count) in &stats.histogram {
        seen += count;
        if seen >= rank {
            return Some(bucket_upper_us(*bucket) as f64 / 1000.0);
        }
    }
    None
}

/// `hours`: the window in hours, 24 unless given.
pub(crate) fn parse_hours(params: &HashMap<String, String>) -> Result<i64, ApiError> {
    super::params::window_hours(params, MAX_HOURS)
}

#[utoipa::path(get, path = "/api/webhooks/statistics", tag = "statistics",
    params(("hours" = Option<i64>, Query, minimum = 1, maximum = 8784, description = "Default 24")),
    responses(
        (status = 200, description = "summary, byEvent, byRepository, processingTimeMs, hourly, window, ignoredByRule (deliveries the ingest filter ignored, per rule, ever; their sum is summary.ignoredEvents). For a token limited to organizations: only what the per-repository counters hold (totals are sums over byRepository; statuses, types and times null) and visibility", body = Envelope),
        (status = 400, description = "Bad window", body = ErrorEnvelope),
    ))]
async fn statistics(
    State(state): State<AppState>,
    visibility: Visibility,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let hours = parse_hours(&params)?;
    if !visibility.is_all() {
        let stats = state
            .store
            .visible_statistics(timestamp::now_ms(), hours, visibility.clone())
            .await?;
        return Ok(envelope::ok(visible_answer(&stats, hours, &visibility)));
    }
    let stats = state.store.statistics(timestamp::now_ms(), hours).await?;
    // Deliveries the ingest filter ignored are not events: their counts are kept per
    // rule since the data directory was made, whatever the window.
    let ignored_by_rule: HashMap<String, u64> = state
        .store
        .ignored(0)
        .await?
        .by_reason
        .into_iter()
        .collect();

    let mut by_event: Vec<EventLine> = stats
        .by_event
        .iter()
        .filter(|(_, s)| s.total > 0 || s.duplicates > 0)
        .map(|(event, s)| EventLine {
            event: event.clone(),
            total: s.total,
            processed: s.processed,
            failed: s.failed,
            pending: s.pending,
            duplicates: s.duplicates,
            avg_processing_time_ms: avg_ms(s),
        })
        .collect();
    by_event.sort_by(|a, b| b.total.cmp(&a.total).then_with(|| a.event.cmp(&b.event)));
    let mut by_repository: Vec<(&String, &i64)> = stats.by_repository.iter().collect();
    by_repository.sort_by(|a, b| b.1.cmp(a.1).then_with(|| a.0.cmp(b.0)));
    let hourly: Vec<Value> = each_hour(&stats, hours)
        .map(|(hour, s)| {
            json!({"hour": hour, "total": s.total, "processed": s.processed,
                   "failed": s.failed, "pending": s.pending, "avgProcessingTimeMs": avg_ms(&s)})
        })
        .collect();
    let s = &stats.summary;
    Ok(envelope::ok(json!({
        "summary": {
            "totalEvents": s.total,
            "processedEvents": s.processed,
            "pendingEvents": s.pending,
            "failedEvents": s.failed,
            "duplicateEvents": s.duplicates,
            "ignoredEvents": ignored_by_rule.values().sum::<u64>(),
            "successRate": success_rate(s),
            "avgProcessingTimeMs": avg_ms(s),
        },
        "byEvent": by_event,
        "byRepository": by_repository.iter().take(10).map(|(r, n)| json!({"repository": r, "total": n})).collect::<Vec<_>>(),
        "processingTimeMs": {
            "p50": percentile_ms(&stats, 0.50),
            "p95": percentile_ms(&stats, 0.95),
            "p99": percentile_ms(&stats, 0.99),
        },
        "hourly": hourly,
        "window": {"hours": hours, "from": timestamp::to_rfc3339(stats.from_hour_ms)},
        "ignoredByRule": ignored_by_rule,
    })))
}

/// Every hour of the window (RFC 3339) with its counts, empty ones included.
fn each_hour(stats: &Statistics, hours: i64) -> impl Iterator<Item = (String, EventStats)> + '_ {
    (0..hours)
        .map(|i| stats.from_hour_ms + i * crate::store::HOUR_MS)
        .map(|hour| {
            let s = stats.hourly.get(&hour).cloned().unwrap_or_default();
            (timestamp::to_rfc3339(hour), s)
        })
}

/// The statistics of a caller limited to some organizations or repositories, from
/// the per-repository counters: `totalEvents` and each hour's `total` are sums over
/// `byRepository` (every visible repository with events in the window). Statuses,
/// event types and processing times are not counted per repository: they are
/// `null` (and `byEvent` empty). Events without a repository are not counted.
fn visible_answer(stats: &Statistics, hours: i64, visibility: &Visibility) -> Value {
    let mut by_repository: Vec<(&String, &i64)> = stats.by_repository.iter().collect();
    by_repository.sort_by(|a, b| b.1.cmp(a.1).then_with(|| a.0.cmp(b.0)));
    let hourly: Vec<Value> = each_hour(stats, hours)
        .map(|(hour, s)| {
            json!({"hour": hour, "total": s.total, "processed": null, "failed": null,
                   "pending": null, "avgProcessingTimeMs": null})
        })
        .collect();
    json!({
        "summary": {
            "totalEvents": stats.summary.total,
            "processedEvents": null,
            "pendingEvents": null,
            "failedEvents": null,
            "duplicateEvents": null,
            "ignoredEvents": null,
            "successRate": null,
            "avgProcessingTimeMs": null,
        },
        "byEvent": [],
        "byRepository": by_repository.iter().map(|(r, n)| json!({"repository": r, "total": n})).collect::<Vec<_>>(),
        "processingTimeMs": {"p50": null, "p95": null, "p99": null},
        "hourly": hourly,
        "window": {"hours": hours, "from": timestamp::to_rfc3339(stats.from_hour_ms)},
        "ignoredByRule": {},
        "visibility": visibility,
    })
}

/// The health score: 100 minus penalties, each capped:
/// - failures: up to 40, in proportion to the failed share of the last hour's events;
/// - backlog: up to 20, one point per 50 pending events;
/// - processing lag: 10 when the oldest pending event waits over 10 s, 20 over 60 s;
/// - store: 60 while commits fail (none reached the disk since the last failure), so
///   the status is `unhealthy`; 40 when one failed in the last 5 minutes;
/// - search index: 10 when indexing failed in the last 5 minutes (the index is
///   derived and catches up by itself; only search results lag).
///
/// `healthy` at 80 and above, `degraded` from 50, `unhealthy` below.
pub fn health_score(
    facts: &HealthFacts,
    hour: &EventStats,
    index_failure_ms: Option<i64>,
    now_ms: i64,
) -> (u32, Vec<String>) {
    let mut score: i64 = 100;
    let mut reasons = Vec::new();
    if hour.total > 0 && hour.failed > 0 {
        let penalty = (40 * hour.failed / hour.total).max(1);
        score -= penalty;
        reasons.push(format!(
            "{} of {} events failed in the last hour",
            hour.failed, hour.total
        ));
    }
    if facts.pending > 0 {
        score -= (facts.pending as i64 / 50).min(20);
    }
    if let Some(oldest) = facts.oldest_pending_ms {
        let lag = now_ms - oldest;
        if lag > 60_000 {
            score -= 20;
            reasons.push(format!("oldest pending event has waited {} s", lag / 1000));
        } else if lag > 10_000 {
            score -= 10;
            reasons.push(format!("oldest pending event has waited {} s", lag / 1000));
        }
    }
    if facts.writes_failing {
        score -= 60;
        reasons
            .push("writes to the store are failing; deliveries get 503 until one succeeds".into());
    } else if facts
        .last_write_failure_ms
        .is_some_and(|at| now_ms - at < 300_000)
    {
        score -= 40;
        reasons.push("a write to the store failed in the last 5 minutes".into());
    }
    if index_failure_ms.is_some_and(|at| now_ms - at < 300_000) {
        score -= 10;
        reasons.push(
            "search indexing failed in the last 5 minutes; search results lag until it catches up"
                .into(),
        );
    }
    (score.clamp(0, 100) as u32, reasons)
}

/// The acknowledgement log: how far its application to the store lags, and its size.
fn log_facts(log: &crate::store::LogProgress) -> Value {
    json!({
        "applierLag": log.lag(),
        "lastApplyMs": log.last_apply_us.load(std::sync::atomic::Ordering::Relaxed) as f64 / 1000.0,
        "bytes": log.bytes.load(std::sync::atomic::Ordering::Relaxed),
        "segments": log.segments.load(std::sync::atomic::Ordering::Relaxed),
    })
}

#[utoipa::path(get, path = "/api/webhooks/health", tag = "statistics",
    responses((status = 200, description = "status, healthScore, recentEvents, lastEventTime, failedWebhooksCount, metrics.hourly, reasons, log{applierLag, lastApplyMs, bytes, segments}, search{indexLag, rebuilding, lastFailureTime}, stream{lag, cursor, published, connected, lastError} (when streaming to NATS), backfill{running, lastRunAt, lastRunClean, checked, missing, requested, confirmed, errors} (when backfill has credentials), tokenRequired", body = Envelope)))]
async fn health(
    State(state): State<AppState>,
    request: axum::extract::Request,
) -> Result<Json<Value>, ApiError> {
    // Whether this caller must send a token: not on this machine when the token is
    // the generated one (the dashboard asks for it only when it must).
    let peer = request
        .extensions()
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|c| c.0);
    let token_required = state.config.api_token.is_some()
        && !(state.config.local_without_token()
            && crate::guard::access::is_direct_local(peer, request.headers()));
    let now = timestamp::now_ms();
    let facts = match state.store.health_facts(now - 5 * 60_000).await {
        Ok(facts) => facts,
        // The database is closed until the writer can reopen it: nothing to count.
        Err(StoreError::Unavailable(trouble)) => {
            return Ok(envelope::ok(json!({
                "status": "unhealthy",
                "healthScore": 0,
                "tokenRequired": token_required,
                "reasons": [format!("the store cannot write ({trouble}); deliveries get 503 until it can")],
            })));
        }
        Err(error) => return Err(error.into()),
    };
    let hour = state.store.statistics(now, 1).await?.summary;
    let index_failure_ms = state.search.last_failure_ms();
    let (score, reasons) = health_score(&facts, &hour, index_failure_ms, now);
    let status = match score {
        80.. => "healthy",
        50.. => "degraded",
        _ => "unhealthy",
    };
    let mut health = json!({
        "status": status,
        "healthScore": score,
        "recentEvents": facts.events_since,
        "lastEventTime": facts.last_event_ms.map(timestamp::to_rfc3339),
        "failedWebhooksCount": facts.failed,
        "pendingWebhooksCount": facts.pending,
        "totalEvents": facts.total_events,
        "tokenRequired": token_required,
        "reasons": reasons,
        "log": log_facts(state.store.log_progress()),
        "search": {
            "indexLag": state.search.lag(&state.store),
            "rebuilding": state.search.rebuilding(),
            "lastFailureTime": index_failure_ms.map(timestamp::to_rfc3339),
        },
        "metrics": {"hourly": {
            "total": hour.total,
            "failed": hour.failed,
            "avgProcessingTimeMs": avg_ms(&hour),
        }},
    });
    if let Some(backfill) = state.backfill.health() {
        health["backfill"] = backfill;
    }
    if let Some(stream) = &state.stream {
        health["stream"] = json!({
            "lag": stream.lag(&state.store),
            "cursor": stream.cursor(),
            "published": stream.published.get(),
            "connected": stream.connected(),
            "lastError": stream.last_error(),
        });
    }
    if let Some(cluster) = &state.cluster {
        health["cluster"] = json!({
            "following": cluster.following(),
            "streamLastSeq": cluster.stream_last(),
            "appliedStreamSeq": crate::cluster::Status::decided(&state.store),
            "lag": cluster.lag(&state.store),
            "lastError": cluster.last_error(),
            "holdsLease": state.forwarding.runs_here(),
        });
    }
    Ok(envelope::ok(health))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn health_penalties_add_up() {
        let now = 1_000_000_000;
        let quiet = HealthFacts::default();
        assert_eq!(
            health_score(&quiet, &EventStats::default(), None, now).0,
            100
        );
        let hour = EventStats {
            total: 10,
            failed: 5,
            ..Default::default()
        };
        let facts = HealthFacts {
            oldest_pending_ms: Some(now - 120_000),
            pending: 100,
            last_write_failure_ms: Some(now - 1_000),
            ..Default::default()
        };
        // 100 - 20 (failures) - 2 (backlog) - 20 (lag) - 40 (store)
        assert_eq!(health_score(&facts, &hour, None, now).0, 18);
        // - 10 (search index), which counts for 5 minutes
        let (score, reasons) = health_score(&facts, &hour, Some(now - 299_000), now);
        assert_eq!(score, 8);
        assert!(
            reasons.last().unwrap().contains("search index"),
            "{reasons:?}"
        );
        assert_eq!(health_score(&facts, &hour, Some(now - 301_000), now).0, 18);
        // A store that still cannot write is unhealthy on its own.
        let failing = HealthFacts {
            last_write_failure_ms: Some(now - 1_000),
            writes_failing: true,
            ..Default::default()
        };
        let (score, reasons) = health_score(&failing, &EventStats::default(), None, now);
        assert_eq!(score, 40);
        assert!(reasons[0].contains("failing"), "{reasons:?}");
    }
}
