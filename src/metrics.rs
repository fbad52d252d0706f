//! Prometheus metrics (`GET /metrics`, text exposition). One registry per running
//! app, so tests that run several apps in one process see their own numbers. Counters
//! are bumped where things happen; gauges that mirror state (store size, index lag,
//! connections) are read at scrape time.

use std::sync::Arc;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DeliveryLabels {
    pub event: String,
    /// `stored`, `duplicate` or `ignored`.
    pub outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabels {
    pub reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RuleLabels {
    /// The ingest filter's rule (`deny event:status`, `not allowed`).
    pub rule: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabels {
    pub outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct HttpLabels {
    /// The matched route (`/api/webhooks/events/{delivery_id}`), never the raw path.
    pub route: String,
    pub method: String,
    pub status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TargetLabels {
    /// A forwarding target's name.
    pub target: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TargetOutcomeLabels {
    pub target: String,
    /// `ok` (a 2xx) or `error`.
    pub outcome: String,
}

/// A histogram family's constructor (a plain `fn`, so the family has a name).
pub type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct NamespaceLabels {
    pub namespace: String,
}

pub struct Metrics {
    registry: Registry,
    pub deliveries: Family<DeliveryLabels, Counter>,
    pub rejected: Family<ReasonLabels, Counter>,
    pub ignored: Family<RuleLabels, Counter>,
    pub ack_latency: Histogram,
    pub processing: Family<OutcomeLabels, Counter>,
    pub processing_time: Histogram,
    pub commit_batch: Histogram,
    pub commit_time: Histogram,
    pub append_batch: Histogram,
    pub append_time: Histogram,
    pub http_requests: Family<HttpLabels, Counter>,
    pub store_bytes: Gauge,
    pub index_lag: Gauge,
    pub log_lag: Gauge,
    pub log_bytes: Gauge,
    pub index_docs: Gauge,
    pub socket_connections: Family<NamespaceLabels, Gauge>,
    pub socket_dropped: Gauge,
    pub socket_skipped: Gauge,
    pub http_connections_open: Gauge,
    pub http_connections_max: Gauge,
    pub http_connections_closed: Family<ReasonLabels, Counter>,
    pub http_accept_errors: Counter,
    /// Registered only when streaming to NATS is on.
    pub stream_lag: Gauge,
    pub cluster_lag: Gauge,
    pub cluster_applied: Gauge,
    pub stream_published: Counter,
    pub stream_errors: Counter,
    pub forward_delivered: Family<TargetLabels, Counter>,
    pub forward_failed: Family<TargetLabels, Counter>,
    pub forward_attempts: Family<TargetOutcomeLabels, Counter>,
    pub forward_attempt_time: HistogramFamily<TargetLabels>,
    pub forward_backlog: Family<TargetLabels, Gauge>,
    pub forward_circuit_open: Family<TargetLabels, Gauge>,
    pub backfill_runs: Family<OutcomeLabels, Counter>,
    pub backfill_checked: Counter,
    pub backfill_missing: Counter,
    pub backfill_requested: Counter,
    pub backfill_confirmed: Counter,
    pub backfill_errors: Counter,
    pub backfill_rate_limit_waits: Counter,
    pub backfill_running: Gauge,
    pub backfill_last_run: Gauge,
}

fn seconds_histogram() -> Histogram {
    Histogram::new(seconds_buckets())
}

/// Seconds from 50 µs to ~26 s, doubling.
fn seconds_buckets() -> impl Iterator<Item = f64> {
    exponential_buckets(0.000_05, 2.0, 20)
}

impl Metrics {
    pub fn new() -> Arc<Self> {
        Self::with_nats(false, false)
    }

    /// The metrics, with those of the NATS sink (`sink`) or of cluster mode.
    pub fn with_nats(sink: bool, cluster: bool) -> Arc<Self> {
        let mut metrics = Self {
            registry: Registry::with_prefix("hookvault"),
            deliveries: Family::default(),
            rejected: Family::default(),
            ignored: Family::default(),
            ack_latency: Histogram::new(seconds_buckets()),
            processing: Family::default(),
            processing_time: Histogram::new(seconds_buckets()),
            commit_batch: Histogram::new(exponential_buckets(1.0, 2.0, 12)),
            commit_time: Histogram::new(seconds_buckets()),
            append_batch: Histogram::new(exponential_buckets(1.0, 2.0, 12)),
            append_time: Histogram::new(seconds_buckets()),
            http_requests: Family::default(),
            store_bytes: Gauge::default(),
            index_lag: Gauge::default(),
            log_lag: Gauge::default(),
            log_bytes: Gauge::default(),
            index_docs: Gauge::default(),
            socket_connections: Family::default(),
            socket_dropped: Gauge::default(),
            socket_skipped: Gauge::default(),
            http_connections_open: Gauge::default(),
            http_connections_max: Gauge::default(),
            http_connections_closed: Family::default(),
            http_accept_errors: Counter::default(),
            stream_lag: Gauge::default(),
            cluster_lag: Gauge::default(),
            cluster_applied: Gauge::default(),
            stream_published: Counter::default(),
            stream_errors: Counter::default(),
            forward_delivered: Family::default(),
            forward_failed: Family::default(),
            forward_attempts: Family::default(),
            forward_attempt_time: Family::new_with_constructor(seconds_histogram),
            forward_backlog: Family::default(),
            forward_circuit_open: Family::default(),
            backfill_runs: Family::default(),
            backfill_checked: Counter::default(),
            backfill_missing: Counter::default(),
            backfill_requested: Counter::default(),
            backfill_confirmed: Counter::default(),
            backfill_errors: Counter::default(),
            backfill_rate_limit_waits: Counter::default(),
            backfill_running: Gauge::default(),
            backfill_last_run: Gauge::default(),
        };
        let registry = &mut metrics.registry;
        registry.register(
            "deliveries",
            "Authentic deliveries acknowledged, by event type and outcome (stored, duplicate)",
            metrics.deliveries.clone(),
        );
        registry.register(
            "deliveries_rejected",
            "Deliveries refused by validation, by reason",
            metrics.rejected.clone(),
        );
        registry.register(
            "deliveries_ignored",
            "Authentic deliveries the ingest filter ignored, by rule",
            metrics.ignored.clone(),
        );
        registry.register(
            "ack_latency_seconds",
            "Time from request to acknowledgement of authentic deliveries (once durable in the log)",
            metrics.ack_latency.clone(),
        );
        registry.register(
            "processing",
            "Processing attempts, by outcome",
            metrics.processing.clone(),
        );
        registry.register(
            "processing_seconds",
            "Processing time per attempt",
            metrics.processing_time.clone(),
        );
        registry.register(
            "commit_batch_size",
            "Requests per group commit",
            metrics.commit_batch.clone(),
        );
        registry.register(
            "commit_seconds",
            "Duration of each group commit",
            metrics.commit_time.clone(),
        );
        registry.register(
            "log_append_batch_size",
            "Deliveries per batch the log writer appends with one fdatasync",
            metrics.append_batch.clone(),
        );
        registry.register(
            "log_append_seconds",
            "Time to write and fdatasync each batch of the acknowledgement log",
            metrics.append_time.clone(),
        );
        registry.register(
            "http_requests",
            "HTTP requests by matched route, method and status",
            metrics.http_requests.clone(),
        );
        registry.register(
            "store_bytes",
            "Size of the redb file",
            metrics.store_bytes.clone(),
        );
        registry.register(
            "log_applier_lag",
            "Deliveries in the acknowledgement log not yet applied to the store",
            metrics.log_lag.clone(),
        );
        registry.register(
            "log_bytes",
            "Size of the acknowledgement log's segments",
            metrics.log_bytes.clone(),
        );
        registry.register(
            "search_index_lag",
            "Store changes not yet searchable",
            metrics.index_lag.clone(),
        );
        registry.register(
            "search_index_documents",
            "Documents in the search index",
            metrics.index_docs.clone(),
        );
        registry.register(
            "socketio_connections",
            "Connected Socket.IO clients per namespace",
            metrics.socket_connections.clone(),
        );
        registry.register(
            "socketio_dropped_clients",
            "Socket.IO clients disconnected because they could not keep up",
            metrics.socket_dropped.clone(),
        );
        registry.register(
            "socketio_skipped_broadcasts",
            "Events whose live message on `/` was skipped because the fan-out queue was full",
            metrics.socket_skipped.clone(),
        );
        registry.register(
            "http_connections_open",
            "Open TCP connections (WebSockets included)",
            metrics.http_connections_open.clone(),
        );
        registry.register(
            "http_connections_max",
            "The cap on open connections (HOOKVAULT_MAX_CONNECTIONS); at it, the longest idle one is closed",
            metrics.http_connections_max.clone(),
        );
        registry.register(
            "http_connections_closed",
            "Connections the server closed, by reason (first_request_timeout, idle_timeout, evicted, aborted)",
            metrics.http_connections_closed.clone(),
        );
        registry.register(
            "http_accept_errors",
            "Failed accepts (usually out of file descriptors)",
            metrics.http_accept_errors.clone(),
        );
        registry.register(
            "forward_delivered",
            "Deliveries a forwarding target took (a 2xx), by target",
            metrics.forward_delivered.clone(),
        );
        registry.register(
            "forward_failed",
            "Deliveries marked failed for a target after their attempts, by target",
            metrics.forward_failed.clone(),
        );
        registry.register(
            "forward_attempts",
            "Requests to forwarding targets, by target and outcome (ok, error)",
            metrics.forward_attempts.clone(),
        );
        registry.register(
            "forward_attempt_seconds",
            "Duration of each request to a forwarding target, answer included",
            metrics.forward_attempt_time.clone(),
        );
        registry.register(
            "forward_backlog",
            "Stored deliveries after a target's cursor (not all may match its filters)",
            metrics.forward_backlog.clone(),
        );
        registry.register(
            "forward_circuit_open",
            "1 while a target's circuit is open (attempts paused but for probes)",
            metrics.forward_circuit_open.clone(),
        );
        let backfill: [(&str, &str, &Counter); 6] = [
            (
                "backfill_checked",
                "Deliveries in GitHub's delivery log that backfill runs checked against the store",
                &metrics.backfill_checked,
            ),
            (
                "backfill_missing",
                "Deliveries GitHub listed that the store did not have, per run",
                &metrics.backfill_missing,
            ),
            (
                "backfill_requested",
                "Redeliveries backfill asked GitHub for (accepted)",
                &metrics.backfill_requested,
            ),
            (
                "backfill_confirmed",
                "Redeliveries asked for that arrived during their run",
                &metrics.backfill_confirmed,
            ),
            (
                "backfill_errors",
                "Errors of backfill runs (a hook that could not be read, refused redeliveries)",
                &metrics.backfill_errors,
            ),
            (
                "backfill_rate_limit_waits",
                "Times a backfill request waited for GitHub's rate limit",
                &metrics.backfill_rate_limit_waits,
            ),
        ];
        for (name, help, counter) in backfill {
            registry.register(name, help, counter.clone());
        }
        registry.register(
            "backfill_runs",
            "Backfill runs done, by outcome (ok, errors)",
            metrics.backfill_runs.clone(),
        );
        registry.register(
            "backfill_running",
            "1 while a backfill run is in progress",
            metrics.backfill_running.clone(),
        );
        registry.register(
            "backfill_last_run_timestamp_seconds",
            "When the last backfill run ended (Unix time; 0: none yet)",
            metrics.backfill_last_run.clone(),
        );
        if cluster {
            registry.register(
                "cluster_apply_lag_messages",
                "Messages of the cluster's log this node has not applied yet",
                metrics.cluster_lag.clone(),
            );
            registry.register(
                "cluster_applied_stream_sequence",
                "The last message of the cluster's log (its stream sequence) this node applied",
                metrics.cluster_applied.clone(),
            );
        }
        if sink {
            registry.register(
                "stream_lag",
                "Acknowledged deliveries not yet published to NATS JetStream",
                metrics.stream_lag.clone(),
            );
            registry.register(
                "stream_published",
                "Messages NATS JetStream acknowledged",
                metrics.stream_published.clone(),
            );
            registry.register(
                "stream_errors",
                "Failed NATS connections, stream checks and publishes (each retried)",
                metrics.stream_errors.clone(),
            );
        }
        Arc::new(metrics)
    }

    pub fn delivery(&self, event: &str, outcome: &str) {
        let labels = DeliveryLabels {
            event: event.to_owned(),
            outcome: outcome.to_owned(),
        };
        self.deliveries.get_or_create(&labels).inc();
    }

    pub fn rejection(&self, reason: &str) {
        self.rejected
            .get_or_create(&ReasonLabels {
                reason: reason.to_owned(),
            })
            .inc();
    }

    pub fn ignored(&self, rule: &str) {
        self.ignored
            .get_or_create(&RuleLabels {
                rule: rule.to_owned(),
            })
            .inc();
    }

    pub fn commit(&self, batch: usize, took: Duration) {
        self.commit_batch.observe(batch as f64);
        self.commit_time.observe(took.as_secs_f64());
    }

    pub fn append(&self, batch: usize, took: Duration) {
        self.append_batch.observe(batch as f64);
        self.append_time.observe(took.as_secs_f64());
    }

    /// The text exposition of every metric.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)
            .expect("writing to a String cannot fail");
        out
    }
}
