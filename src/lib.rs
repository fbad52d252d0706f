//! hookvault: a single-binary GitHub webhook appliance. Every delivery is verified
//! (HMAC-SHA256), deduplicated and durably stored in an embedded database, and
//! served back through a REST API.
//!
//! # Layout
//! - [`config`]: settings from flags and env, validated; secrets redacted.
//! - [`domain`]: pure types: delivery id, event type, extracted fields, content key.
//! - [`ingest`]: HTTP request → authentic [`domain::Delivery`] (headers, size,
//!   signature, content type, payload), in the contract's order.
//! - [`store`]: redb only: tables, the group-commit writer, secondary indexes, queries.
//! - [`api`]: axum routers per area and the one `ApiError`.
//! - [`server`]: the hyper accept loop with timeouts and graceful shutdown.
//!
//! `main.rs` parses the command line and calls [`run`] with a bound listener; tests
//! call [`run`] the same way on port 0.

#![forbid(unsafe_code)]

pub mod api;
pub mod config;
pub mod domain;
pub mod ingest;
pub mod server;
pub mod store;

use std::future::Future;
use std::sync::Arc;

use tokio::net::TcpListener;

use crate::api::AppState;
use crate::config::Config;
use crate::store::{Store, StoreOptions};

/// Opens the store and serves on `listener` until `shutdown` resolves; then lets
/// in-flight requests finish and closes the database cleanly.
pub async fn run(
    config: Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send,
) -> anyhow::Result<()> {
    let options = StoreOptions {
        cache_bytes: config.cache_bytes,
        dedup_ttl: config.dedup_ttl,
    };
    let data_dir = config.data_dir.clone();
    let (store, writer) =
        tokio::task::spawn_blocking(move || Store::open(&data_dir, &options)).await??;

    let header_timeout = config.header_timeout;
    let state = AppState {
        config: Arc::new(config),
        store,
    };
    let router = api::router(state);
    tracing::info!(address = %listener.local_addr()?, "hookvault is listening");
    server::serve(listener, router, header_timeout, shutdown).await;

    tracing::info!("server stopped; closing the store");
    tokio::task::spawn_blocking(move || writer.join()).await?;
    Ok(())
}
