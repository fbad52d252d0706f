//! Every redb table, in one place. Names carry a version: a change of key or value
//! layout gets a new name (and a migration), never a silent reinterpretation.

use redb::{ReadableTable, TableDefinition, WriteTransaction};

use super::StoreError;
use super::actions::ActionsTables;
use super::alerts::AlertTables;
use super::counters::CounterTables;
use super::index::IndexTables;

/// Schema version, next sequence id and store-wide counters.
pub const META: TableDefinition<&str, u64> = TableDefinition::new("meta_v1");
/// seq → [`EventRecord`](super::EventRecord) (codec-encoded metadata).
pub const EVENTS: TableDefinition<u64, &[u8]> = TableDefinition::new("events_v1");
/// seq → zstd-compressed raw body, byte-identical to what was received once inflated.
pub const PAYLOADS: TableDefinition<u64, &[u8]> = TableDefinition::new("payloads_v1");
/// seq → codec-encoded request headers.
pub const HEADERS: TableDefinition<u64, &[u8]> = TableDefinition::new("headers_v1");
/// delivery id → seq, for every stored delivery. Unique forever.
pub const DELIVERIES: TableDefinition<&str, u64> = TableDefinition::new("deliveries_v1");
/// delivery id → (seq of the stored event it duplicated by content, arrival time).
/// Since schema 2 the duplicate is also stored as an event of its own (status
/// `duplicate`); entries written before that have only this row.
pub const CONTENT_DUPLICATES: TableDefinition<&str, (u64, i64)> =
    TableDefinition::new("content_duplicates_v1");
/// (field, value, received_at_ms, seq) → (): the secondary indexes, newest last.
/// Fields are the `index` module's names; `("all", "")` lists every event.
pub const EVENT_INDEX: TableDefinition<(&str, &str, i64, u64), ()> =
    TableDefinition::new("event_index_v1");
/// (field, value) → number of entries in `EVENT_INDEX`, to pick the most selective index.
pub const INDEX_COUNTS: TableDefinition<(&str, &str), u64> =
    TableDefinition::new("index_counts_v1");
/// change id → seq: every insert and status change, in commit order. Derived views
/// (the search index) follow it and checkpoint the last change id they applied.
pub const CHANGES: TableDefinition<u64, u64> = TableDefinition::new("changes_v1");
/// seq → codec-encoded [`EventRecord`](super::EventRecord) of events removed by
/// retention: their payload, headers and index entries are gone, but the counters
/// still hold their contributions, and `verify` recounts from these.
pub const RETIRED: TableDefinition<u64, &[u8]> = TableDefinition::new("retired_events_v1");
/// id → codec-encoded [`RejectedDelivery`](super::RejectedDelivery): the last
/// deliveries refused at the edge, bounded (see `rejected::KEEP`).
pub const REJECTED: TableDefinition<u64, &[u8]> = TableDefinition::new("rejected_v1");
/// id → codec-encoded [`RejectedDelivery`](super::RejectedDelivery) with the rule
/// as its code: the last authentic deliveries the ingest filter ignored, bounded
/// like the rejected log.
pub const IGNORED: TableDefinition<u64, &[u8]> = TableDefinition::new("ignored_v1");
/// API token name → its record (JSON, `tokens`): the token's SHA-256, scope, limits
/// and last use. Never the token.
pub const TOKENS: TableDefinition<&str, &[u8]> = TableDefinition::new("tokens_v1");
/// (due_ms, seq) → (): failed events waiting for their automatic retry.
pub const RETRY_QUEUE: TableDefinition<(i64, u64), ()> = TableDefinition::new("retry_queue_v1");

/// consumer name → the highest seq it is done with (published or skipped). A
/// consumer's cursor commits with the applier's next durable commit: after a crash it
/// may be up to a second behind, and the consumer repeats what it sent since.
pub const CURSORS: TableDefinition<&str, u64> = TableDefinition::new("cursors_v1");

/// forwarding target name → its spec (JSON, `forward::target`), for the targets made
/// through the API.
pub const FORWARD_TARGETS: TableDefinition<&str, &[u8]> =
    TableDefinition::new("forward_targets_v1");
