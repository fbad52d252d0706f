//! hookvault: a single-binary GitHub webhook appliance. Every delivery is verified
//! (HMAC-SHA256), deduplicated and durably stored in an embedded database, processed
//! into materialized counters, and served back through a REST API.
//!
//! # Layout
//! - [`config`]: settings from flags and env, validated; secrets redacted.
//! - [`banner`]: the startup lines: listen address, Payload URL, dashboard, data
//!   directory, who may use the API.
//! - [`domain`]: pure types: delivery id, event type, extracted fields, content key,
//!   the event catalog.
//! - [`ingest`]: HTTP request → authentic [`domain::Delivery`] (headers, size,
//!   signature, content type, payload), in the contract's order.
//! - [`log`]: the acknowledgement log's files: segments of CRC-checked frames,
//!   appended with one `fdatasync` per batch, a torn tail cut off on opening.
//! - [`store`]: redb only: tables, the log writer (dedup, then append to the log),
//!   the acknowledged tail readers see until the applier (log → redb in large
//!   transactions) has it, secondary indexes, materialized
//!   counters, queries, `verify`.
//! - [`process`]: pending → processed/failed, retries with backoff, replay, the
//!   [`process::Stage`] hook point, synthesized test events.
//! - [`search`]: the tantivy index derived from the store: schema, the indexer that
//!   follows the store's change log, queries with facets and snippets.
//! - [`stream`]: the NATS JetStream sink: follows the store with its own cursor and
//!   publishes every stored event once acknowledged by JetStream.
//! - [`forward`]: forwarding to targets: each follows the store with its own cursor
//!   and sends every matching delivery as GitHub sent it, at least once.
//! - [`backfill`]: reconciles with GitHub's delivery log: finds the deliveries the
//!   store lacks and asks GitHub to redeliver them (they arrive signed, as usual).
//! - [`realtime`]: Socket.IO namespaces `/`, `/webhooks`, `/monitoring` (socketioxide).
//! - [`guard`]: what stands between the network and the API: who may use it
//!   ([`guard::access`]: token, or local callers only, and what each token's scope
//!   lets it do), client addresses behind proxies, rate limits, token lockout, CORS,
//!   allowed hosts. Each answers with its own error; `api` maps them to HTTP.
//! - [`tokens`]: scoped API tokens: made, hashed, stored, found, revoked.
//! - [`metrics`]: Prometheus metrics, one registry per app.
//! - [`views`]: JSON views of stored data that the API and Socket.IO both send.
//! - [`api`]: axum routers per area, the guards' middleware and the one `ApiError`.
//! - [`dashboard`]: the embedded web UI from `web/` (fingerprinted assets, ETags).
//! - [`retention`]: retires events older than the retention window.
//! - [`tls`]: the PEM certificate pair, loading and checking it, and the crypto
//!   provider every connection hookvault makes or accepts uses.
//! - [`server`]: the hyper accept loop with timeouts and graceful shutdown, over TCP
//!   or TLS (certificates reloaded on SIGHUP and on change).
//! - [`memory`]: the allocator (jemalloc), and handing memory freed by bursts back to
//!   the system (the one `unsafe` call, an arena purge).
//! - [`transfer`]: NDJSON export and import of stored deliveries.
//! - [`backup`]: the online backup's archive (a store copy and its manifest in a
//!   `.tar.zst`): written for `GET /api/backup`, checked and laid out by `restore`.
//! - [`relay`]: `hookvault relay`, the client that follows a hookvault's `/webhooks`
//!   stream and POSTs each delivery to a local URL, exactly once, in order.
//! - [`commands`]: the commands on a stopped instance (`verify`, `reindex`, `export`,
//!   `import`, `compact`), which open the store one way and never create one.
//! - `fuzzing` (hidden): the fuzz targets' entry points and invariants, shared by
//!   `fuzz/` (cargo-fuzz) and the property tests.
//!
//! Dependencies between these modules point one way (no cycles; `.ci/module-cycles`
//! checks it): `config` and `domain` at the bottom, `api` and `realtime` at the top.
//!
//! `main.rs` parses the command line and calls [`run`] with a bound listener; tests
//! call [`App::run`] the same way on port 0.

#![deny(unsafe_code)] // one exception, allowed where it is: memory::purge

pub mod api;
pub mod backfill;
pub mod backup;
pub mod banner;
pub mod cluster;
pub mod commands;
pub mod config;
pub mod dashboard;
pub mod domain;
pub mod forward;
#[doc(hidden)]
pub mod fuzzing;
pub mod guard;
pub mod ingest;
pub mod log;
pub mod memory;
pub mod metrics;
pub mod process;
pub mod realtime;
pub mod relay;
pub mod retention;
pub mod search;
pub mod server;
pub mod store;
pub mod stream;
pub mod tls;
pub mod tokens;
pub mod transfer;
pub mod views;

