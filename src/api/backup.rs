//! Getting the data out of a running instance: `GET /api/backup` (a consistent
//! archive a fresh instance starts from, [`crate::backup`]) and `GET /api/export`
//! (NDJSON of the stored deliveries, filtered like the events list, in the format
//! `hookvault import` reads). Neither stops ingest.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use tokio::sync::Semaphore;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::openapi::ErrorEnvelope;
use super::{ApiError, AppState, events, streamed};
use crate::domain::ErrorCode;
use crate::domain::{Visibility, timestamp};
use crate::store::Status;
use crate::transfer::{self, ExportFilter};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(backup))
        .routes(routes!(export))
}

super::openapi::one_of_schema!(
    /// The `status` filter.
    StatusName = Status::ALL.map(Status::as_str)
);

/// One backup at a time: each holds a read transaction open (the database file
/// cannot reuse pages meanwhile) and a copy of the store on disk.
pub fn backup_slots() -> Arc<Semaphore> {
    Arc::new(Semaphore::new(1))
}

#[utoipa::path(get, path = "/api/backup", tag = "operations",
    description = "A consistent backup of the running instance as a zstd-compressed tar \
        (`hookvault.redb`, then `backup.json` with its checksum): every delivery \
        acknowledged before the request is in it. Restore with `hookvault restore`. \
        The webhook secret and the API token are not in it.",
    responses(
        (status = 200, description = "The archive, streamed", content_type = "application/zstd"),
        (status = 401, description = "No or wrong API token, or not a local client", body = ErrorEnvelope),
        (status = 409, description = "Another backup is being taken", body = ErrorEnvelope),
    ))]
async fn backup(State(state): State<AppState>) -> Result<Response, ApiError> {
    let slot = state.backups.clone().try_acquire_owned().map_err(|_| {
        ApiError::new(
            ErrorCode::BackupInProgress,
            "another backup is being taken; try again once it is done",
        )
    })?;
    // Acknowledged means in the log; the copy reads the store: wait until the store
    // has applied every delivery acknowledged so far.
    let acknowledged = state
        .store
        .log_progress()
        .appended
        .load(std::sync::atomic::Ordering::Acquire);
    state.store.applied(acknowledged).await?;
    let copy = crate::backup::temp_path(&state.config.data_dir);
    let facts = match state.store.snapshot_to(&copy).await {
        Ok(facts) => facts,
        Err(e) => {
            let _ = std::fs::remove_file(&copy);
            return Err(e.into());
        }
    };
    tracing::info!(
        events = facts.events,
        last_seq = facts.last_seq,
        "backup started"
    );
    let body = streamed::body("backup", move |out| {
        let _slot = slot;
        let written = crate::backup::write(&copy, facts, out);
        let _ = std::fs::remove_file(&copy);
        let manifest = written?;
        tracing::info!(
            events = manifest.events,
            database_bytes = manifest.database_bytes,
            "backup sent"
        );
        Ok(())
    });
    let name = format!("hookvault-{}.tar.zst", file_time());
    Ok((
        [
            (header::CONTENT_TYPE, "application/zstd".to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{name}\""),
            ),
        ],
        body,
    )
        .into_response())
}

#[utoipa::path(get, path = "/api/export", tag = "operations",
    description = "Every stored delivery matching the filters, oldest first, one JSON \
        object a line (headers, payload, receive time, status): what `hookvault export` \
        writes and `hookvault import` reads. Deliveries stored after the export began \
        are not in it.",
    params(
        ("repository" = Option<String>, Query, description = "owner/name"),
        ("event" = Option<String>, Query, description = "Event type, e.g. workflow_job"),
        ("action" = Option<String>, Query),
        ("status" = inline(Option<StatusName>), Query),
        ("processed" = Option<bool>, Query, description = "true is status=processed, false the others"),
        ("startDate" = Option<String>, Query, format = DateTime, description = "RFC 3339 or YYYY-MM-DD, inclusive"),
        ("endDate" = Option<String>, Query, format = DateTime, description = "RFC 3339 or YYYY-MM-DD, inclusive"),
    ),
    responses(
        (status = 200, description = "NDJSON, streamed", content_type = "application/x-ndjson"),
        (status = 400, description = "A bad parameter, named in the message", body = ErrorEnvelope),
        (status = 401, description = "No or wrong API token, or not a local client", body = ErrorEnvelope),
    ))]
async fn export(
    State(state): State<AppState>,
    visibility: Visibility,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    // The events list's parser, so the filters mean the same; it has no paging here.
    let query = events::parse_query(&params)?;
    let filter = ExportFilter {
        repository: query.repository,
        event: query.event,
        action: query.action,
        statuses: query.statuses,
        start_ms: query.start_ms,
        end_ms: query.end_ms,
        visibility,
    };
    let store = state.store.clone();
    let body = streamed::body("export", move |out| {
        let written = transfer::export(&store, &filter, out).map_err(std::io::Error::other)?;
        tracing::info!(deliveries = written, "export sent");
        Ok(())
    });
    let name = format!("hookvault-{}.ndjson", file_time());
    Ok((
        [
            (header::CONTENT_TYPE, "application/x-ndjson".to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{name}\""),
            ),
        ],
        body,
    )
        .into_response())
}

/// Now as `20261207T101500Z`, for file names.
fn file_time() -> String {
    timestamp::to_rfc3339(timestamp::now_ms())
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .take(15)
        .collect::<String>()
        + "Z"
}
