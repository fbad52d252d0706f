//! CORS: closed unless origins are configured. A browser page on another origin may
//! then read the API with a bearer token; cookies are never involved, so
//! credentials are never allowed, and `*` means any origin without credentials.

use std::time::Duration;

use axum::http::{Method, header};
use tower_http::cors::{AllowOrigin, CorsLayer};

pub use crate::config::CorsOrigins;

impl CorsOrigins {
    /// The layer to mount, if any.
    pub fn layer(&self) -> Option<CorsLayer> {
        let allow = match self {
            Self::Closed => return None,
            Self::Any => AllowOrigin::any(),
            Self::List(origins) => AllowOrigin::list(origins.clone()),
        };
        Some(
            CorsLayer::new()
                .allow_origin(allow)
                .allow_methods([Method::GET, Method::POST])
                .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE])
                .max_age(Duration::from_secs(3600)),
        )
    }
}
