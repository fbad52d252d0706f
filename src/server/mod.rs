//! The HTTP server loop: hyper (HTTP/1 and HTTP/2 on one port, over TCP or [`tls`])
//! with the limits of [`connections`] on every socket, the peer address for each
//! request, and graceful shutdown that lets in-flight requests finish.

pub mod connections;
pub mod tls;

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;

pub use connections::{CloseReason, Connections, Limits};

/// How long in-flight requests get to finish after shutdown is asked for.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);
/// HTTP/2 pings on a quiet connection, and how long the answer may take: a peer
/// that vanished without closing is noticed.
const H2_KEEP_ALIVE: Duration = Duration::from_secs(20);
/// Accept errors (out of file descriptors, mostly) are logged at most this often.
const ACCEPT_ERROR_LOG_EVERY: Duration = Duration::from_secs(10);
/// Backoff after a failed accept, doubling while accepting keeps failing.
const ACCEPT_BACKOFF: (Duration, Duration) = (Duration::from_millis(10), Duration::from_secs(1));

/// Serves `router` on `listener` until `shutdown`; with `tls`, every connection
/// first completes a TLS handshake, inside the same first-request deadline.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    connections: Arc<Connections>,
    tls: Option<TlsAcceptor>,
    shutdown: impl Future<Output = ()>,
) {
    let limits = connections.limits();
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.first_request);
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(Some(H2_KEEP_ALIVE))
        .keep_alive_timeout(H2_KEEP_ALIVE);
    let graceful = GracefulShutdown::new();
    let mut accept_errors = AcceptErrors::default();
    tokio::pin!(shutdown);

    loop {
        let slot = tokio::select! {
            slot = connections.slot() => slot,
            () = &mut shutdown => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(conn) => conn,
                Err(error) => {
                    let wait = accept_errors.failed(&error);
                    connections.accept_failed();
                    drop(slot);
                    tokio::time::sleep(wait).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        accept_errors.succeeded();
        let _ = stream.set_nodelay(true);
        let (io, conn) = connections.track(stream, peer, slot);
        let service_conn = conn.clone();
        let router = router.clone();
        let service = tower::service_fn(move |mut request: axum::http::Request<Incoming>| {
            request
                .extensions_mut()
                .insert(ConnectInfo::<SocketAddr>(peer));
            // In flight until the response body is done (or the request dropped).
            let guard = service_conn.begin();
            let response = router.clone().oneshot(request);
            async move {
                let response = response.await?;
                let mut guard = Some(guard);
                Ok::<_, Infallible>(response.map(|body| {
                    Body::new(body.map_frame(move |frame| {
                        if frame.is_trailers() {
                            guard.take();
                        }
                        frame
                    }))
                }))
            }
        });
        // Watched from accept on, so shutdown waits for a handshake in progress too.
        let watcher = graceful.watcher();
        let (builder, tls) = (builder.clone(), tls.clone());
        let service = TowerToHyperService::new(service);
        let connection = async move {
            match tls {
                None => {
                    let http = builder.serve_connection_with_upgrades(TokioIo::new(io), service);
                    watcher.watch(http.into_owned()).await
                }
                Some(acceptor) => {
                    let io = acceptor.accept(io).await?;
                    let http = builder.serve_connection_with_upgrades(TokioIo::new(io), service);
                    watcher.watch(http.into_owned()).await
                }
            }
        };
        let connections = connections.clone();
        tokio::spawn(async move {
            tokio::pin!(connection);
            tokio::select! {
                ended = &mut connection => {
                    if let Err(error) = ended {
                        tracing::debug!(%peer, %error, "connection ended with an error");
                    }
                }
                reason = connections::expired(&conn, limits) => {
                    connections.close(&conn, reason);
                    tracing::debug!(%peer, reason = reason.as_str(), "connection closed");
                }
            }
            conn.hand_off();
        });
    }

    drop(listener);
    if tokio::time::timeout(DRAIN_TIMEOUT, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("some connections were still open after {DRAIN_TIMEOUT:?}; closing them");
    }
}

/// Failed accepts: a growing pause, and one log line per period instead of one per
/// failure (out of file descriptors, every accept fails until one is freed).
#[derive(Default)]
struct AcceptErrors {
    backoff: Option<Duration>,
    unlogged: u64,
    logged_at: Option<Instant>,
}

impl AcceptErrors {
    fn failed(&mut self, error: &std::io::Error) -> Duration {
        let wait = self
            .backoff
            .map_or(ACCEPT_BACKOFF.0, |b| (b * 2).min(ACCEPT_BACKOFF.1));
        self.backoff = Some(wait);
        self.unlogged += 1;
        if self
            .logged_at
            .is_none_or(|at| at.elapsed() >= ACCEPT_ERROR_LOG_EVERY)
        {
            tracing::warn!(
                %error,
                failures = self.unlogged,
                "accepting connections failed; pausing (lower HOOKVAULT_MAX_CONNECTIONS or raise the open-files limit)"
            );
            self.unlogged = 0;
            self.logged_at = Some(Instant::now());
        }
        wait
    }

    fn succeeded(&mut self) {
        self.backoff = None;
    }
}
