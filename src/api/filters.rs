//! The ingest filter's HTTP face: `GET/PUT /api/filters` to read and replace the
//! rules in force, and `GET /api/webhooks/ignored`, the log of authentic deliveries
//! they turned away. A filter set here lasts until the process stops; the settings
//! (`HOOKVAULT_INGEST_ALLOW`, `HOOKVAULT_INGEST_DENY`) are what a start begins with.

use std::collections::HashMap;

use axum::Json;
use axum::extract::{Query, State};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::body::{Expected, JsonObject};
use super::openapi::ErrorEnvelope;
use super::rejected::{RejectedEnvelope, log_view, parse_log_limit};
use super::{ApiError, AppState, envelope};
use crate::domain::{ErrorCode, FilterSpec, IngestFilter};

impl Expected for Filters {
    const EXPECTED: &'static str = "an object {allow: [...], deny: [...]}";
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(get_filters, replace_filters))
        .routes(routes!(ignored))
}

/// The ingest filter: `field:glob` rules (fields `event`, `action`, `repository`,
/// `organization`). A delivery is kept when it matches an allow rule (or there are
/// none) and no deny rule.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Filters {
    #[serde(default)]
    #[schema(example = json!(["organization:octo-org"]))]
    pub allow: Vec<String>,
    #[serde(default)]
    #[schema(example = json!(["event:status", "repository:octo-org/sandbox-*"]))]
    pub deny: Vec<String>,
}

#[derive(Serialize, ToSchema)]
struct FiltersEnvelope {
    success: bool,
    data: Filters,
}

fn view(filter: &IngestFilter) -> Filters {
    let FilterSpec { allow, deny } = filter.spec();
    Filters { allow, deny }
}

#[utoipa::path(get, path = "/api/filters", tag = "ingest",
    responses((status = 200, description = "The ingest filter in force", body = FiltersEnvelope)))]
async fn get_filters(State(state): State<AppState>) -> Json<Value> {
    envelope::ok(view(&state.ingest_filter.current()))
}

#[utoipa::path(put, path = "/api/filters", tag = "ingest",
    request_body = Filters,
    responses((status = 200, description = "The new filter, in force for the next delivery (until the process stops)", body = FiltersEnvelope),
        (status = 400, description = "A rule that is not field:glob, an unknown field, a bad glob, or too many rules (the message names the rule)", body = ErrorEnvelope)))]
async fn replace_filters(
    State(state): State<AppState>,
    JsonObject(Filters { allow, deny }): JsonObject<Filters>,
) -> Result<Json<Value>, ApiError> {
    let filter = IngestFilter::from_spec(&FilterSpec { allow, deny })
        .map_err(|e| ApiError::new(ErrorCode::InvalidFilter, e.0))?;
    let answer = view(&filter);
    tracing::info!(allow = ?answer.allow, deny = ?answer.deny, "ingest filter replaced");
    state.ingest_filter.replace(filter);
    Ok(envelope::ok(answer))
}

#[utoipa::path(get, path = "/api/webhooks/ignored", tag = "ingest",
    params(("limit" = Option<usize>, Query, minimum = 1, maximum = 1000, description = "Default 100")),
    responses(
        (status = 200, description = "Authentic deliveries the ingest filter ignored, newest first (the last 1,000 are kept; metadata only, never the body), with a count per rule in byReason", body = RejectedEnvelope),
        (status = 400, description = "Bad limit", body = ErrorEnvelope),
    ))]
async fn ignored(
    State(state): State<AppState>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let limit = parse_log_limit(&params)?;
    let log = state.store.ignored(limit).await?;
    Ok(envelope::ok(log_view(log)))
}
