//! What is known of a delivery refused at ingest: the rejected-delivery log keeps it
//! (with the time) and the API shows it as is. Never the body, never a secret or an
//! expected signature.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// One refused delivery, as far as it was read. The field order is the stored
/// encoding's (bincode, positional): add fields at the end only, with a new format.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Refusal {
    /// Client address (behind a trusted proxy, the address it reported).
    pub source: String,
    /// `X-GitHub-Event` and `X-GitHub-Delivery` as sent, when present (cut to 200 bytes).
    pub event: Option<String>,
    pub delivery_id: Option<String>,
    pub user_agent: Option<String>,
    pub content_type: Option<String>,
    /// Whether an `X-Hub-Signature-256` header came at all (its value is not kept).
    pub signature_sent: bool,
    /// Bytes received, or the declared `Content-Length` when the body was not read.
    pub body_bytes: Option<u64>,
    /// SHA-256 of the body, when it was read in full: compare with the payload
    /// GitHub shows under "Recent Deliveries".
    pub body_sha256: Option<String>,
    pub status: u16,
    /// Stable reason code (`signature_mismatch`, `missing_header`, …).
    pub code: String,
    /// What was wrong, in words.
    pub reason: String,
}
