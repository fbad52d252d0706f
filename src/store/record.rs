//! What the store keeps about an event besides its payload.

use serde::{Deserialize, Serialize};

use crate::domain::PayloadEncoding;

/// Where an event is in processing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Status {
    Pending,
    Processed,
    Failed,
}

impl Status {
    pub const ALL: [Status; 3] = [Status::Pending, Status::Processed, Status::Failed];

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pending => "pending",
            Status::Processed => "processed",
            Status::Failed => "failed",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == raw)
    }
}

/// Metadata of one stored event (the `events` table). Kept small: listing reads one of
/// these per row, the payload only when asked.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventRecord {
    pub delivery_id: String,
    pub event: String,
    pub action: Option<String>,
    pub repository: Option<String>,
    pub organization: Option<String>,
    pub sender: Option<String>,
    pub installation_id: Option<u64>,
    pub hook_id: Option<u64>,
    pub received_at_ms: i64,
    pub status: Status,
    pub attempts: u32,
    pub last_error: Option<String>,
    pub processing_time_us: Option<u64>,
    pub encoding: PayloadEncoding,
    pub body_len: u32,
    /// Kept so the content-dedup window can be rebuilt after a restart.
    pub content_key: Option<[u8; 32]>,
    /// Later deliveries of the same content (another hook's copy) folded into this one.
    pub content_duplicates: u32,
}
