//! Failures and replay: `GET /api/webhooks/failed`, `POST /api/webhooks/replay/{id}`,
//! `POST /api/webhooks/retry-failed`, and `POST /api/webhooks/test`, which pushes a
//! synthesized event through the same pipeline.

use std::collections::HashMap;

use axum::Json;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, Query, State};
use serde::Deserialize;
use serde_json::{Value, json};

use super::body::{Expected, JsonObject};
use super::openapi::{Envelope, ErrorEnvelope, EventEnvelope, EventPage};
use super::{ApiError, AppState, envelope};
use crate::domain::ErrorCode;
use crate::domain::catalog;
use crate::domain::{
    Delivery, DeliveryId, EventFields, EventType, PayloadEncoding, Visibility, timestamp,
};
use crate::process::{Replay, synthesize};
use crate::store::{EventQuery, IngestOutcome, Status, TEST_ID_PREFIX};
use crate::views::EventSummary;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

const MAX_FAILED_LIMIT: usize = 1000;

impl Expected for TestRequest {
    const EXPECTED: &'static str = "{eventType, repository, action}";
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(failed))
        .routes(routes!(replay))
        .routes(routes!(retry_failed))
        .routes(routes!(test_event, remove_test_events))
}

/// `limit` of `GET /api/webhooks/failed`: 10 unless given.
pub(crate) fn parse_failed_limit(params: &HashMap<String, String>) -> Result<usize, ApiError> {
    parse_limit(params, 10)
}

/// `limit` of a list of failures: `default` unless given, 1 to 1000.
pub(super) fn parse_limit(
    params: &HashMap<String, String>,
    default: usize,
) -> Result<usize, ApiError> {
    match params.get("limit").map(|v| v.trim()) {
        None | Some("") => Ok(default),
        Some(raw) => raw
            .parse()
            .ok()
            .filter(|l| (1..=MAX_FAILED_LIMIT).contains(l))
            .ok_or_else(|| {
                ApiError::bad_parameter(
                    "limit",
                    format!("must be between 1 and {MAX_FAILED_LIMIT}"),
                )
            }),
    }
}

#[utoipa::path(get, path = "/api/webhooks/failed", tag = "processing",
    params(("limit" = Option<usize>, Query, minimum = 1, maximum = 1000, description = "Default 10")),
    responses((status = 200, description = "Failed events, newest first", body = EventPage),
        (status = 400, description = "Bad limit", body = ErrorEnvelope)))]
async fn failed(
    State(state): State<AppState>,
    visibility: Visibility,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let limit = parse_failed_limit(&params)?;
    let query = EventQuery {
        statuses: vec![Status::Failed],
        limit,
        visibility,
        ..Default::default()
    };
    let page = state.store.list(query).await?;
    let events: Vec<EventSummary> = page
        .events
        .into_iter()
        .map(|(seq, r)| EventSummary::new(seq, r))
        .collect();
    Ok(envelope::paginated(events, page.total, limit, 0))
}

#[utoipa::path(post, path = "/api/webhooks/replay/{delivery_id}", tag = "processing",
    params(("delivery_id" = String, Path, description = "X-GitHub-Delivery of the event", example = "72d3162e-cc78-11e3-81ab-4c9367dc0958")),
    responses((status = 200, description = "The event after processing it again", body = EventEnvelope),
        (status = 404, description = "No such delivery, or one the token may not see", body = ErrorEnvelope),
        (status = 409, description = "A content duplicate, which is never processed: replay the delivery it duplicates", body = ErrorEnvelope)))]
async fn replay(
    State(state): State<AppState>,
    visibility: Visibility,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<Value>, ApiError> {
    let Path(delivery_id) = path?;
    // One the caller may not see is as unknown.
    super::events::visible_event(&state, &visibility, delivery_id.clone()).await?;
    let (seq, record) = match state.processor.replay(&delivery_id).await? {
        Replay::Done(seq, record) => (seq, record),
        Replay::Unknown => {
            return Err(ApiError::not_found(format!(
                "no event with delivery id {delivery_id}"
            )));
        }
        Replay::Duplicate(original) => {
            let of = original.map_or_else(String::new, |id| format!(" of {id}"));
            return Err(ApiError::new(
                ErrorCode::DuplicateDelivery,
                format!("{delivery_id} is a content duplicate{of}; replay that delivery instead"),
            ));
        }
    };
    Ok(envelope::ok(EventSummary::new(seq, *record)))
}

#[utoipa::path(post, path = "/api/webhooks/retry-failed", tag = "processing",
    responses((status = 200, description = "{total, processed, failed}", body = Envelope)))]
