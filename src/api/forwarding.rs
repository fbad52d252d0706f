//! Forwarding targets: `GET/POST /api/forwarding/targets`, `GET/PUT/DELETE
//! /api/forwarding/targets/{name}`, a target's failed deliveries and their re-send.
//! The work is `forward`'s; this is its HTTP face.

use std::collections::HashMap;

use axum::Json;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::body::{Expected, JsonObject};
use super::openapi::{Envelope, ErrorEnvelope, Pagination};
use super::replay::parse_limit;
use super::{ApiError, AppState, envelope};
use crate::domain::ErrorCode;
use crate::domain::timestamp;
use crate::forward::status::FailedDelivery;
use crate::forward::target::TargetSpec;
use crate::forward::{ForwardError, Forwarding, MAX_RESEND, TargetView};

/// Every target.
#[derive(serde::Serialize, ToSchema)]
struct TargetList {
    success: bool,
    data: Vec<TargetView>,
}

/// One target.
#[derive(serde::Serialize, ToSchema)]
struct TargetEnvelope {
    success: bool,
    data: TargetView,
}

/// A page of a target's failed deliveries.
#[derive(serde::Serialize, ToSchema)]
struct FailedPage {
    success: bool,
    data: Vec<FailedDelivery>,
    pagination: Pagination,
}

impl Expected for TargetSpec {
    const EXPECTED: &'static str = "a target {name, url, …}";
}

impl Expected for ResendRequest {
    const EXPECTED: &'static str = "one of {seq}, {deliveryId}, {all: true}, {from, to}";
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_targets, create_target))
        .routes(routes!(get_target, replace_target, delete_target))
        .routes(routes!(failed))
        .routes(routes!(resend))
}

impl From<ForwardError> for ApiError {
    fn from(error: ForwardError) -> Self {
        let message = error.to_string();
        match error {
            ForwardError::Invalid(_) => Self::new(ErrorCode::InvalidTarget, message),
            ForwardError::Exists(_) => Self::new(ErrorCode::TargetExists, message),
            ForwardError::NotFound(_) => Self::not_found(message),
            ForwardError::FromSettings(_) => Self::new(ErrorCode::TargetFromSettings, message),
            ForwardError::Store(error) => error.into(),
        }
    }
}

fn forwarding(state: &AppState) -> &Forwarding {
    &state.forwarding
}

#[utoipa::path(get, path = "/api/forwarding/targets", tag = "forwarding",
    responses((status = 200, description = "Every target with its state, newest attempts first", body = TargetList)))]
async fn list_targets(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    Ok(envelope::ok(forwarding(&state).list().await?))
}

#[utoipa::path(post, path = "/api/forwarding/targets", tag = "forwarding",
    request_body = TargetSpec,
    responses((status = 201, description = "The target, created and running", body = TargetEnvelope),
        (status = 400, description = "A field that is wrong (the message names it), or an address that is refused", body = ErrorEnvelope),
        (status = 409, description = "A target with that name exists", body = ErrorEnvelope)))]
async fn create_target(
    State(state): State<AppState>,
    JsonObject(spec): JsonObject<TargetSpec>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let view = forwarding(&state).create(spec).await?;
    Ok((StatusCode::CREATED, envelope::ok(view)))
}

#[utoipa::path(get, path = "/api/forwarding/targets/{name}", tag = "forwarding",
    params(("name" = String, Path, description = "The target's name")),
    responses((status = 200, description = "The target with its state", body = TargetEnvelope),
        (status = 404, description = "No such target", body = ErrorEnvelope)))]
async fn get_target(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<Value>, ApiError> {
    let Path(name) = path?;
    Ok(envelope::ok(forwarding(&state).get(&name).await?))
}

#[utoipa::path(put, path = "/api/forwarding/targets/{name}", tag = "forwarding",
    params(("name" = String, Path, description = "The target's name")),
    request_body(content = TargetSpec, description = "The whole target (its `name` may be left out). Without `secret` the target keeps its secret. The cursor and the failed deliveries stay."),
    responses((status = 200, description = "The target, restarted with the new settings", body = TargetEnvelope),
        (status = 400, description = "A field that is wrong, or a name other than the path's", body = ErrorEnvelope),
        (status = 404, description = "No such target", body = ErrorEnvelope),
        (status = 409, description = "The target is defined by HOOKVAULT_FORWARD", body = ErrorEnvelope)))]
async fn replace_target(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    JsonObject(mut object): JsonObject<serde_json::Map<String, Value>>,
) -> Result<Json<Value>, ApiError> {
    let Path(name) = path?;
    match object.get("name") {
        None => {
            object.insert("name".into(), json!(name));
        }
        Some(given) if given == &json!(name) => {}
        Some(_) => {
            return Err(ApiError::new(
                ErrorCode::InvalidTarget,
                "name: a target cannot be renamed; create one under the new name",
            ));
        }
    }
    if object.contains_key("start") {
        return Err(ApiError::new(
            ErrorCode::InvalidTarget,
            "start: only when creating a target (the target keeps its cursor)",
        ));
    }
    let spec: TargetSpec = serde_json::from_value(Value::Object(object)).map_err(|e| {
        ApiError::new(
            ErrorCode::InvalidBody,
            format!("expected a target {{url, …}}: {e}"),
        )
    })?;
    Ok(envelope::ok(forwarding(&state).replace(spec).await?))
}

