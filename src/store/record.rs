//! What the store keeps about an event besides its payload.

use serde::{Deserialize, Serialize};

use crate::domain::{PayloadEncoding, Visibility};

/// Where an event is in processing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Status {
    Pending,
    Processed,
    Failed,
    /// A delivery of content already stored under another delivery id within the
    /// dedup window (another hook's copy): kept with its own bytes and findable, but
    /// never processed and never counted as an event of its own.
    Duplicate,
}

impl Status {
    pub const ALL: [Status; 4] = [
        Status::Pending,
        Status::Processed,
        Status::Failed,
        Status::Duplicate,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pending => "pending",
            Status::Processed => "processed",
            Status::Failed => "failed",
            Status::Duplicate => "duplicate",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == raw)
    }
}

/// A counter contribution found by processing a payload (a merged PR, a completed
/// job…). Kept on the record so counters can be taken back exactly on replay and
/// recomputed by `verify`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Fact {
    /// A per-repository counter (`pushes`, `pull_requests_merged`…).
    Repo { counter: String, delta: i64 },
    /// A per repository × workflow × job counter (`conclusion:success`, `run_ms_sum`…).
    /// `job` is empty for workflow-run counters.
    Job {
        workflow: String,
        job: String,
        counter: String,
        delta: i64,
    },
    /// A security alert's state after this event (`alert` is the event type and the
    /// alert's number). Not a sum: the last one by time wins.
    Alert { alert: String, open: bool },
}

/// Who sent a delivery and what it is about: what GitHub's headers and the payload's
/// top level say, fixed when it is received. Stored first in [`EventRecord`] and shown
/// as is (flattened) in every JSON view of an event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Origin {
    pub delivery_id: String,
    pub event: String,
    pub action: Option<String>,
    /// `owner/name`.
    pub repository: Option<String>,
    pub organization: Option<String>,
    pub sender: Option<String>,
    pub installation_id: Option<u64>,
    pub hook_id: Option<u64>,
}

/// Metadata of one stored event (the `events` table). Kept small: listing reads one of
/// these per row, the payload only when asked.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventRecord {
    pub origin: Origin,
    pub received_at_ms: i64,
    pub status: Status,
    pub attempts: u32,
    pub last_error: Option<String>,
    pub processing_time_us: Option<u64>,
    pub processed_at_ms: Option<i64>,
    /// When the next automatic retry is due (failed events with retries left).
    pub next_attempt_ms: Option<i64>,
    pub encoding: PayloadEncoding,
    pub body_len: u32,
    /// Kept so the content-dedup window can be rebuilt after a restart.
    pub content_key: Option<[u8; 32]>,
    /// Later deliveries of the same content (another hook's copy), each stored as a
    /// `Duplicate` of this one.
    pub content_duplicates: u32,
    /// Synthesized by `POST /api/webhooks/test`.
    pub test: bool,
    /// Counter contributions of the last successful processing; they count only while
    /// the status is `processed`.
    pub facts: Vec<Fact>,
}

impl EventRecord {
    /// Whether a caller with this visibility may see this event.
    pub fn visible_to(&self, visibility: &Visibility) -> bool {
        let origin = &self.origin;
        visibility.sees(origin.repository.as_deref(), origin.organization.as_deref())
    }

    /// A newly received event: pending, never attempted.
    pub fn received(
        origin: Origin,
        received_at_ms: i64,
        encoding: PayloadEncoding,
        body_len: u32,
        content_key: Option<[u8; 32]>,
        test: bool,
    ) -> Self {
        Self {
            origin,
            received_at_ms,
            status: Status::Pending,
            attempts: 0,
            last_error: None,
            processing_time_us: None,
            processed_at_ms: None,
            next_attempt_ms: None,
            encoding,
            body_len,
            content_key,
            content_duplicates: 0,
            test,
            facts: Vec::new(),
        }
    }

    /// Records one processing attempt: its outcome (the facts, or the error), how
    /// long it took, and when to retry a failure (`None`: no more automatic retries).
    pub fn record_attempt(
        &mut self,
        outcome: Result<Vec<Fact>, String>,
        processing_time_us: u64,
        processed_at_ms: i64,
        retry_at_ms: Option<i64>,
    ) {
        self.attempts += 1;
        self.processing_time_us = Some(processing_time_us);
        self.processed_at_ms = Some(processed_at_ms);
        match outcome {
            Ok(facts) => {
                self.status = Status::Processed;
                self.last_error = None;
                self.facts = facts;
                self.next_attempt_ms = None;
            }
            Err(error) => {
                self.status = Status::Failed;
                self.last_error = Some(error);
                self.next_attempt_ms = retry_at_ms;
            }
        }
    }
}