async fn retry_failed(
    State(state): State<AppState>,
    visibility: Visibility,
) -> Result<Json<Value>, ApiError> {
    let report = state.processor.retry_failed(&visibility).await?;
    Ok(envelope::ok(json!({
        "total": report.total,
        "processed": report.processed,
        "failed": report.failed,
    })))
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct TestRequest {
    /// An event type of the catalog.
    #[schema(schema_with = catalog_names)]
    event_type: String,
    /// owner/name
    #[serde(default = "default_repository")]
    #[schema(pattern = "^[^/]+/[^/]+$", default = "hookvault/test")]
    repository: String,
    /// One of the event type's actions; default its first.
    action: Option<String>,
}

fn catalog_names() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
    let names: Vec<&str> = catalog::all().iter().map(|kind| kind.name).collect();
    super::openapi::one_of(&names)
}

fn default_repository() -> String {
    "hookvault/test".into()
}

#[utoipa::path(delete, path = "/api/webhooks/test", tag = "processing",
    responses((status = 200, description = "{removed}: every test event removed, with its counts", body = Envelope)))]
async fn remove_test_events(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    let removed = state.store.remove_test_events().await?;
    Ok(envelope::ok(json!({ "removed": removed })))
}

#[utoipa::path(post, path = "/api/webhooks/test", tag = "processing",
    request_body = TestRequest,
    responses((status = 200, description = "The stored, processed test event with its payload", body = Envelope),
        (status = 400, description = "Bad body, unknown event type or action (the message lists valid ones)", body = ErrorEnvelope)))]
async fn test_event(
    State(state): State<AppState>,
    visibility: Visibility,
    JsonObject(request): JsonObject<TestRequest>,
) -> Result<Json<Value>, ApiError> {
    if !visibility.sees_repository(&request.repository) {
        return Err(ApiError::new(
            ErrorCode::Forbidden,
            format!(
                "this token may not see repository {}; name one of its repositories",
                request.repository
            ),
        ));
    }
    let payload = synthesize::payload(
        &request.event_type,
        &request.repository,
        request.action.as_deref(),
    )
    .map_err(|e| ApiError::new(ErrorCode::InvalidTestEvent, e.to_string()))?;
    let body = serde_json::to_vec(&payload).expect("a Value serializes");
    let id = format!(
        "{TEST_ID_PREFIX}{}",
        hex::encode(rand::random::<[u8; 12]>())
    );
    let delivery = Delivery {
        id: DeliveryId::parse(&id).expect("generated ids are valid"),
        event: EventType::parse(&request.event_type).expect("catalog names are valid"),
        hook_id: None,
        headers: vec![
            ("x-github-event".into(), request.event_type.clone()),
            ("x-github-delivery".into(), id.clone()),
            ("x-hookvault-test".into(), "true".into()),
        ],
        encoding: PayloadEncoding::Json,
        fields: EventFields::extract(&payload),
        body: body.into(),
        // Test events are never folded into each other.
        content_key: None,
        received_at_ms: timestamp::now_ms(),
        test: true,
    };
    let IngestOutcome::Stored { seq } = state.store.ingest(delivery).await? else {
        unreachable!("a fresh random delivery id is never a duplicate");
    };
    // Processing records its outcome on the stored event: wait until it is there.
    state.store.applied(seq).await?;
    let record = state
        .processor
        .process_now(seq)
        .await?
        .ok_or_else(|| ApiError::not_found("the test event disappeared"))?;
    let mut event =
        serde_json::to_value(EventSummary::new(seq, record)).expect("summaries serialize");
    event["test"] = json!(true);
    event["payload"] = payload;
    Ok(envelope::ok(event))
}
