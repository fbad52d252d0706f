//! Per-client request rate on the API (governor's GCRA, keyed by client). The ingest
//! endpoint is deliberately not limited here: GitHub does not retry a refused
//! delivery, so it is bounded by concurrency (503 + `Retry-After`) instead. Direct
//! loopback clients (scripts on the host itself) are not limited either; behind a
//! proxy on the same host, set the proxy as trusted so its clients are told apart.

use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};

use super::client::ClientIp;
use crate::access;
use crate::api::ApiError;

/// Paths the limit does not apply to (signed, and bounded by concurrency instead).
pub const UNLIMITED_PATHS: &[&str] = &["/api/webhooks/github"];

/// Requests per second per client, with bursts of twice that.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    pub per_second: NonZeroU32,
}

impl RateLimit {
    fn quota(self) -> Quota {
        let burst = self.per_second.saturating_mul(NonZeroU32::new(2).unwrap());
        Quota::per_second(self.per_second).allow_burst(burst)
    }
}

pub struct ApiRateLimiter {
    limiter: DefaultKeyedRateLimiter<IpAddr>,
}

impl ApiRateLimiter {
    pub fn new(limit: RateLimit) -> Arc<Self> {
        let limiter = Arc::new(Self {
            limiter: DefaultKeyedRateLimiter::keyed(limit.quota()),
        });
        // Forget clients whose bucket is full again, so memory follows the number
        // of recently active clients.
        let weak = Arc::downgrade(&limiter);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(60));
            loop {
                tick.tick().await;
                match weak.upgrade() {
                    Some(limiter) => limiter.limiter.retain_recent(),
                    None => break,
                }
            }
        });
        limiter
    }

    /// `Err(wait)` when `client` must wait before its next request.
    pub fn check(&self, client: ClientIp) -> Result<(), Duration> {
        self.limiter
            .check_key(&client.limit_key())
            .map_err(|not_until| not_until.wait_time_from(DefaultClock::default().now()))
    }
}

/// Middleware: 429 with `Retry-After` once a client is over its rate.
pub async fn limit(
    State(limiter): State<Arc<ApiRateLimiter>>,
    request: Request,
    next: Next,
) -> Response {
    let client = request.extensions().get::<ClientIp>().copied();
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0);
    let exempt = UNLIMITED_PATHS.contains(&request.uri().path())
        || access::is_direct_local(peer, request.headers());
    if let (Some(client), false) = (client, exempt)
        && let Err(wait) = limiter.check(client)
    {
        return ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            "too many requests from this address; slow down",
        )
        .retry_after(wait)
        .into_response();
    }
    next.run(request).await
}
