//! Retention (`HOOKVAULT_RETENTION_DAYS`): a background task that retires events
//! older than the window, 500 at a time, each batch one small transaction through the
//! writer, so ingest never waits long behind it. Search documents follow through the
//! change log; counters keep the retired events, so statistics over past hours stay.

use std::future::Future;
use std::time::Duration;

use crate::domain::timestamp;
use crate::store::{Store, StoreError};

/// Events retired per transaction.
const BATCH: usize = 500;
const DAY_MS: i64 = 86_400_000;

/// Retires one batch of expired events; returns how many.
pub async fn step(store: &Store, days: u32) -> Result<usize, StoreError> {
    let cutoff = timestamp::now_ms() - i64::from(days) * DAY_MS;
    let expired = store.received_before(cutoff, BATCH).await?;
    if expired.is_empty() {
        return Ok(0);
    }
    store.retire(expired).await
}

/// Runs until `shutdown`: batches back to back while there is work, then a check
/// every `interval`.
pub async fn run(store: Store, days: u32, interval: Duration, shutdown: impl Future<Output = ()>) {
    tokio::pin!(shutdown);
    loop {
        let pause = match step(&store, days).await {
            Ok(0) => interval,
            Ok(retired) => {
                tracing::info!(retired, days, "retention removed expired events");
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
