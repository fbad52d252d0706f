//! The HTTP API: one `router()` per area, merged here so the whole route table fits
//! on one screen.

mod envelope;
mod error;
mod events;
mod webhooks;

use std::sync::Arc;

use axum::Router;

pub use error::ApiError;
pub use events::EventSummary;

use crate::config::Config;
use crate::store::Store;

/// Handles every request needs; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub config: Arc<Config>,
    pub store: Store,
}

pub fn router(state: AppState) -> Router {
    Router::new()
        .merge(webhooks::router())
        .merge(events::router())
        .fallback(|| async { ApiError::not_found("no such route") })
        .with_state(state)
}
