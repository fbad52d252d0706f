//! Processing: takes stored events from `pending` to `processed` or `failed`, retries
//! failures with exponential backoff, and replays on demand. One task follows the
//! store's change feed; it starts "signalled", so events left pending by a restart
//! are picked up at once. [`Stage`]s act inside an attempt or after its outcome is
//! committed (the Socket.IO `/` broadcast, the processing metrics); the search index
//! and the `/webhooks` stream follow the store's change log instead.

mod analyze;
pub mod synthesize;

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub use analyze::{analyze, counter};

use crate::domain::{Visibility, timestamp};
use crate::ingest::Payload;
use crate::metrics::{Metrics, OutcomeLabels};
use crate::store::{EventRecord, Fact, Status, StatusUpdate, Store, StoreError, StoredEvent};

/// Events processed per step; their outcomes are committed together.
const BATCH: usize = 256;

/// An event after its outcome is committed, as stages see it.
pub struct ProcessedEvent {
    pub seq: u64,
    pub record: EventRecord,
    pub payload: Arc<Payload>,
}

/// A later stage of processing.
pub trait Stage: Send + Sync + 'static {
    /// Runs before the outcome is recorded; an error fails the event (and it is
    /// retried like any other failure).
    /// `payload.whole()` builds the whole tree on first use.
    fn process(&self, _record: &EventRecord, _payload: &Payload) -> Result<(), String> {
        Ok(())
    }

    /// Runs after the outcome is durably committed.
    fn committed(&self, _event: &ProcessedEvent) {}
}

/// Counts processing outcomes and times, as a processing stage.
pub struct ProcessingMetrics(pub Arc<Metrics>);

impl Stage for ProcessingMetrics {
    fn committed(&self, event: &ProcessedEvent) {
        let outcome = event.record.status.as_str().to_owned();
        self.0
            .processing
            .get_or_create(&OutcomeLabels { outcome })
            .inc();
        if let Some(us) = event.record.processing_time_us {
            self.0.processing_time.observe(us as f64 / 1_000_000.0);
        }
    }
}

#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// Automatic retries after the first attempt (`WEBHOOK_MAX_RETRIES`).
    pub max_retries: u32,
    /// Delay before the first retry; each further retry doubles it.
    pub base: Duration,
    pub cap: Duration,
}

/// The longest wait between automatic retries, in multiples of the first one.
const RETRY_CAP_FACTOR: u32 = 300;

impl RetryPolicy {
    /// `WEBHOOK_MAX_RETRIES` retries, starting `retry_base` apart and doubling.
    pub fn from_config(config: &crate::config::Config) -> Self {
        Self {
            max_retries: config.max_retries,
            base: config.retry_base,
            cap: config.retry_base.saturating_mul(RETRY_CAP_FACTOR),
        }
    }

    /// When to retry an event that has now failed `attempts` times, if at all.
    fn retry_at(&self, attempts: u32, now_ms: i64) -> Option<i64> {
        if attempts > self.max_retries {
            return None;
        }
        let delay = self
            .base
            .saturating_mul(1 << (attempts.saturating_sub(1)).min(20))
            .min(self.cap);
        Some(now_ms + delay.as_millis() as i64)
    }
}

/// What a replay did.
#[derive(Debug)]
pub enum Replay {
    /// Processed again: the event's seq and record after it.
    Done(u64, Box<EventRecord>),
    Unknown,
    /// A content duplicate of this delivery (if still stored): not processed.
    Duplicate(Option<String>),
}

/// Counts of a bulk retry.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RetryReport {
    pub total: usize,
    pub processed: usize,
    pub failed: usize,
}

#[derive(Clone)]
pub struct Processor {
    store: Store,
    stages: Arc<Vec<Arc<dyn Stage>>>,
    policy: RetryPolicy,
}

impl Processor {
    pub fn new(store: Store, stages: Vec<Arc<dyn Stage>>, policy: RetryPolicy) -> Self {
        Self {
            store,
            stages: Arc::new(stages),
            policy,
        }
    }

