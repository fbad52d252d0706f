//! What a target has been doing, for the API, the dashboard and `/metrics`: its
//! attempts (the last few kept in memory, with status, latency and the start of the
//! answer), its last success and error, and its counters.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::domain::timestamp;

/// Attempts kept per target for the API.
const RECENT: usize = 50;
/// Bytes of a target's answer kept with an attempt.
pub const ANSWER_BYTES: usize = 256;

/// One request to a target.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Attempt {
    pub seq: u64,
    pub delivery_id: String,
    /// 1 for the first attempt at this delivery.
    pub attempt: u32,
    /// RFC 3339.
    pub at: String,
    /// The HTTP status, if an answer came.
    pub status: Option<u16>,
    /// What went wrong (a non-2xx status, a timeout, a refused connection).
    pub error: Option<String>,
    pub latency_ms: f64,
    /// The first bytes of the answer (UTF-8, lossy).
    pub answer: String,
}

impl Attempt {
    pub fn succeeded(&self) -> bool {
        self.error.is_none()
    }
}

#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LastError {
    pub at: String,
    pub message: String,
}

#[derive(Debug, Default)]
struct Recent {
    attempts: VecDeque<Attempt>,
    last_success_ms: Option<i64>,
    last_error: Option<LastError>,
}

#[derive(Debug, Default)]
pub struct TargetStatus {
    recent: Mutex<Recent>,
    /// Every stored delivery up to here was delivered, marked failed or did not match.
    pub cursor: AtomicU64,
    /// The cursor as last saved durably (what was done past it is in the journal).
    pub saved_cursor: AtomicU64,
    pub in_flight: AtomicU64,
    /// Deliveries the target took (since start).
    pub delivered: AtomicU64,
    /// Deliveries marked failed (since start).
    pub failed: AtomicU64,
    pub attempts_ok: AtomicU64,
    pub attempts_failed: AtomicU64,
}

impl TargetStatus {
    pub fn new(cursor: u64) -> Self {
        let status = Self::default();
        status.cursor.store(cursor, Ordering::Relaxed);
        status.saved_cursor.store(cursor, Ordering::Relaxed);
        status
    }

    pub fn record(&self, attempt: Attempt) {
        let mut recent = self.recent.lock().expect("not poisoned");
        if attempt.succeeded() {
            self.attempts_ok.fetch_add(1, Ordering::Relaxed);
            recent.last_success_ms = Some(timestamp::now_ms());
        } else {
            self.attempts_failed.fetch_add(1, Ordering::Relaxed);
            recent.last_error = Some(LastError {
                at: attempt.at.clone(),
                message: attempt.error.clone().unwrap_or_default(),
            });
        }
        if recent.attempts.len() == RECENT {
            recent.attempts.pop_front();
        }
        recent.attempts.push_back(attempt);
    }

    /// The last attempts, newest first.
    pub fn recent_attempts(&self, limit: usize) -> Vec<Attempt> {
        let recent = self.recent.lock().expect("not poisoned");
        recent.attempts.iter().rev().take(limit).cloned().collect()
    }

    pub fn last_success(&self) -> Option<String> {
        let recent = self.recent.lock().expect("not poisoned");
        recent.last_success_ms.map(timestamp::to_rfc3339)
    }

    pub fn last_error(&self) -> Option<LastError> {
        self.recent.lock().expect("not poisoned").last_error.clone()
    }

    pub fn cursor(&self) -> u64 {
        self.cursor.load(Ordering::Relaxed)
    }
}

/// A delivery a target did not take, as kept in the store until it is re-sent.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct FailedDelivery {
    pub seq: u64,
    pub delivery_id: String,
    pub event: String,
    pub repository: Option<String>,
    pub received_at_ms: i64,
    /// RFC 3339: when its last attempt failed.
    pub failed_at: String,
    /// Its last attempts, oldest first.
    pub attempts: Vec<Attempt>,
}
