//! The events API: `GET /api/webhooks/events` (filtered, newest first, from the
//! secondary indexes), `GET /api/webhooks/events/{deliveryId}` (headers and full
//! payload) and `…/{deliveryId}/raw` (the body exactly as received).

use std::collections::HashMap;

use axum::Json;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::Value;

use super::openapi::{ErrorEnvelope, EventEnvelope, EventPage};
use super::{ApiError, AppState, envelope};
use crate::domain::ErrorCode;
use crate::domain::{PayloadEncoding, Visibility, timestamp};
use crate::ingest;
use crate::store::{EventQuery, Status, StoredEvent};
use crate::views::EventSummary;
use utoipa_axum::{router::OpenApiRouter, routes};

const DEFAULT_LIMIT: usize = 100;
const MAX_LIMIT: usize = 1000;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list))
        .routes(routes!(detail))
        .routes(routes!(raw))
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct EventDetail {
    #[serde(flatten)]
    summary: EventSummary,
    /// For a content duplicate: the delivery id of the event it duplicates.
    #[serde(skip_serializing_if = "Option::is_none")]
    duplicate_of: Option<String>,
    headers: HashMap<String, String>,
    content_type: &'static str,
    payload: Value,
}

super::openapi::one_of_schema!(
    /// The `status` filter.
    StatusName = Status::ALL.map(Status::as_str)
);

/// The filters of the events list and the export, as the OpenAPI description shows
/// them. Only described: [`parse_query`] reads them, with errors that name the
/// parameter.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)] // never built: it only carries the description
pub(super) struct EventFilters {
    /// owner/name
    repository: Option<String>,
    /// Event type, e.g. workflow_job
    event: Option<String>,
    action: Option<String>,
    #[param(inline)]
    status: Option<StatusName>,
    /// true is status=processed, false the others
    processed: Option<bool>,
    /// RFC 3339 or YYYY-MM-DD, inclusive
    #[param(rename = "startDate", format = DateTime)]
    start_date: Option<String>,
    /// RFC 3339 or YYYY-MM-DD, inclusive
    #[param(rename = "endDate", format = DateTime)]
    end_date: Option<String>,
}

#[utoipa::path(get, path = "/api/webhooks/events", tag = "events",
    params(
        EventFilters,
        ("limit" = Option<usize>, Query, minimum = 1, maximum = 1000, description = "Default 100"),
        ("offset" = Option<usize>, Query),
    ),
    responses(
        (status = 200, description = "Events, newest first", body = EventPage),
        (status = 400, description = "A bad parameter, named in the message", body = ErrorEnvelope),
    ))]
async fn list(
    State(state): State<AppState>,
    visibility: Visibility,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let query = EventQuery {
        visibility,
        ..parse_query(&params)?
    };
    let (limit, offset) = (query.limit, query.offset);
    let page = state.store.list(query).await?;
    let events: Vec<EventSummary> = page
        .events
        .into_iter()
        .map(|(seq, record)| EventSummary::new(seq, record))
        .collect();
    Ok(envelope::paginated(events, page.total, limit, offset))
}

#[utoipa::path(get, path = "/api/webhooks/events/{delivery_id}", tag = "events",
    params(("delivery_id" = String, Path, description = "X-GitHub-Delivery of the event", example = "72d3162e-cc78-11e3-81ab-4c9367dc0958")),
    responses(
        (status = 200, description = "The event with its headers, content type and payload", body = EventEnvelope),
        (status = 404, description = "No such delivery, or one the token may not see", body = ErrorEnvelope),
    ))]
