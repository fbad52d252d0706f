//! `GET /metrics` (Prometheus text exposition) and the middleware that counts HTTP
//! requests by matched route.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::extract::{MatchedPath, Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::AppState;
use crate::domain::timestamp;
use crate::metrics::{HttpLabels, Metrics, NamespaceLabels};
use crate::store::DB_FILE;
use utoipa_axum::{router::OpenApiRouter, routes};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(metrics))
}

#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses((status = 200, description = "Prometheus / OpenMetrics text exposition", content_type = "application/openmetrics-text")))]
async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    let m = &state.metrics;
    let store_bytes = std::fs::metadata(state.config.data_dir.join(DB_FILE)).map_or(0, |f| f.len());
    m.store_bytes.set(store_bytes as i64);
    m.index_lag.set(state.search.lag(&state.store) as i64);
    let log = state.store.log_progress();
    m.log_lag.set(log.lag() as i64);
    m.log_bytes.set(log.bytes.load(Ordering::Relaxed) as i64);
    m.index_docs.set(state.search.num_docs() as i64);
    state.forwarding.observe().await;
    if let Some(stream) = &state.stream {
        m.stream_lag.set(stream.lag(&state.store) as i64);
    }
    if let Some(cluster) = &state.cluster {
        m.cluster_lag.set(cluster.lag(&state.store) as i64);
        let applied = crate::cluster::Status::decided(&state.store);
        m.cluster_applied.set(applied as i64);
    }
    for namespace in ["/", "/webhooks", "/monitoring"] {
        let connected = state.io.of(namespace).map_or(0, |n| n.sockets().len());
        let labels = NamespaceLabels {
            namespace: namespace.to_owned(),
        };
        m.socket_connections
            .get_or_create(&labels)
            .set(connected as i64);
    }
    m.socket_dropped
        .set(state.hub.dropped.load(Ordering::Relaxed) as i64);
    m.socket_skipped
        .set(state.hub.skipped_broadcasts.load(Ordering::Relaxed) as i64);
    let mut text = m.encode();
    if let (Ok(totals), Ok(live)) = (
        state.store.actions_totals().await,
        state.store.actions_live().await,
    ) {
        let actions = super::actions::exposition(&totals, &live, timestamp::now_ms());
        let end = text.rfind("# EOF").unwrap_or(text.len());
        text.insert_str(end, &actions);
    }
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        text,
    )
}

/// Counts every request by its matched route (not the raw path, which would let
/// anyone create unbounded label values), method and status.
pub async fn count_requests(
    State(metrics): State<Arc<Metrics>>,
    request: Request,
    next: Next,
) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", |p| p.as_str())
        .to_owned();
    let method = request.method().to_string();
    let response = next.run(request).await;
    let labels = HttpLabels {
        route,
        method,
        status: response.status().as_u16().to_string(),
    };
    metrics.http_requests.get_or_create(&labels).inc();
    response
}