/// (target name, seq) → a delivery the target did not take, with its attempts (JSON,
/// `forward::failed`).
pub const FORWARD_FAILED: TableDefinition<(&str, u64), &[u8]> =
    TableDefinition::new("forward_failed_v1");

/// `webhook_event_stats`: (hour, event, metric) → value. Metrics are the statuses,
/// `total`, `time_us_sum`, `timed` and `duplicates`.
pub const HOURLY: TableDefinition<(i64, &str, &str), i64> = TableDefinition::new("hourly_v1");
/// `webhook_metrics`: (hour, bucket) → events whose processing time is in the bucket.
pub const HISTOGRAM: TableDefinition<(i64, u8), i64> = TableDefinition::new("histogram_v1");
/// `repository_activity` per hour: (hour, repository) → events.
pub const REPO_HOURLY: TableDefinition<(i64, &str), i64> = TableDefinition::new("repo_hourly_v1");
/// `repository_stats`: (repository, counter) → value.
pub const REPO_STATS: TableDefinition<(&str, &str), i64> = TableDefinition::new("repo_stats_v1");
/// (repository, alert) → (received_at_ms, seq, open) of the last event that set
/// the alert's state; `alert` is the event type and the alert's number.
pub const ALERTS: TableDefinition<(&str, &str), (i64, u64, bool)> =
    TableDefinition::new("alerts_v1");
/// `job_metrics`: (repository, workflow, job, counter) → value.
pub const JOB_METRICS: TableDefinition<(&str, &str, &str, &str), i64> =
    TableDefinition::new("job_metrics_v1");

/// seq → codec-encoded [`JobObservation`](crate::domain::job::JobObservation): what
/// each `workflow_job` delivery said about its job. Kept past retention (like
/// `RETIRED`), so `verify` can replay the Actions state from it.
pub const ACTIONS_OBSERVED: TableDefinition<u64, &[u8]> =
    TableDefinition::new("actions_observed_v1");
/// job id → codec-encoded job state (its furthest observation, `actions::state`).
pub const ACTIONS_JOBS: TableDefinition<u64, &[u8]> = TableDefinition::new("actions_jobs_v1");
/// (repository, run id, job name) → codec-encoded completed attempts, for flakiness.
pub const ACTIONS_RUN_JOBS: TableDefinition<(&str, u64, &str), &[u8]> =
    TableDefinition::new("actions_run_jobs_v1");
/// (hour completed, repository, workflow, job, labels) → codec-encoded `Vec<i64>`,
/// the row's metrics in the order of `actions::state::SLOTS`: insights.
pub const ACTIONS_HOURLY: TableDefinition<(i64, &str, &str, &str, &str), &[u8]> =
    TableDefinition::new("actions_hourly_v1");
/// (labels, metric) → value, all time: live counts and time histograms.
pub const ACTIONS_TOTALS: TableDefinition<(&str, &str), i64> =
    TableDefinition::new("actions_totals_v1");
/// (status, labels, created_ms, job id) → 1: the jobs queued or in progress now.
pub const ACTIONS_LIVE: TableDefinition<(&str, &str, i64, u64), i64> =
    TableDefinition::new("actions_live_v1");

