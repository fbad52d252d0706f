//! `POST /api/webhooks/github`: the ingest endpoint. Validates in the contract's
//! order, stores durably, and answers only after the commit.

use std::time::Duration;

use axum::Json;
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, Request};
use bytes::Bytes;
use serde_json::{Value, json};

use super::openapi::{Envelope, ErrorEnvelope, FormPayload};
use super::{ApiError, AppState, envelope, rejected};
use crate::config::MAX_BODY_BYTES;
use crate::domain::ErrorCode;
use crate::guard::ClientIp;
use crate::ingest::{self, DeliveryHeaders};
use crate::store::{DuplicateReason, IngestOutcome, Store};
use utoipa_axum::{router::OpenApiRouter, routes};

/// Bodies above this are verified and parsed on the blocking pool, so one 25 MiB
/// delivery does not stall the executor threads that serve everyone else.
const OFFLOAD_ABOVE_BYTES: usize = 256 * 1024;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        // The body is read by `ingest::read_body` under its own 25 MiB cap and
        // deadline, so axum's 2 MB default limit is turned off here deliberately.
        .routes(routes!(receive))
        .route_layer(DefaultBodyLimit::disable())
}

#[utoipa::path(post, path = "/api/webhooks/github", tag = "ingest",
    params(
        ("X-GitHub-Event" = String, Header, pattern = "^[a-z0-9_]{1,64}$"),
        ("X-GitHub-Delivery" = String, Header, pattern = "^[A-Za-z0-9_.:-]{1,128}$"),
        ("X-Hub-Signature-256" = String, Header, pattern = "^sha256=[0-9a-fA-F]{64}$", description = "sha256=<hex HMAC-SHA256 of the raw body>"),
        ("User-Agent" = String, Header, pattern = "^GitHub-Hookshot/", description = "Not checked with --no-ua-check"),
    ),
    request_body(description = "The webhook payload: JSON, or form-encoded with the JSON in payload=", content(
        (Object = "application/json"),
        (FormPayload = "application/x-www-form-urlencoded"),
    )),
    responses(
        (status = 200, description = "Stored durably, a duplicate, or ignored by the ingest filter: {deliveryId, id, status, duplicateOf?}, or {deliveryId, status: ignored, rule} (nothing stored). A content duplicate (the same payload under another delivery id, within the dedup window) is stored too, as its own event with status duplicate; duplicateOf names the delivery it duplicates", body = Envelope),
        (status = 400, description = "Missing or malformed headers, user agent, JSON or form", body = ErrorEnvelope),
        (status = 401, description = "Signature missing, malformed or matching no secret", body = ErrorEnvelope),
        (status = 408, description = "Body not received in time", body = ErrorEnvelope),
        (status = 413, description = "Body over 25 MiB", body = ErrorEnvelope),
        (status = 415, description = "Unsupported content type", body = ErrorEnvelope),
        (status = 503, description = "Too many deliveries in progress, the disk refused a write, or shutting down; retry after Retry-After seconds", body = ErrorEnvelope),
    ))]
async fn receive(
    State(state): State<AppState>,
    request: Request<Body>,
) -> Result<Json<Value>, ApiError> {
    let started = std::time::Instant::now();
    let (parts, body) = request.into_parts();
    let mut received = None;
    let result = verify_and_store(&state, &parts.headers, body, &mut received).await;
    let client = || parts.extensions.get::<ClientIp>().map(|c| c.0);
    match &result {
        Ok(acked) => {
            state.metrics.delivery(&acked.event, acked.status);
            state
                .metrics
                .ack_latency
                .observe(started.elapsed().as_secs_f64());
            if let Some(rule) = &acked.ignored_by {
                state.metrics.ignored(rule);
                let entry =
                    rejected::describe_ignored(rule, &parts.headers, client(), received.as_ref());
                if !state.store.record_ignored(entry) {
                    tracing::debug!("ignored-delivery log entry dropped: writer queue full");
                }
            }
        }
        Err(error) if error.status.is_client_error() => {
            state.metrics.rejection(error.code.as_str());
            let entry = rejected::describe(error, &parts.headers, client(), received.as_ref());
            // One line per refusal at the default level, so "why does GitHub say 401"
            // is answered by the log: the reason, the delivery and who sent it; never
            // the body, the signature or a secret.
            let refusal = &entry.refusal;
            tracing::info!(
                code = %refusal.code,
                delivery = refusal.delivery_id.as_deref().unwrap_or("-"),
                event = refusal.event.as_deref().unwrap_or("-"),
                remote = %refusal.source,
                status = refusal.status,
                "delivery rejected: {}",
                refusal.reason
            );
            if !state.store.record_rejection(entry) {
                tracing::debug!("rejected-delivery log entry dropped: writer queue full");
            }
        }
        Err(_) => {}
    }
    result.map(|acked| acked.answer)
}