async fn detail(
    State(state): State<AppState>,
    visibility: Visibility,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<Value>, ApiError> {
    let Path(delivery_id) = path?;
    let stored = visible_event(&state, &visibility, delivery_id.clone()).await?;
    let encoding = stored.record.encoding;
    let payload = ingest::decode_payload(encoding, &stored.body).map_err(|e| {
        tracing::error!(%delivery_id, error = %e, "stored payload no longer decodes");
        ApiError::new(ErrorCode::StorageError, "stored payload is unreadable")
    })?;
    let detail = EventDetail {
        summary: EventSummary::new(stored.seq, stored.record),
        duplicate_of: stored.duplicate_of,
        headers: stored.headers.into_iter().collect(),
        content_type: content_type(encoding),
        payload,
    };
    Ok(envelope::ok(detail))
}

#[utoipa::path(get, path = "/api/webhooks/events/{delivery_id}/raw", tag = "events",
    params(("delivery_id" = String, Path, description = "X-GitHub-Delivery of the event", example = "72d3162e-cc78-11e3-81ab-4c9367dc0958")),
    responses(
        (status = 200, description = "The body exactly as received, with the content type it came with", content(
            (Object = "application/json"),
            (String = "application/x-www-form-urlencoded"),
        )),
        (status = 404, description = "No such delivery, or one the token may not see", body = ErrorEnvelope),
    ))]
async fn raw(
    State(state): State<AppState>,
    visibility: Visibility,
    path: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let Path(delivery_id) = path?;
    let stored = visible_event(&state, &visibility, delivery_id.clone()).await?;
    Ok((
        [(header::CONTENT_TYPE, content_type(stored.record.encoding))],
        stored.body,
    )
        .into_response())
}

/// The stored event with this delivery id, if the caller may see it: one it may
/// not see is as unknown (404), so its existence does not leak.
pub(super) async fn visible_event(
    state: &AppState,
    visibility: &Visibility,
    delivery_id: String,
) -> Result<StoredEvent, ApiError> {
    state
        .store
        .get(delivery_id.clone())
        .await?
        .filter(|stored| stored.record.visible_to(visibility))
        .ok_or_else(|| ApiError::not_found(format!("no event with delivery id {delivery_id}")))
}

fn content_type(encoding: PayloadEncoding) -> &'static str {
    match encoding {
        PayloadEncoding::Json => "application/json",
        PayloadEncoding::Form => "application/x-www-form-urlencoded",
    }
}

/// Turns the query string into an [`EventQuery`], naming the parameter on any error.
pub(crate) fn parse_query(params: &HashMap<String, String>) -> Result<EventQuery, ApiError> {
    let text = |name: &str| {
        params
            .get(name)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    };
    let number = |name: &str, default: usize| -> Result<usize, ApiError> {
        text(name).map_or(Ok(default), |v| {
            v.parse()
                .map_err(|_| ApiError::bad_parameter(name, format!("{v:?} is not a whole number")))
        })
    };
    let date = |name: &str| -> Result<Option<i64>, ApiError> {
        text(name)
            .map(|v| {
                timestamp::parse(&v).ok_or_else(|| {
                    ApiError::bad_parameter(
                        name,
                        format!("{v:?} is not an RFC 3339 time or a YYYY-MM-DD date"),
                    )
                })
            })
            .transpose()
    };

    let limit = number("limit", DEFAULT_LIMIT)?;
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(ApiError::bad_parameter(
            "limit",
            format!("must be between 1 and {MAX_LIMIT}"),
        ));
    }
    let mut statuses: Vec<Status> = Status::ALL.to_vec();
    if let Some(raw) = text("status") {
        let status = Status::parse(&raw).ok_or_else(|| {
            ApiError::bad_parameter("status", "must be pending, processed, failed or duplicate")
        })?;
        statuses.retain(|s| *s == status);
    }
    if let Some(raw) = text("processed") {
        let processed: bool = raw
            .parse()
            .map_err(|_| ApiError::bad_parameter("processed", "must be true or false"))?;
        statuses.retain(|s| (*s == Status::Processed) == processed);
    }
    if statuses.is_empty() {
        return Err(ApiError::bad_parameter(
            "status",
            "contradicts the processed filter",
        ));
    }
    if statuses.len() == Status::ALL.len() {
        statuses.clear();
    }

    let query = EventQuery {
        repository: text("repository"),
        event: text("event"),
        action: text("action"),
        statuses,
        start_ms: date("startDate")?,
        end_ms: date("endDate")?,
        limit,
        offset: number("offset", 0)?,
        visibility: Visibility::All,
    };
    if let (Some(start), Some(end)) = (query.start_ms, query.end_ms)
        && start > end
    {
        return Err(ApiError::bad_parameter("startDate", "is after endDate"));
    }
    Ok(query)
}
