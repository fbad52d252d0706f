//! The HTTP API: one `router()` per area, merged here so the whole route table fits
//! on one screen.

mod actions;
mod backfill;
mod backup;
mod body;
mod catalog;
mod envelope;
mod error;
mod events;
mod filters;
mod forwarding;
mod guards;
mod metrics;
mod openapi;
mod params;
mod rejected;
mod replay;
mod repositories;
mod search;
mod statistics;
mod streamed;
mod tokens;
mod webhooks;

use std::sync::Arc;

use axum::http::header;
use axum::middleware;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use socketioxide::SocketIo;
use socketioxide::layer::SocketIoLayer;
use tokio::sync::Semaphore;
use utoipa_axum::router::OpenApiRouter;

pub use actions::{InsightsFilter as ActionsInsightsFilter, insights_answer as actions_insights};
pub use backup::backup_slots;
pub use error::ApiError;
pub use statistics::health_score;

/// Each area's query-string parser, for the checks in [`crate::fuzzing`].
pub(crate) mod query_parsers {
    pub(crate) use super::events::parse_query as events;
    pub(crate) use super::replay::parse_failed_limit as failed;
    pub(crate) use super::repositories::parse_list as repositories;
    pub(crate) use super::search::parse as search;
    pub(crate) use super::statistics::parse_hours as statistics;
}

use crate::config::Config;
use crate::dashboard;
use crate::domain::ErrorCode;
use crate::guard;
use crate::guard::access::Access;
use crate::metrics::Metrics;
use crate::process::Processor;
use crate::realtime::Hub;
use crate::search::SearchIndex;
use crate::store::Store;

/// Handles every request needs. axum clones the state for every request, so it is
/// one shared pointer (cloning each handle in turn was about 2 % of the CPU of
/// ingest under load).
#[derive(Clone)]
pub struct AppState(Arc<Services>);

impl AppState {
    pub fn new(services: Services) -> Self {
        Self(Arc::new(services))
    }
}

impl std::ops::Deref for AppState {
    type Target = Services;

    fn deref(&self) -> &Services {
        &self.0
    }
}

/// What [`AppState`] shares.
pub struct Services {
    pub config: Arc<Config>,
    pub store: Store,
    pub processor: Processor,
    pub search: SearchIndex,
    pub metrics: Arc<Metrics>,
    pub io: SocketIo,
    pub hub: Arc<Hub>,
    pub access: Arc<Access>,
    /// Deliveries being verified and stored right now (bounded, like every resource).
    pub ingest_slots: Arc<Semaphore>,
    /// The NATS sink's progress, when streaming is on.
    pub stream: Option<Arc<crate::stream::Status>>,
    /// Cluster mode: where this node stands in the cluster's log.
    pub cluster: Option<Arc<crate::cluster::Status>>,
    /// The forwarding targets and their workers.
    pub forwarding: Arc<crate::forward::Forwarding>,
    /// Reconciling with GitHub's delivery log.
    pub backfill: Arc<crate::backfill::Backfill>,
    /// Backups being taken ([`backup_slots`]).
    pub backups: Arc<Semaphore>,
    /// The ingest filter in force (from the settings, replaced through the API).
    pub ingest_filter: Arc<crate::domain::SharedFilter>,
    /// The scoped API tokens (the same ones [`Access`] admits).
    pub tokens: Arc<crate::tokens::Tokens>,
}

/// The vendored official browser client (`socket.io-client` 4.8.1, MIT), served
/// where a Node Socket.IO server serves it, so `io()` works from any page.
const SOCKET_IO_CLIENT: &[u8] = include_bytes!("../../web/vendor/socket.io.min.js");

