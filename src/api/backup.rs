//! Getting the data out of a running instance: `GET /api/backup` (a consistent
//! archive a fresh instance starts from, [`crate::backup`]) and `GET /api/export`
//! (NDJSON of the stored deliveries, filtered like the events list, in the format
//! `hookvault import` reads). Neither stops ingest.

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use tokio::sync::Semaphore;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::openapi::ErrorEnvelope;
use super::{ApiError, AppState, events, streamed};
use crate::domain::ErrorCode;
use crate::domain::{Visibility, timestamp};
use crate::transfer::{self, ExportFilter};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(backup))
        .routes(routes!(export))
}

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
    Ok(attachment("application/zstd", "tar.zst", body))
}

#[utoipa::path(get, path = "/api/export", tag = "operations",
    description = "Every stored delivery matching the filters, oldest first, one JSON \
        object a line (headers, payload, receive time, status): what `hookvault export` \
        writes and `hookvault import` reads. Deliveries stored after the export began \
        are not in it.",
    params(events::EventFilters),
    responses(
        (status = 200, description = "NDJSON, streamed", content_type = "application/x-ndjson"),
        (status = 400, description = "A bad parameter, named in the message", body = ErrorEnvelope),
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
    Ok(attachment("application/x-ndjson", "ndjson", body))
}

/// A download of `body` named `hookvault-<now>.<extension>`.
fn attachment(content_type: &'static str, extension: &str, body: Body) -> Response {
    let name = format!("hookvault-{}.{extension}", file_time());
    let disposition = format!("attachment; filename=\"{name}\"");
    (
        [
            (header::CONTENT_TYPE, content_type.to_owned()),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        body,
    )
        .into_response()
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
