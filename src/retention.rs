//! Retention (`HOOKVAULT_RETENTION_DAYS`, `HOOKVAULT_MAX_PAYLOAD_MB`): a background
//! task that retires events older than the window, or the oldest ones while the
//! stored payloads exceed the cap, 500 at a time, each batch one small transaction through the
//! writer, so ingest never waits long behind it. Search documents follow through the
//! change log; counters keep the retired events, so statistics over past hours stay.

use std::future::Future;
use std::time::Duration;

use crate::domain::timestamp;
use crate::store::{Store, StoreError};

/// Events retired per transaction.
const BATCH: usize = 500;
const DAY_MS: i64 = 86_400_000;

/// What to keep.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// Retire events received more than this many days ago.
    pub days: Option<u32>,
    /// Retire the oldest events while stored payloads (compressed) exceed this.
    pub max_payload_bytes: Option<u64>,
}

/// Retires one batch of expired (or, over the size cap, oldest) events; returns how
/// many.
pub async fn step(store: &Store, policy: Policy) -> Result<usize, StoreError> {
    if let Some(days) = policy.days {
        let cutoff = timestamp::now_ms() - i64::from(days) * DAY_MS;
        let expired = store.received_before(cutoff, BATCH).await?;
        if !expired.is_empty() {
            return store.retire(expired).await;
        }
    }
    if let Some(cap) = policy.max_payload_bytes {
        let oldest = store.oldest_over_cap(cap, BATCH).await?;
        if !oldest.is_empty() {
            return store.retire(oldest).await;
        }
    }
    Ok(0)
}

/// Runs until `shutdown`: batches back to back while there is work, then a check
/// every `interval`.
pub async fn run(
    store: Store,
    policy: Policy,
    interval: Duration,
    shutdown: impl Future<Output = ()>,
) {
    tokio::pin!(shutdown);
    loop {
        let pause = match step(&store, policy).await {
            Ok(0) => interval,
            Ok(retired) => {
                tracing::info!(retired, ?policy, "retention removed events");
                Duration::ZERO
            }
            Err(error) => {
                tracing::error!(%error, "retention step failed");
                interval
            }
        };
        tokio::select! {
            () = tokio::time::sleep(pause) => {}
            () = &mut shutdown => return,
        }
    }
}
