//! `GET /api/webhooks/search`: full-text search over every stored event.

use std::collections::HashMap;
use std::time::Instant;

use axum::Json;
use axum::extract::{Query, State};
use serde_json::{Value, json};

use super::openapi::{ErrorEnvelope, ListEnvelope};
use super::{ApiError, AppState, envelope};
use crate::domain::ErrorCode;
use crate::domain::{Visibility, timestamp};
use crate::search::{SearchError, SearchRequest, SortOrder};
use crate::views::EventSummary;
use utoipa_axum::{router::OpenApiRouter, routes};

const DEFAULT_LIMIT: usize = 20;
const MAX_LIMIT: usize = 100;
/// Deepest result reachable by paging; deeper pages are better asked with filters.
const MAX_WINDOW: usize = 10_000;
/// The values of `sort` and the order each asks for (`time` is another name for `newest`).
const SORTS: [(&str, SortOrder); 4] = [
    ("relevance", SortOrder::Relevance),
    ("newest", SortOrder::Newest),
    ("time", SortOrder::Newest),
    ("oldest", SortOrder::Oldest),
];

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(search))
}

/// Turns the query string into a [`SearchRequest`], naming the parameter on any error.
pub(crate) fn parse(params: &HashMap<String, String>) -> Result<SearchRequest, ApiError> {
    let text = |name: &str| {
        params
            .get(name)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    };
    let number = |name: &str, default: usize, max: usize| -> Result<usize, ApiError> {
        match text(name) {
            None => Ok(default),
            Some(v) => v.parse().ok().filter(|n| *n <= max).ok_or_else(|| {
                ApiError::bad_parameter(name, format!("must be a whole number up to {max}"))
            }),
        }
    };
    let date = |name: &str| -> Result<Option<i64>, ApiError> {
        text(name)
            .map(|v| {
                timestamp::parse(&v).ok_or_else(|| {
                    ApiError::bad_parameter(name, "is not an RFC 3339 time or a YYYY-MM-DD date")
                })
            })
            .transpose()
    };
    let limit = number("limit", DEFAULT_LIMIT, MAX_LIMIT)?.max(1);
    let offset = number("offset", 0, MAX_WINDOW)?;
    let sort = match text("sort") {
        None => SortOrder::Relevance,
        Some(raw) => SORTS
            .iter()
            .find(|(name, _)| *name == raw)
            .map(|(_, order)| *order)
            .ok_or_else(|| {
                ApiError::bad_parameter(
                    "sort",
                    format!("{raw:?} is not relevance, newest or oldest"),
                )
            })?,
    };
    Ok(SearchRequest {
        q: params.get("q").cloned().unwrap_or_default(),
        repository: text("repository"),
        event: text("event"),
        action: text("action"),
        sender: text("sender"),
        start_ms: date("startDate")?,
        end_ms: date("endDate")?,
        limit,
        offset,
        sort,
        visibility: Visibility::All,
    })
}

super::openapi::one_of_schema!(
    /// The `sort` order of search hits.
    Sort = SORTS.map(|(name, _)| name)
);

#[utoipa::path(get, path = "/api/webhooks/search", tag = "search",
    params(
        ("q" = Option<String>, Query, description = "tantivy query syntax; empty = every event"),
        ("repository" = Option<String>, Query), ("event" = Option<String>, Query),
        ("action" = Option<String>, Query), ("sender" = Option<String>, Query),
        ("startDate" = Option<String>, Query, format = DateTime, description = "RFC 3339 or YYYY-MM-DD, inclusive"),
        ("endDate" = Option<String>, Query, format = DateTime, description = "RFC 3339 or YYYY-MM-DD, inclusive"),
        ("sort" = inline(Option<Sort>), Query, description = "Default relevance with a query, newest without"),
        ("limit" = Option<usize>, Query, minimum = 0, maximum = 100, description = "Default 20; 0 reads as 1"),
        ("offset" = Option<usize>, Query, maximum = 10000),
    ),
    responses((status = 200, description = "hits (summary, score, snippet), total, tookMs, facets, indexLag", body = ListEnvelope),
        (status = 400, description = "Unparsable query or bad parameter", body = ErrorEnvelope)))]
async fn search(
    State(state): State<AppState>,
    visibility: Visibility,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let started = Instant::now();
    let request = SearchRequest {
        visibility,
        ..parse(&params)?
    };
    // How fresh the index is, read before searching: the searcher is reloaded before
    // the indexed position moves on, so the hits are at least as fresh as this says.
    // (Read after, a search still on the previous searcher could claim `indexLag: 0`
    // beside hits that miss the last commit.)
    let lag = state.search.lag(&state.store);
    let rebuilding = state.search.rebuilding();
    let (index, store) = (state.search.clone(), state.store.clone());
    let (limit, offset) = (request.limit, request.offset);
    let results = tokio::task::spawn_blocking(move || index.search_blocking(&store, &request))
        .await
        .map_err(|error| {
            // A panic message is for the log, not for the client.
            tracing::error!(%error, "search task failed");
            ApiError::new(ErrorCode::SearchError, "the search could not be completed")
        })?
        .map_err(|error| match error {
            SearchError::BadQuery(message) => ApiError::new(ErrorCode::InvalidQuery, message),
            other => {
                tracing::error!(error = %other, "search failed");
                ApiError::new(ErrorCode::SearchError, "the search could not be completed")
            }
        })?;
    let hits: Vec<Value> = results
        .hits
        .into_iter()
        .map(|hit| {
            let mut value = serde_json::to_value(EventSummary::new(hit.seq, hit.record))
                .expect("summaries serialize");
            value["score"] = json!(hit.score);
            value["snippet"] = json!(hit.snippet);
            value
        })
        .collect();
    let facet = |list: Vec<(String, u64)>| -> Vec<Value> {
        list.into_iter()
            .map(|(value, count)| json!({"value": value, "count": count}))
            .collect()
    };
    let data = json!({
        "hits": hits,
        "total": results.total,
        "tookMs": (started.elapsed().as_secs_f64() * 1000.0 * 100.0).round() / 100.0,
        "facets": {"event": facet(results.facets.event), "repository": facet(results.facets.repository)},
        "indexLag": lag,
        "rebuilding": rebuilding,
    });
    Ok(envelope::paginated(
        data,
        results.total as u64,
        limit,
        offset,
    ))
}