    /// Processes the oldest pending events and the retries that are due (one batch of
    /// each); returns how many events it processed.
    pub async fn run_once(&self) -> Result<usize, StoreError> {
        let pending = self.store.pending(BATCH).await?;
        let (due, _) = self.store.due_retries(timestamp::now_ms(), BATCH).await?;
        let work: Vec<u64> = pending.into_iter().chain(due).collect();
        let count = work.len();
        self.process_many(work, true).await?;
        Ok(count)
    }

    /// Runs until `shutdown` resolves: a step whenever new events are committed or a
    /// retry falls due.
    pub async fn run(self, shutdown: impl Future<Output = ()>) {
        let mut feed = self.store.subscribe();
        tokio::pin!(shutdown);
        loop {
            feed.borrow_and_update();
            let idle_until = match self.run_once().await {
                Ok(0) => self.next_retry().await,
                Ok(_) => continue,
                Err(error) => {
                    tracing::error!(%error, "processing step failed; retrying in a second");
                    Some(Instant::now() + Duration::from_secs(1))
                }
            };
            let sleep = async {
                match idle_until {
                    Some(at) => tokio::time::sleep_until(at.into()).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = feed.changed() => {}
                () = sleep => {}
                () = &mut shutdown => break,
            }
        }
    }

    async fn next_retry(&self) -> Option<Instant> {
        let now_ms = timestamp::now_ms();
        let (_, next) = self.store.due_retries(now_ms, 0).await.ok()?;
        let wait = u64::try_from(next? - now_ms).unwrap_or(0);
        Some(Instant::now() + Duration::from_millis(wait))
    }

    /// Processes one event by delivery id now, whatever its status, except a
    /// content duplicate, which is never processed.
    pub async fn replay(&self, delivery_id: &str) -> Result<Replay, StoreError> {
        let Some(stored) = self.store.get(delivery_id.to_owned()).await? else {
            return Ok(Replay::Unknown);
        };
        if stored.record.status == Status::Duplicate {
            return Ok(Replay::Duplicate(stored.duplicate_of));
        }
        let seq = stored.seq;
        Ok(match self.process_stored(stored, false).await? {
            Some(record) => Replay::Done(seq, Box::new(record)),
            None => Replay::Unknown,
        })
    }

    /// Processes an event by seq now (used for synthesized test events).
    pub async fn process_now(&self, seq: u64) -> Result<Option<EventRecord>, StoreError> {
        match self.store.get_seq(seq).await? {
            Some(stored) => self.process_stored(stored, false).await,
            None => Ok(None),
        }
    }

    /// Replays every failed event the caller may see.
    pub async fn retry_failed(&self, visibility: &Visibility) -> Result<RetryReport, StoreError> {
        let mut failed = self.store.failed().await?;
        if !visibility.is_all() {
            let mut visible = Vec::with_capacity(failed.len());
            for seq in failed {
                if let Some(stored) = self.store.get_seq(seq).await?
                    && stored.record.visible_to(visibility)
                {
                    visible.push(seq);
                }
            }
            failed = visible;
        }
        let mut report = RetryReport {
            total: failed.len(),
            ..Default::default()
        };
        for chunk in failed.chunks(BATCH) {
            for record in self
                .process_many(chunk.to_vec(), false)
                .await?
                .into_iter()
                .flatten()
            {
                match record.status {
                    crate::store::Status::Processed => report.processed += 1,
                    _ => report.failed += 1,
                }
            }
        }
        Ok(report)
    }

    /// Processes events concurrently so their outcomes share one group commit.
    async fn process_many(
        &self,
        seqs: Vec<u64>,
        auto_retry: bool,
    ) -> Result<Vec<Option<EventRecord>>, StoreError> {
        let steps = seqs.into_iter().map(|seq| async move {
            match self.store.get_seq(seq).await? {
                Some(stored) => self.process_stored(stored, auto_retry).await,
                None => Ok(None),
            }
        });
        futures::future::join_all(steps).await.into_iter().collect()
    }

    async fn process_stored(
        &self,
        mut stored: StoredEvent,
        auto_retry: bool,
    ) -> Result<Option<EventRecord>, StoreError> {
        let seq = stored.seq;
        let attempts = stored.record.attempts + 1;
        let stages = self.stages.clone();
        let (outcome, payload, elapsed) = tokio::task::spawn_blocking(move || {
            let started = Instant::now();
            let body = std::mem::take(&mut stored.body).into();
            let record = &stored.record;
            let (outcome, payload) = match Payload::parse(record.encoding, body) {
                Ok(payload) => (attempt(&stages, record, &payload), payload),
                Err(e) => (
                    Err(format!("stored payload does not decode: {e}")),
                    Payload::unreadable(),
                ),
            };
            (outcome, payload, started.elapsed())
        })
        .await
        .map_err(|e| StoreError::Database(format!("processing task failed: {e}")))?;

        let now_ms = timestamp::now_ms();
        let retry_at_ms = match (&outcome, auto_retry) {
            (Err(_), true) => self.policy.retry_at(attempts, now_ms),
            _ => None,
        };
        let update = StatusUpdate {
            seq,
            attempt: attempts,
            outcome,
            processing_time_us: elapsed.as_micros().max(1) as u64,
            processed_at_ms: now_ms,
            retry_at_ms,
        };
        let Some(record) = self.store.record_processing(update).await? else {
            return Ok(None);
        };
        Ok(Some(self.announce(seq, record, payload)))
    }

    /// Processes a delivery before it is stored: its first attempt, recorded in its
    /// record, so the event is stored already processed (or failed, with its retry
    /// due) in the same durable commit. That spares a second write of the record,
    /// its status index entry and its counters, and a second parse of the payload;
    /// analysis is microseconds. Call [`Processor::announce`] once it is stored.
    pub fn first_attempt(&self, record: &mut EventRecord, payload: &Payload) {
        let started = Instant::now();
        let outcome = attempt(&self.stages, record, payload);
        let elapsed_us = started.elapsed().as_micros().max(1) as u64;
        let now_ms = timestamp::now_ms();
        let retry_at_ms = match outcome {
            Err(_) => self.policy.retry_at(record.attempts + 1, now_ms),
            Ok(_) => None,
        };
        record.record_attempt(outcome, elapsed_us, now_ms, retry_at_ms);
    }

    /// Runs the after-commit stages (broadcast, metrics) once an attempt's outcome is
    /// committed: here, or by the ingest path after [`Processor::first_attempt`].
    /// Gives the record back.
    pub fn announce(&self, seq: u64, record: EventRecord, payload: Payload) -> EventRecord {
        if let Some(error) = &record.last_error {
            tracing::warn!(delivery_id = %record.origin.delivery_id, event = %record.origin.event, attempts = record.attempts, %error, "processing failed");
        }
        let processed = ProcessedEvent {
            seq,
            record,
            payload: Arc::new(payload),
        };
        for stage in self.stages.iter() {
            stage.committed(&processed);
        }
        processed.record
    }
}

/// One processing attempt: the structure check and facts of the event's type, then
/// every stage's own processing.
fn attempt(
    stages: &[Arc<dyn Stage>],
    record: &EventRecord,
    payload: &Payload,
) -> Result<Vec<Fact>, String> {
    let facts = analyze(
        &record.origin.event,
        record.origin.action.as_deref(),
        payload.read_parts(),
    )?;
    stages
        .iter()
        .try_for_each(|stage| stage.process(record, payload))?;
    Ok(facts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_until_retries_run_out() {
        let policy = RetryPolicy {
            max_retries: 3,
            base: Duration::from_secs(1),
            cap: Duration::from_secs(60),
        };
        assert_eq!(policy.retry_at(1, 0), Some(1_000));
        assert_eq!(policy.retry_at(2, 0), Some(2_000));
        assert_eq!(policy.retry_at(3, 0), Some(4_000));
        assert_eq!(policy.retry_at(4, 0), None);
    }

    #[test]
    fn backoff_is_capped() {
        let policy = RetryPolicy {
            max_retries: 50,
            base: Duration::from_secs(1),
            cap: Duration::from_secs(60),
        };
        assert_eq!(policy.retry_at(30, 0), Some(60_000));
    }
}
