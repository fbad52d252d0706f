//! What stands between the network and the API: who may use it ([`access`]: the
//! token, or local callers only), who the client is behind trusted proxies
//! ([`client`]), how fast it may ask ([`rate`]), how often it may guess the token
//! ([`lockout`]), which browser origins may call ([`cors`]), and which host names and
//! sites a browser may reach it under ([`site`]). Each answers with its own error;
//! `api::guards` turns them into HTTP answers. The ingest endpoint's own bounds (body
//! size, time, concurrency) live with it in `api::webhooks` and `ingest`.

pub mod access;
mod client;
mod cors;
mod lockout;
mod rate;
mod site;

pub use client::{ClientIp, identify, resolve};
pub use cors::CorsOrigins;
pub use lockout::{Lockout, MAX_FAILURES, WINDOW};
pub use rate::{ApiRateLimiter, RateLimit, UNLIMITED_PATHS};
pub use site::{ANY_HOST_PATHS, AllowedHosts, Refused, Sites};

/// A header map of `(name, value)` pairs, in order (repeated names kept), for tests.
#[cfg(test)]
fn test_headers(pairs: &[(&str, &str)]) -> axum::http::HeaderMap {
    let mut map = axum::http::HeaderMap::new();
    for (name, value) in pairs {
        map.append(
            axum::http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
            value.parse().unwrap(),
        );
    }
    map
}
