//! Per-client request rate on the API (governor's GCRA, keyed by client). The ingest
//! endpoint is deliberately not limited here: GitHub does not retry a refused
//! delivery, so it is bounded by concurrency (503 + `Retry-After`) instead. Direct
//! loopback clients (scripts on the host itself) are not limited either; behind a
//! proxy on the same host, set the proxy as trusted so its clients are told apart.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};

use super::client::ClientIp;
pub use crate::config::RateLimit;

/// Paths the limit does not apply to (signed, and bounded by concurrency instead).
pub const UNLIMITED_PATHS: &[&str] = &["/api/webhooks/github"];

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
