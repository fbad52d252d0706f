//! JSON views of stored data that both the REST API and Socket.IO send, so the two
//! never disagree on a field.

use serde::Serialize;
use utoipa::ToSchema;

use crate::domain::timestamp;
use crate::store::{EventRecord, EventStats, Origin, Status};

/// One event as lists show it.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EventSummary {
    pub id: u64,
    #[serde(flatten)]
    pub origin: Origin,
    pub received_at: String,
    pub status: &'static str,
    pub processed: bool,
    pub attempts: u32,
    pub processing_time_ms: Option<f64>,
    pub last_error: Option<String>,
    pub processed_at: Option<String>,
    pub next_attempt_at: Option<String>,
    pub body_size: u32,
    pub content_duplicates: u32,
    pub test: bool,
}

impl EventSummary {
    pub fn new(seq: u64, record: EventRecord) -> Self {
        Self {
            id: seq,
            received_at: timestamp::to_rfc3339(record.received_at_ms),
            status: record.status.as_str(),
            processed: record.status == Status::Processed,
            processing_time_ms: record.processing_time_us.map(|us| us as f64 / 1000.0),
            origin: record.origin,
            attempts: record.attempts,
            last_error: record.last_error,
            processed_at: record.processed_at_ms.map(timestamp::to_rfc3339),
            next_attempt_at: record.next_attempt_ms.map(timestamp::to_rfc3339),
            body_size: record.body_len,
            content_duplicates: record.content_duplicates,
            test: record.test,
        }
    }
}

/// `processed / total` as a percentage with two decimals, `"0.00"` with no events.
pub fn success_rate(stats: &EventStats) -> String {
    if stats.total == 0 {
        return "0.00".into();
    }
    format!("{:.2}", stats.processed as f64 * 100.0 / stats.total as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn success_rate_has_two_decimals() {
        let stats = EventStats {
            total: 1500,
            processed: 1480,
            ..Default::default()
        };
        assert_eq!(success_rate(&stats), "98.67");
        assert_eq!(success_rate(&EventStats::default()), "0.00");
    }
}