use std::future::Future;
use std::sync::Arc;

use tokio::net::TcpListener;

use crate::api::AppState;
use crate::config::Config;
use crate::guard::access::Access;
use crate::metrics::Metrics;
use crate::process::{Processor, RetryPolicy, Stage};
use crate::search::{Indexer, SearchIndex};
use crate::store::{Store, StoreOptions};

/// Opens the store, starts processing and serves on `listener` until `shutdown`
/// resolves; then lets in-flight requests finish and closes the database cleanly.
pub async fn run(
    config: Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send,
) -> anyhow::Result<()> {
    App::new(config).run(listener, shutdown).await
}

/// The application with its processing stages; [`run`] with no extra stage is the
/// usual entry point.
pub struct App {
    config: Config,
    stages: Vec<Arc<dyn Stage>>,
}

impl App {
    pub fn new(config: Config) -> Self {
        Self {
            config,
            stages: Vec::new(),
        }
    }

    /// Adds a processing stage (runs for every event, after the built-in analysis).
    pub fn with_stage(mut self, stage: Arc<dyn Stage>) -> Self {
        self.stages.push(stage);
        self
    }

    pub async fn run(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send,
    ) -> anyhow::Result<()> {
        let config = self.config;
        let cluster_mode = config
            .nats
            .as_ref()
            .is_some_and(|nats| nats.mode == config::NatsMode::Cluster);
        let metrics = Metrics::with_nats(config.nats.is_some() && !cluster_mode, cluster_mode);
        let (commits, appends) = (metrics.clone(), metrics.clone());
        let options = StoreOptions {
            cache_bytes: config.cache_bytes,
            dedup_ttl: config.dedup_ttl,
            on_commit: Some(Arc::new(move |batch, took| commits.commit(batch, took))),
            on_append: Some(Arc::new(move |batch, took| appends.append(batch, took))),
            log_segment_bytes: config.log_segment_bytes,
            cluster: cluster_mode,
        };
        backup::remove_leftovers(&config.data_dir);
        let data_dir = config.data_dir.clone();
        let (store, writer) = tokio::task::spawn_blocking(move || {
            Store::open(&data_dir, &options).map_err(|e| {
                let path = data_dir.join(store::DB_FILE);
                anyhow::Error::new(e).context(format!("cannot open the store {}", path.display()))
            })
        })
        .await??;
        if !cluster_mode && let Some(position) = store.applied_cluster_log() {
            anyhow::bail!(
                "{} belongs to a cluster node (it applied the cluster's log up to message \
                 {position}): start it with HOOKVAULT_NATS_MODE=cluster",
                config.data_dir.display()
            );
        }

        let data_dir = config.data_dir.clone();
        let (search, checkpoint, opened) =
            tokio::task::spawn_blocking(move || SearchIndex::open(&data_dir)).await??;
        tracing::info!(?opened, docs = search.num_docs(), "search index ready");
        let indexer = Indexer::new(store.clone(), search.clone(), checkpoint)?;

        let (stop, stopped) = tokio::sync::watch::channel(false);
        let until_stopped = || {
            let mut stopped = stopped.clone();
            async move {
                let _ = stopped.wait_for(|stop| *stop).await;
            }
        };
        let tls = match config.tls.clone() {
            Some(files) => {
                let tls = server::tls::Tls::new(files)?;
                tokio::spawn(tls.clone().watch(until_stopped()));
                Some(tls.acceptor())
            }
            None => {
                tokio::spawn(server::tls::ignore_hangups(until_stopped()));
                None
            }
        };
        let config = Arc::new(config);
        let tokens = tokens::Tokens::load(store.clone()).await?;
        let access = Access::with_local_access(
            config.api_token.clone(),
            Some(tokens.clone()),
            config.local_without_token(),
        );
        let connections = server::Connections::new(
            server::Limits {
                first_request: config.header_timeout,
                idle: config.idle_timeout,
                max_open: config.max_connections,
            },
            metrics.clone(),
        );
        let (socket_layer, io, hub, realtime_handles) = realtime::build(
            store.clone(),
            search.clone(),
            config.clone(),
            access.clone(),
            connections.clone(),
        );
        let mut stages = self.stages;
        stages.push(Arc::new(realtime::Broadcast::start(
            io.clone(),
            hub.clone(),
        )?));
        stages.push(Arc::new(process::ProcessingMetrics(metrics.clone())));
        let policy = RetryPolicy::from_config(&config);
        let processor = Processor::new(store.clone(), stages, policy);

        let processing = tokio::spawn(processor.clone().run(until_stopped()));
        // The index stops last, so its final commit covers every status change the
        // other tasks made while stopping.
        let (stop_indexing, indexing_stopped) = tokio::sync::watch::channel(false);
        let indexing = tokio::spawn(indexer.run(async move {
            let mut stopped = indexing_stopped;
            let _ = stopped.wait_for(|stop| *stop).await;
        }));
        let policy = retention::Policy {
            days: config.retention_days,
            max_payload_bytes: config.max_payload_bytes,
        };
        let retiring = (policy.days.is_some() || policy.max_payload_bytes.is_some()).then(|| {
            let interval = config.retention_interval;
            tokio::spawn(retention::run(
                store.clone(),
                policy,
                interval,
                until_stopped(),
            ))
        });
        // A cluster node follows its log until forwarding and processing have
        // stopped: what they record on the way out goes through it.
        let (stop_cluster, cluster_stopped) = tokio::sync::watch::channel(false);
        let (mut cluster_status, mut cluster_node, mut cluster_forwarding) = (None, None, None);
        let (stream_status, streaming) = match config.nats.clone() {
            Some(nats) if cluster_mode => {
                let until_cluster_stopped = async move {
                    let mut stopped = cluster_stopped;
                    let _ = stopped.wait_for(|stop| *stop).await;
                };
                let node = cluster::start(
                    store.clone(),
                    processor.clone(),
                    nats,
                    until_cluster_stopped,
                )
                .await?;
                cluster_status = Some(node.status);
                cluster_forwarding = Some(node.forwarding);
                tokio::spawn(tokens::follow_cluster(tokens.clone(), node.tokens_changed));
                cluster_node = Some(node.task);
                (None, None)
            }
            Some(nats) => {
                let cursor = store.cursor(stream::CURSOR).await?;
                let status = stream::Status::new(&metrics, cursor);
                let task = tokio::spawn(stream::run(
                    store.clone(),
                    nats,
                    status.clone(),
                    until_stopped(),
                ));
                (Some(status), Some(task))
            }
            None => (None, None),
        };
        let live = tokio::spawn(realtime::run(
            io.clone(),
            hub.clone(),
            store.clone(),
            search.clone(),
            config.monitor_interval,
            until_stopped(),
        ));

        tokio::spawn(memory::give_back_freed(until_stopped()));
        let leading = cluster_forwarding.as_ref().map(|s| s.leading.clone());
        let forwarding = forward::Forwarding::start(
            store.clone(),
            metrics.clone(),
            &config.forward,
            cluster_forwarding,
        )
        .await?;
        let backfill = backfill::Backfill::start(
            config.backfill.clone(),
            store.clone(),
            metrics.clone(),
            leading,
        )?;

        let ingest_slots = Arc::new(tokio::sync::Semaphore::new(config.max_concurrent_ingest));
        let ingest_filter = Arc::new(domain::SharedFilter::new(config.ingest_filter.clone()));
        let state = AppState::new(api::Services {
            config,
            store,
            processor,
            search,
            metrics,
            io,
            hub,
            access,
            ingest_slots,
            stream: stream_status,
            cluster: cluster_status,
            forwarding: forwarding.clone(),
            backfill: backfill.clone(),
            backups: api::backup_slots(),
            ingest_filter,
            tokens,
        });
        let io_for_close = state.io.clone();
        let tokens_for_close = state.tokens.clone();
        let router = api::router(state, socket_layer);
        tracing::info!(
            tls = tls.is_some(),
            address = %listener.local_addr()?,
            "hookvault is listening"
        );
        server::serve(listener, router, connections, tls, shutdown).await;

        tracing::info!("server stopped; finishing processing and closing the store");
        // Socket.IO sessions (connected, refused before joining a namespace, or
        // half-open) live on until engine.io's ping timeout and hold the library's
        // state: they are closed, and their handles to the store let go, so the
        // writer can stop now rather than in 45 s.
        realtime::close(&io_for_close, realtime_handles).await;
        tokens_for_close.close();
        let _ = stop.send(true);
        processing.await?;
        live.await?;
        if let Some(retiring) = retiring {
            retiring.await?;
        }
        if let Some(streaming) = streaming {
            streaming.await?;
        }
        forwarding.stop().await;
        let _ = stop_cluster.send(true);
        if let Some(node) = cluster_node {
            node.await?;
        }
        backfill.stop().await;
        // Their handles to the store go too, so the writer can stop.
        drop(forwarding);
        drop(backfill);
        let _ = stop_indexing.send(true);
        indexing.await?;
        tokio::task::spawn_blocking(move || writer.join()).await?;
        Ok(())
    }
}
