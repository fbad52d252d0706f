//! The HTTP API: one `router()` per area, merged here so the whole route table fits
//! on one screen.

mod catalog;
mod envelope;
mod error;
mod events;
mod replay;
mod repositories;
mod search;
mod statistics;
mod webhooks;

use std::sync::Arc;

use axum::Router;

pub use error::ApiError;
pub use events::EventSummary;
pub use statistics::{health_score, success_rate};

use crate::config::Config;
use crate::process::Processor;
use crate::search::SearchIndex;
use crate::store::Store;

/// Handles every request needs; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub config: Arc<Config>,
    pub store: Store,
    pub processor: Processor,
    pub search: SearchIndex,
}

pub fn router(state: AppState) -> Router {
    Router::new()
        .merge(webhooks::router())
        .merge(events::router())
        .merge(catalog::router())
        .merge(statistics::router())
        .merge(replay::router())
        .merge(repositories::router())
        .merge(search::router())
        .fallback(|| async { ApiError::not_found("no such route") })
        .with_state(state)
}
