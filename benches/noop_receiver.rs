//! The reference no-op receiver: verifies the HMAC of each delivery and answers 200
//! without storing anything. Its rate, measured in the same run as hookvault's, is
//! the practical upper limit on this machine.
//!
//! ```text
//! cargo bench --bench noop_receiver -- 127.0.0.1:3901 SECRET
//! ```

use axum::Router;
use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use hmac::{Hmac, Mac};
use sha2::Sha256;

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1).filter(|a| a != "--bench");
    let address = args.next().unwrap_or_else(|| "127.0.0.1:3901".into());
    let secret: &'static str = Box::leak(args.next().unwrap_or_default().into_boxed_str());
    let app = Router::new().route(
        "/api/webhooks/github",
        post(move |headers: HeaderMap, body: Bytes| async move {
            let signature = headers
                .get("X-Hub-Signature-256")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("sha256="))
                .and_then(|v| hex::decode(v).ok());
            let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
            mac.update(&body);
            match signature {
                Some(sig) if mac.verify_slice(&sig).is_ok() => StatusCode::OK,
                _ => StatusCode::UNAUTHORIZED,
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind(&address).await.unwrap();
    axum::serve(listener, app).await.unwrap();
}
