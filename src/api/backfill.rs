//! `POST /api/backfill` (a reconcile with GitHub's delivery log now, answering its
//! summary) and `GET /api/backfill` (the settings and the last run). The work is
//! `backfill`'s; this is its HTTP face.

use axum::Json;
use axum::extract::State;
use serde::Deserialize;
use serde_json::Value;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::body::{Expected, JsonObject};
use super::openapi::ErrorEnvelope;
use super::{ApiError, AppState, envelope};
use crate::backfill::summary::{Summary, parse_since};
use crate::backfill::{BackfillError, DEFAULT_SINCE, StatusView};
use crate::domain::ErrorCode;

impl Expected for BackfillRequest {
    const EXPECTED: &'static str = "{since?, dryRun?}";
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(status, run))
}

impl From<BackfillError> for ApiError {
    fn from(error: BackfillError) -> Self {
        let message = error.to_string();
        match error {
            BackfillError::NotConfigured => Self::new(ErrorCode::BackfillNotConfigured, message),
            BackfillError::Running => Self::new(ErrorCode::BackfillRunning, message),
            BackfillError::Stopped => Self::new(ErrorCode::ShuttingDown, message)
                .retry_after(std::time::Duration::from_secs(5)),
        }
    }
}

/// What to reconcile.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct BackfillRequest {
    /// How far back to read GitHub's delivery log: a number and s, m, h or d, up to
    /// 30d (default 3d, all that github.com keeps).
    #[schema(example = "3d", pattern = "^[0-9]{1,7}[smhd]$")]
    since: Option<String>,
    /// Only list what is missing; ask GitHub for nothing.
    #[serde(default)]
    dry_run: bool,
}

/// A run's summary.
#[derive(serde::Serialize, ToSchema)]
struct SummaryEnvelope {
    success: bool,
    data: Summary,
}

/// Backfill's settings and last run.
#[derive(serde::Serialize, ToSchema)]
struct StatusEnvelope {
    success: bool,
    data: StatusView,
}

#[utoipa::path(get, path = "/api/backfill", tag = "backfill",
    responses((status = 200, description = "Whether backfill is on, its settings (never the token), whether a run is in progress, and the last run's summary", body = StatusEnvelope)))]
async fn status(State(state): State<AppState>) -> Json<Value> {
    envelope::ok(state.backfill.status())
}

#[utoipa::path(post, path = "/api/backfill", tag = "backfill",
    request_body = BackfillRequest,
    responses((status = 200, description = "The run, done: deliveries checked, the missing ids, redeliveries requested and those that arrived, errors. It may take minutes when GitHub's rate limit makes it wait.", body = SummaryEnvelope),
        (status = 400, description = "A bad since, or an unknown field", body = ErrorEnvelope),
        (status = 409, description = "A run is in progress (backfill_running), or backfill has no GitHub credentials (backfill_not_configured)", body = ErrorEnvelope),
        (status = 503, description = "hookvault is shutting down", body = ErrorEnvelope)))]
async fn run(
    State(state): State<AppState>,
    JsonObject(request): JsonObject<BackfillRequest>,
) -> Result<Json<Value>, ApiError> {
    let since = match request.since.as_deref() {
        None => DEFAULT_SINCE,
        Some(raw) => parse_since(raw).map_err(|problem| {
            ApiError::new(ErrorCode::InvalidBody, format!("since: {problem}"))
        })?,
    };
    let summary = state.backfill.run_now(since, request.dry_run).await?;
    Ok(envelope::ok(summary))
}