/// The API's route table, from one place: the routes as mounted (before [`router`]
/// adds the fallbacks, the layers and the state) and the OpenAPI description
/// generated from the same routers. `tests/api/openapi.rs` walks the first and
/// compares it with the second. The ingest endpoint (protected by its signature)
/// and health are public; every other route checks access.
pub fn routes(access: Arc<Access>) -> (Router<AppState>, Arc<utoipa::openapi::OpenApi>) {
    let public = OpenApiRouter::new()
        .merge(webhooks::router())
        .merge(statistics::health_router());
    let mut protected = OpenApiRouter::new()
        .merge(events::router())
        .merge(catalog::router())
        .merge(statistics::router())
        .merge(replay::router())
        .merge(rejected::router())
        .merge(filters::router())
        .merge(tokens::router())
        .merge(repositories::router())
        .merge(search::router())
        .merge(forwarding::router())
        .merge(metrics::router())
        .merge(backup::router())
        .merge(backfill::router())
        .merge(actions::router())
        .route_layer(middleware::from_fn_with_state(
            access.clone(),
            guards::require,
        ));
    openapi::require_token(protected.get_openapi_mut());
    let (routes, mut description) = public.merge(protected).split_for_parts();
    openapi::rate_limited(&mut description, guard::UNLIMITED_PATHS);
    let description = Arc::new(openapi::document(description));
    let served = description.clone();
    // The description itself, the one route it does not describe.
    let routes = routes.route(
        "/api/openapi.json",
        get(move || {
            let description = served.clone();
            async move { Json(description.as_ref().clone()) }
        })
        .route_layer(middleware::from_fn_with_state(access, guards::require)),
    );
    (routes, description)
}

/// Every route: the API's ([`routes`]), Socket.IO (which, like the API, checks
/// access: the token, or a local client when none is set) and the dashboard.
pub fn router(state: AppState, socket_io: SocketIoLayer) -> Router {
    let (routes, description) = routes(state.access.clone());
    let known_params = Arc::new(params::KnownParams::of(&description));
    let config = state.config.clone();
    let metrics = state.metrics.clone();
    let api = routes
        .fallback(|| async { ApiError::not_found("no such route") })
        .method_not_allowed_fallback(|| async {
            ApiError::new(
                ErrorCode::MethodNotAllowed,
                "this route does not answer that method; see /api/openapi.json",
            )
        })
        .route_layer(middleware::from_fn_with_state(
            known_params,
            params::refuse_unknown,
        ))
        .layer(middleware::from_fn_with_state(
            metrics,
            metrics::count_requests,
        ))
        .with_state(state.clone())
        .layer(socket_io)
        .layer(middleware::from_fn_with_state(
            state.hub.clone(),
            crate::realtime::note_websocket_peer,
        ));
    // Outside the Socket.IO layer, which would otherwise take every /socket.io/ path.
    let mut app = Router::new()
        .route("/socket.io/socket.io.js", get(socket_io_client))
        .merge(dashboard::router())
        .fallback_service(api);
    // Outermost first: who the client is, then CORS (which also answers
    // preflights), then host names and cross-site browsers, then the per-client rate.
    if let Some(limit) = config.rate_limit {
        let limiter = guard::ApiRateLimiter::new(limit);
        app = app.layer(middleware::from_fn_with_state(limiter, guards::limit));
    }
    let sites = guard::Sites {
        hosts: config.allowed_hosts.clone(),
        origins: config.cors_origins.clone(),
        // Only a token every caller must send closes the door to cross-site pages: the
        // generated one lets local callers in without it.
        token_configured: config.api_token.is_some() && !config.local_without_token(),
    };
    app = app.layer(middleware::from_fn_with_state(
        Arc::new(sites),
        guards::protect,
    ));
    if let Some(cors) = config.cors_origins.layer() {
        app = app.layer(cors);
    }
    app.layer(middleware::from_fn_with_state(
        Arc::new(config.trusted_proxies.clone()),
        guard::identify,
    ))
}

async fn socket_io_client() -> impl IntoResponse {
    (
        [
            (
                header::CONTENT_TYPE,
                "application/javascript; charset=utf-8",
            ),
            (header::CACHE_CONTROL, "public, max-age=86400"),
        ],
        SOCKET_IO_CLIENT,
    )
}
