//! What stands between the network and the API, besides the token: who the client
//! is behind trusted proxies ([`client`]), how fast it may ask ([`rate`]), how often
//! it may guess the token ([`lockout`]), which browser origins may call ([`cors`]),
//! and which host names and sites a browser may reach it under ([`site`]). The ingest endpoint's own bounds (body size, time, concurrency) live
//! with it in `api::webhooks` and `ingest`.

mod client;
mod cors;
mod lockout;
mod rate;
mod site;

pub use client::{ClientIp, identify, resolve};
pub use cors::CorsOrigins;
pub use lockout::{Lockout, MAX_FAILURES, WINDOW};
pub use rate::{ApiRateLimiter, RateLimit, UNLIMITED_PATHS, limit};
pub use site::{ANY_HOST_PATHS, AllowedHosts, Refused, Sites, protect};