/// An authentic delivery, answered.
struct Acknowledged {
    event: String,
    /// `stored`, `duplicate` or `ignored`.
    status: &'static str,
    /// The ingest filter's rule that ignored it.
    ignored_by: Option<String>,
    answer: Json<Value>,
}

/// The five checks, the ingest filter, then the durable store. The body, once read,
/// is left in `received` for the rejected and ignored logs.
async fn verify_and_store(
    state: &AppState,
    headers: &HeaderMap,
    body: Body,
    received: &mut Option<Bytes>,
) -> Result<Acknowledged, ApiError> {
    let parsed = DeliveryHeaders::parse(headers, state.config.check_user_agent)?;
    let body = ingest::read_body(body, headers, MAX_BODY_BYTES, state.config.body_timeout).await?;
    *received = Some(body.clone());
    // Bodies arrive at the sender's pace, bounded by the timeouts; what is bounded
    // here is the work after that (HMAC, JSON parsing, the store's queue).
    let _slot = state
        .ingest_slots
        .clone()
        .try_acquire_owned()
        .map_err(|_| {
            ApiError::new(
                ErrorCode::Overloaded,
                "too many deliveries in progress; retry shortly",
            )
            .retry_after(Duration::from_secs(1))
        })?;

    let (delivery, payload) = if body.len() > OFFLOAD_ABOVE_BYTES {
        let headers = headers.clone();
        let secrets = state.config.secrets.clone();
        tokio::task::spawn_blocking(move || ingest::verify_parsed(parsed, &headers, body, &secrets))
            .await
            .map_err(|error| {
                tracing::error!(%error, "verification task failed");
                ApiError::new(
                    ErrorCode::Internal,
                    "the delivery could not be verified; see the server log",
                )
            })??
    } else {
        ingest::verify_parsed(parsed, headers, body, &state.config.secrets)?
    };

    let delivery_id = delivery.id.to_string();
    let event = delivery.event.to_string();
    // After verification: only an authentic delivery is ever answered `ignored`.
    let filter = state.ingest_filter.current();
    if let Some(rule) = filter.ignores(&event, &delivery.fields) {
        tracing::debug!(%delivery_id, %event, %rule, "delivery ignored by the ingest filter");
        let answer =
            envelope::ok(json!({"deliveryId": delivery_id, "status": "ignored", "rule": rule}));
        return Ok(Acknowledged {
            event,
            status: "ignored",
            ignored_by: Some(rule),
            answer,
        });
    }
    let mut prepared = Store::prepare(delivery)?;
    state
        .processor
        .first_attempt(&mut prepared.record, &payload);
    let record = prepared.record.clone();
    let received_at_ms = record.received_at_ms;
    let fresh = state.search.fresh();
    fresh.offer(&delivery_id, received_at_ms, payload.shared_parts());
    let outcome = state
        .store
        .ingest_prepared(prepared)
        .await
        .inspect_err(|_| fresh.withdraw(&delivery_id, received_at_ms))?;
    let mut answer = json!({"deliveryId": delivery_id});
    let (id, status) = match outcome {
        IngestOutcome::Stored { seq } => {
            state.processor.announce(seq, record, payload);
            (seq, "stored")
        }
        IngestOutcome::Duplicate { seq, reason } => {
            // A content duplicate is stored, and indexed, under its own delivery id.
            if !matches!(reason, DuplicateReason::Content { .. }) {
                fresh.withdraw(&delivery_id, received_at_ms);
            }
            tracing::debug!(%delivery_id, %event, ?reason, seq, "duplicate delivery");
            if let DuplicateReason::Content { of: Some(original) } = reason {
                answer["duplicateOf"] = original.into();
            }
            (seq, "duplicate")
        }
    };
    tracing::debug!(%delivery_id, %event, id, status, "delivery acknowledged");
    answer["id"] = id.into();
    answer["status"] = status.into();
    let answer = envelope::ok(answer);
    Ok(Acknowledged {
        event,
        status,
        ignored_by: None,
        answer,
    })
}