#[utoipa::path(delete, path = "/api/forwarding/targets/{name}", tag = "forwarding",
    params(("name" = String, Path, description = "The target's name")),
    responses((status = 200, description = "{deleted}: the target, its cursor and its failed deliveries are gone", body = Envelope),
        (status = 404, description = "No such target", body = ErrorEnvelope),
        (status = 409, description = "The target is defined by HOOKVAULT_FORWARD", body = ErrorEnvelope)))]
async fn delete_target(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<Value>, ApiError> {
    let Path(name) = path?;
    forwarding(&state).delete(&name).await?;
    Ok(envelope::ok(json!({ "deleted": name })))
}

#[utoipa::path(get, path = "/api/forwarding/targets/{name}/failed", tag = "forwarding",
    params(("name" = String, Path, description = "The target's name"),
        ("limit" = Option<usize>, Query, minimum = 1, maximum = 1000, description = "Default 100"),
        ("after" = Option<u64>, Query, description = "Only deliveries with a seq above this (paging)")),
    responses((status = 200, description = "The target's failed deliveries, oldest first, with their last attempts; `pagination.total` counts them all", body = FailedPage),
        (status = 400, description = "Bad limit or after", body = ErrorEnvelope),
        (status = 404, description = "No such target", body = ErrorEnvelope)))]
async fn failed(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let Path(name) = path?;
    let limit = parse_limit(&params, 100)?;
    let after: u64 = match params.get("after").map(|v| v.trim()) {
        None | Some("") => 0,
        Some(raw) => raw
            .parse()
            .map_err(|_| ApiError::bad_parameter("after", format!("{raw:?} is not a seq")))?,
    };
    let (failed, total) = forwarding(&state)
        .failed(&name, after.saturating_add(1), u64::MAX, limit)
        .await?;
    Ok(envelope::paginated(failed, total, limit, 0))
}

/// Which failed deliveries to send again: exactly one of `seq`, `deliveryId`, `all`,
/// or a time range (`from`, `to`: when the deliveries were received, RFC 3339).
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ResendRequest {
    seq: Option<u64>,
    delivery_id: Option<String>,
    #[serde(default)]
    all: bool,
    #[schema(example = "2026-12-01T00:00:00Z")]
    from: Option<String>,
    #[schema(example = "2026-12-02T00:00:00Z")]
    to: Option<String>,
}

#[utoipa::path(post, path = "/api/forwarding/targets/{name}/resend", tag = "forwarding",
    params(("name" = String, Path, description = "The target's name")),
    request_body = ResendRequest,
    responses((status = 202, description = "{queued}: failed deliveries queued to be sent again; each leaves the failed list once the target takes it (at most 10,000 per request)", body = Envelope),
        (status = 400, description = "Not exactly one selection, or a bad time", body = ErrorEnvelope),
        (status = 404, description = "No such target, or the selected delivery is not failed for it", body = ErrorEnvelope)))]
async fn resend(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    JsonObject(request): JsonObject<ResendRequest>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let Path(name) = path?;
    let ranged = request.from.is_some() || request.to.is_some();
    let chosen = [
        request.seq.is_some(),
        request.delivery_id.is_some(),
        request.all,
        ranged,
    ];
    if chosen.iter().filter(|c| **c).count() != 1 {
        return Err(ApiError::new(
            ErrorCode::InvalidBody,
            "give exactly one of seq, deliveryId, all, or from/to",
        ));
    }
    let time = |field: &str, value: &Option<String>, default: i64| -> Result<i64, ApiError> {
        value.as_deref().map_or(Ok(default), |v| {
            timestamp::parse(v).ok_or_else(|| {
                ApiError::new(
                    ErrorCode::InvalidBody,
                    format!("{field}: {v:?} is not an RFC 3339 time"),
                )
            })
        })
    };
    let (from_ms, to_ms) = (
        time("from", &request.from, i64::MIN)?,
        time("to", &request.to, i64::MAX)?,
    );
    let forwarding = forwarding(&state);
    let seqs: Vec<u64> = if let Some(seq) = request.seq {
        let (found, _) = forwarding.failed(&name, seq, seq, 1).await?;
        found.into_iter().map(|f| f.seq).collect()
    } else {
        let (found, _) = forwarding.failed(&name, 0, u64::MAX, MAX_RESEND).await?;
        found
            .into_iter()
            .filter(|f| match &request.delivery_id {
                Some(id) => &f.delivery_id == id,
                None => (from_ms..=to_ms).contains(&f.received_at_ms),
            })
            .map(|f| f.seq)
            .collect()
    };
    if seqs.is_empty() && (request.seq.is_some() || request.delivery_id.is_some()) {
        return Err(ApiError::not_found(format!(
            "that delivery is not failed for target {name}"
        )));
    }
    let queued = forwarding.resend(&name, seqs).await?;
    Ok((
        StatusCode::ACCEPTED,
        envelope::ok(json!({ "queued": queued })),
    ))
}
