//! A verified delivery on its way to the store.

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::{ContentKey, DeliveryId, EventFields, EventType};

/// How the raw body carries the JSON payload (GitHub's two content types).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum PayloadEncoding {
    /// `application/json`: the body is the payload.
    Json,
    /// `application/x-www-form-urlencoded`: the payload is the `payload` field.
    Form,
}

/// An authentic delivery: signature checked, payload parsed, fields extracted. The
/// body is kept exactly as received.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub id: DeliveryId,
    pub event: EventType,
    /// `X-GitHub-Hook-ID`: which hook sent it.
    pub hook_id: Option<u64>,
    /// Request headers worth keeping (credentials are never kept).
    pub headers: Vec<(String, String)>,
    pub encoding: PayloadEncoding,
    pub body: Bytes,
    pub fields: EventFields,
    pub content_key: Option<ContentKey>,
    pub received_at_ms: i64,
    /// Synthesized by `POST /api/webhooks/test`, not sent by GitHub.
    pub test: bool,
}
