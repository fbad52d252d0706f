//! `GET /api/webhooks/rejected`: the rejected-delivery log, so "signature mismatch"
//! can be debugged in one look; and [`describe`], which turns a refusal at the ingest
//! edge into an entry holding only what was known then.

use std::collections::HashMap;
use std::net::IpAddr;

use axum::Json;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, header};
use bytes::Bytes;
use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::openapi::ErrorEnvelope;
use super::{ApiError, AppState, envelope};
use crate::domain::{Refusal, timestamp};
use crate::store::{RejectedDelivery, RejectedLog};

const DEFAULT_LIMIT: usize = 100;
/// Longest header value kept in an entry.
const MAX_HEADER_CHARS: usize = 200;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list))
}

/// One refused delivery, as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RejectedEntry {
    pub received_at: String,
    #[serde(flatten)]
    pub refusal: Refusal,
}

/// The log: newest entries first, and how many were refused for each reason, ever.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RejectedLogView {
    pub entries: Vec<RejectedEntry>,
    pub by_reason: HashMap<String, u64>,
}

#[derive(Serialize, ToSchema)]
pub struct RejectedEnvelope {
    pub success: bool,
    pub data: RejectedLogView,
}

#[utoipa::path(get, path = "/api/webhooks/rejected", tag = "ingest",
    params(("limit" = Option<usize>, Query, minimum = 1, maximum = 1000, description = "Default 100")),
    responses(
        (status = 200, description = "Deliveries refused at the ingest endpoint, newest first (the last 1,000 are kept), with a count per reason", body = RejectedEnvelope),
        (status = 400, description = "Bad limit", body = ErrorEnvelope),
    ))]
async fn list(
    State(state): State<AppState>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let limit = parse_log_limit(&params)?;
    let log = state.store.rejected(limit).await?;
    Ok(envelope::ok(log_view(log)))
}

/// `limit` of a log listing: 1 to the entries kept, 100 unless given.
pub(super) fn parse_log_limit(params: &HashMap<String, String>) -> Result<usize, ApiError> {
    let keep = crate::store::REJECTED_KEPT as usize;
    match params.get("limit").map(|v| v.trim()) {
        None | Some("") => Ok(DEFAULT_LIMIT),
        Some(raw) => raw
            .parse()
            .ok()
            .filter(|l| (1..=keep).contains(l))
            .ok_or_else(|| {
                ApiError::bad_parameter("limit", format!("must be between 1 and {keep}"))
            }),
    }
}

/// The API's view of a log (rejected or ignored).
pub(super) fn log_view(log: RejectedLog) -> RejectedLogView {
    let entries = log
        .entries
        .into_iter()
        .map(|e| RejectedEntry {
            received_at: timestamp::to_rfc3339(e.received_at_ms),
            refusal: e.refusal,
        })
        .collect();
    RejectedLogView {
        entries,
        by_reason: log.by_reason.into_iter().collect(),
    }
}

/// The log entry for a refused delivery: its headers as sent (cut short), the body's
/// size and hash when it was read, the reason. Never the body or the signature.
pub fn describe(
    error: &ApiError,
    headers: &HeaderMap,
    client: Option<IpAddr>,
    body: Option<&Bytes>,
) -> RejectedDelivery {
    let outcome = (
        error.status.as_u16(),
        error.code.as_str(),
        error.message.clone(),
    );
    entry(outcome, headers, client, body)
}

/// The ignored log's entry for an authentic delivery the ingest filter turned away:
/// the same metadata, with the rule as its code.
pub fn describe_ignored(
    rule: &str,
    headers: &HeaderMap,
    client: Option<IpAddr>,
    body: Option<&Bytes>,
) -> RejectedDelivery {
    let reason = format!("ignored by the ingest filter: {rule}");
    entry((200, rule, reason), headers, client, body)
}

fn entry(
    (status, code, reason): (u16, &str, String),
    headers: &HeaderMap,
    client: Option<IpAddr>,
    body: Option<&Bytes>,
) -> RejectedDelivery {
    let text = |name: &str| {
        headers.get(name).map(|v| {
            let value = String::from_utf8_lossy(v.as_bytes());
            value.chars().take(MAX_HEADER_CHARS).collect::<String>()
        })
    };
    let declared = text(header::CONTENT_LENGTH.as_str()).and_then(|v| v.parse().ok());
    RejectedDelivery {
        received_at_ms: timestamp::now_ms(),
        refusal: Refusal {
            source: client.map_or_else(|| "unknown".to_owned(), |ip| ip.to_string()),
            event: text("x-github-event"),
            delivery_id: text("x-github-delivery"),
            user_agent: text(header::USER_AGENT.as_str()),
            content_type: text(header::CONTENT_TYPE.as_str()),
            signature_sent: headers.contains_key("x-hub-signature-256"),
            body_bytes: body.map(|b| b.len() as u64).or(declared),
            body_sha256: body.map(|b| hex::encode(Sha256::digest(b))),
            status,
            code: code.to_owned(),
            reason,
        },
    }
}