/// Keys of `META`.
pub mod meta {
    pub const SCHEMA_VERSION: &str = "schema_version";
    pub const NEXT_SEQ: &str = "next_seq";
    pub const NEXT_CHANGE: &str = "next_change";
    /// Highest seq of the acknowledgement log applied here: on start, frames after
    /// it are applied again (only durable commits count, so it is never ahead).
    pub const LOG_APPLIED: &str = "log_applied";
    /// The `LOG_APPLIED` the Actions tables account for. Written with it by this
    /// binary; a store where they differ was written by one without the Actions
    /// state, which is then rebuilt on open.
    pub const ACTIONS_APPLIED: &str = "actions_applied";
    /// Cluster mode: the last message of the replicated log (its JetStream stream
    /// sequence) this store has applied; a node resumes after it. Absent on a store
    /// that was never a cluster node.
    pub const STREAM_APPLIED: &str = "stream_applied";
    /// Deliveries answered `duplicate` because their delivery id was already stored.
    pub const DELIVERY_DUPLICATES: &str = "delivery_duplicates";
    /// Deliveries answered `duplicate` because their content key was seen within the TTL.
    pub const CONTENT_DUPLICATES: &str = "content_duplicates";
    /// Compressed payload bytes of the stored (not retired) events.
    pub const PAYLOAD_BYTES: &str = "payload_bytes";
    /// Id of the next rejected-delivery entry.
    pub const NEXT_REJECTED: &str = "next_rejected";
    /// `rejected:<code>`: deliveries refused for that reason, ever.
    pub const REJECTED_PREFIX: &str = "rejected:";
    /// Id of the next ignored-delivery entry.
    pub const NEXT_IGNORED: &str = "next_ignored";
    /// `ignored:<rule>`: deliveries the ingest filter ignored by that rule, ever.
    pub const IGNORED_PREFIX: &str = "ignored:";
}

/// 2: content duplicates are stored as events of their own (status `duplicate`,
/// which a version-1 binary cannot read); a version-1 store needs no conversion.
pub const SCHEMA_VERSION: u64 = 2;

/// Every table a write may touch, opened once per transaction.
pub struct WriteTables<'txn> {
    pub meta: redb::Table<'txn, &'static str, u64>,
    pub events: redb::Table<'txn, u64, &'static [u8]>,
    pub payloads: redb::Table<'txn, u64, &'static [u8]>,
    pub headers: redb::Table<'txn, u64, &'static [u8]>,
    pub deliveries: redb::Table<'txn, &'static str, u64>,
    pub content_duplicates: redb::Table<'txn, &'static str, (u64, i64)>,
    pub retry_queue: redb::Table<'txn, (i64, u64), ()>,
    pub changes: redb::Table<'txn, u64, u64>,
    pub retired: redb::Table<'txn, u64, &'static [u8]>,
    pub rejected: redb::Table<'txn, u64, &'static [u8]>,
    pub ignored: redb::Table<'txn, u64, &'static [u8]>,
    pub cursors: redb::Table<'txn, &'static str, u64>,
    pub index: IndexTables<'txn>,
    pub counters: CounterTables<'txn>,
    pub alerts: AlertTables<'txn>,
    pub actions: ActionsTables<'txn>,
    /// Change of the stored payload bytes in this transaction (meta `payload_bytes`).
    pub payload_bytes: i64,
}

impl<'txn> WriteTables<'txn> {
    pub fn open(txn: &'txn WriteTransaction) -> Result<Self, StoreError> {
        Ok(Self {
            meta: txn.open_table(META)?,
            events: txn.open_table(EVENTS)?,
            payloads: txn.open_table(PAYLOADS)?,
            headers: txn.open_table(HEADERS)?,
            deliveries: txn.open_table(DELIVERIES)?,
            content_duplicates: txn.open_table(CONTENT_DUPLICATES)?,
            retry_queue: txn.open_table(RETRY_QUEUE)?,
            changes: txn.open_table(CHANGES)?,
            retired: txn.open_table(RETIRED)?,
            rejected: txn.open_table(REJECTED)?,
            ignored: txn.open_table(IGNORED)?,
            cursors: txn.open_table(CURSORS)?,
            index: IndexTables::open(txn)?,
            counters: CounterTables::open(txn)?,
            alerts: AlertTables::open(txn)?,
            actions: ActionsTables::open(txn)?,
            payload_bytes: 0,
        })
    }

    /// Writes what the transaction accumulated (counters, index counts, payload
    /// bytes); call once, before the commit.
    pub fn flush(&mut self) -> Result<(), StoreError> {
        self.counters.flush()?;
        self.actions.flush()?;
        self.index.flush()?;
        if self.payload_bytes != 0 {
            let current = self.meta.get(meta::PAYLOAD_BYTES)?.map_or(0, |v| v.value());
            self.meta.insert(
                meta::PAYLOAD_BYTES,
                current.saturating_add_signed(self.payload_bytes),
            )?;
            self.payload_bytes = 0;
        }
        Ok(())
    }
}
