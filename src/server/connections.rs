//! Every open TCP connection, from accept to close: a cap on how many are open, a
//! deadline from accept to the first request, an idle timeout between requests, and
//! a way to cut one off from outside (a Socket.IO client that stopped reading).
//!
//! The socket is wrapped in [`Tracked`], which holds the connection's slot and fails
//! every read and write once the connection is aborted. It lives as long as the
//! socket does, also after hyper hands it to a WebSocket (Socket.IO), so the cap
//! counts file descriptors, not HTTP exchanges.

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use futures::task::AtomicWaker;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::metrics::Metrics;

/// How long connections may wait and how many may be open.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// From accept to a complete request head (protocol detection, HTTP/2 preface
    /// and SETTINGS, HTTP/1 headers).
    pub first_request: Duration,
    /// With no request in flight, after the last one finished.
    pub idle: Duration,
    /// Open connections, WebSockets included; past it the longest idle one is closed
    /// to make room, or accepting waits.
    pub max_open: usize,
}

/// Why the server closed a connection (the `reason` label of
/// `hookvault_http_connections_closed_total`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseReason {
    FirstRequestTimeout,
    IdleTimeout,
    /// Closed to make room at the cap.
    Evicted,
    /// Cut off from outside, e.g. a Socket.IO client that stopped reading.
    Aborted,
}

impl CloseReason {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::FirstRequestTimeout => "first_request_timeout",
            Self::IdleTimeout => "idle_timeout",
            Self::Evicted => "evicted",
            Self::Aborted => "aborted",
        }
    }
}

/// The open connections of one server.
pub struct Connections {
    limits: Limits,
    slots: Arc<Semaphore>,
    open: Mutex<HashMap<SocketAddr, Arc<Conn>>>,
    metrics: Arc<Metrics>,
}

impl Connections {
    pub fn new(limits: Limits, metrics: Arc<Metrics>) -> Arc<Self> {
        metrics.http_connections_max.set(limits.max_open as i64);
        Arc::new(Self {
            limits,
            slots: Arc::new(Semaphore::new(limits.max_open.max(1))),
            open: Mutex::new(HashMap::new()),
            metrics,
        })
    }

    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// A slot for the next connection: at once if one is free; else the longest idle
    /// connection is closed and its slot awaited.
    pub async fn slot(&self) -> OwnedSemaphorePermit {
        if let Ok(permit) = self.slots.clone().try_acquire_owned() {
            return permit;
        }
        self.evict_one();
        self.slots
            .clone()
            .acquire_owned()
            .await
            .expect("the semaphore is never closed")
    }

    /// Counts a failed accept.
    pub fn accept_failed(&self) {
        self.metrics.http_accept_errors.inc();
    }

    /// Registers an accepted socket.
    pub fn track(
        self: &Arc<Self>,
        stream: TcpStream,
        peer: SocketAddr,
        slot: OwnedSemaphorePermit,
    ) -> (Tracked, Arc<Conn>) {
        let conn = Arc::new(Conn::new());
        self.lock().insert(peer, conn.clone());
        self.metrics.http_connections_open.inc();
        let tracked = Tracked {
            stream,
            conn: conn.clone(),
            peer,
            connections: self.clone(),
            _slot: slot,
        };
        (tracked, conn)
    }

    /// The open connection from `peer`, if any.
    pub fn get(&self, peer: SocketAddr) -> Option<Arc<Conn>> {
        self.lock().get(&peer).cloned()
    }

    /// Cuts off the connection from `peer`, if it is open; true if it was.
    pub fn abort(&self, peer: SocketAddr, reason: CloseReason) -> bool {
        let conn = self.lock().get(&peer).cloned();
        conn.is_some_and(|conn| self.close(&conn, reason))
    }

    /// Aborts `conn` and counts why, once.
    pub fn close(&self, conn: &Conn, reason: CloseReason) -> bool {
        let first = conn.abort();
        if first {
            self.metrics
                .http_connections_closed
                .get_or_create(&crate::metrics::ReasonLabels {
                    reason: reason.as_str().to_owned(),
                })
                .inc();
        }
        first
    }

    /// Closes the HTTP connection that has been idle longest, if any is idle.
    fn evict_one(&self) {
        let victim = self
            .lock()
            .values()
            .filter(|c| c.is_idle_http())
            .min_by_key(|c| c.last_active())
            .cloned();
        if let Some(victim) = victim {
            self.close(&victim, CloseReason::Evicted);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<SocketAddr, Arc<Conn>>> {
        self.open.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// One connection's state, shared by its socket, its requests and its watchdog.
pub struct Conn {
    accepted: Instant,
    in_flight: AtomicUsize,
    served: AtomicBool,
    /// hyper is done with it: closed, or handed to a WebSocket.
    handed_off: AtomicBool,
    /// Milliseconds after `accepted` of the last request's end.
    last_active_ms: AtomicU64,
    aborted: AtomicBool,
    /// Wakes the watchdog when a request ends: the deadline moves.
    request_ended: tokio::sync::Notify,
    /// Bytes written to the socket so far.
    written: AtomicU64,
    read_waker: AtomicWaker,
    write_waker: AtomicWaker,
}

impl Conn {
    fn new() -> Self {
        Self {
            accepted: Instant::now(),
            in_flight: AtomicUsize::new(0),
            served: AtomicBool::new(false),
            handed_off: AtomicBool::new(false),
            last_active_ms: AtomicU64::new(0),
            aborted: AtomicBool::new(false),
            request_ended: tokio::sync::Notify::new(),
            written: AtomicU64::new(0),
            read_waker: AtomicWaker::new(),
            write_waker: AtomicWaker::new(),
        }
    }

    /// A request started; the guard ends it when the response body is done.
    pub fn begin(self: &Arc<Self>) -> RequestGuard {
        self.served.store(true, Ordering::Relaxed);
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        RequestGuard(self.clone())
    }

    /// Bytes written to the socket so far: with what was handed to it, how much
    /// still waits for a reader that is slow or gone.
    pub fn written(&self) -> u64 {
        self.written.load(Ordering::Relaxed)
    }

    pub fn hand_off(&self) {
        self.handed_off.store(true, Ordering::Relaxed);
    }

    fn last_active(&self) -> Instant {
        self.accepted + Duration::from_millis(self.last_active_ms.load(Ordering::Relaxed))
    }

    fn is_idle_http(&self) -> bool {
        !self.handed_off.load(Ordering::Relaxed)
            && self.in_flight.load(Ordering::Acquire) == 0
            && !self.aborted.load(Ordering::Relaxed)
    }

    /// When the connection expires if nothing happens, and why; `None` while a
    /// request is in flight.
    pub fn expiry(&self, limits: Limits) -> Option<(Instant, CloseReason)> {
        if self.in_flight.load(Ordering::Acquire) > 0 {
            return None;
        }
        Some(if self.served.load(Ordering::Relaxed) {
            (self.last_active() + limits.idle, CloseReason::IdleTimeout)
        } else {
            (
                self.accepted + limits.first_request,
                CloseReason::FirstRequestTimeout,
            )
        })
    }

    /// Fails every further read and write; true the first time.
    fn abort(&self) -> bool {
        let first = !self.aborted.swap(true, Ordering::AcqRel);
        self.read_waker.wake();
        self.write_waker.wake();
        first
    }
}

/// Ends one request's share of a connection when dropped.
pub struct RequestGuard(Arc<Conn>);

impl Drop for RequestGuard {
    fn drop(&mut self) {
        let conn = &self.0;
        let ms = conn.accepted.elapsed().as_millis() as u64;
        conn.last_active_ms.store(ms, Ordering::Relaxed);
        conn.in_flight.fetch_sub(1, Ordering::AcqRel);
        conn.request_ended.notify_one();
    }
}

/// A TCP socket that holds its connection slot and can be aborted.
pub struct Tracked {
    stream: TcpStream,
    conn: Arc<Conn>,
    peer: SocketAddr,
    connections: Arc<Connections>,
    _slot: OwnedSemaphorePermit,
}

impl Drop for Tracked {
    fn drop(&mut self) {
        let mut open = self.connections.lock();
        if open
            .get(&self.peer)
            .is_some_and(|c| Arc::ptr_eq(c, &self.conn))
        {
            open.remove(&self.peer);
        }
        self.connections.metrics.http_connections_open.dec();
    }
}

impl Tracked {
    fn count(&self, written: &Poll<io::Result<usize>>) {
        if let Poll::Ready(Ok(n)) = written {
            self.conn.written.fetch_add(*n as u64, Ordering::Relaxed);
        }
    }
}

fn aborted() -> io::Error {
    io::Error::new(io::ErrorKind::ConnectionAborted, "closed by the server")
}

impl AsyncRead for Tracked {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        self.conn.read_waker.register(cx.waker());
        if self.conn.aborted.load(Ordering::Acquire) {
            return Poll::Ready(Err(aborted()));
        }
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for Tracked {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.conn.write_waker.register(cx.waker());
        if self.conn.aborted.load(Ordering::Acquire) {
            return Poll::Ready(Err(aborted()));
        }
        let written = Pin::new(&mut self.stream).poll_write(cx, buf);
        self.count(&written);
        written
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.conn.write_waker.register(cx.waker());
        if self.conn.aborted.load(Ordering::Acquire) {
            return Poll::Ready(Err(aborted()));
        }
        let written = Pin::new(&mut self.stream).poll_write_vectored(cx, bufs);
        self.count(&written);
        written
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.conn.aborted.load(Ordering::Acquire) {
            return Poll::Ready(Err(aborted()));
        }
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

/// Waits until `conn` expires (first-request deadline or idle timeout) and returns
/// why; never returns while requests keep coming.
pub async fn expired(conn: &Conn, limits: Limits) -> CloseReason {
    loop {
        let at = conn
            .expiry(limits)
            .map_or(Instant::now() + limits.idle, |(at, _)| at);
        // A request that ends moves the deadline (to the idle timeout from then),
        // possibly earlier than the one slept for: look again.
        tokio::select! {
            () = tokio::time::sleep_until(at.into()) => {}
            () = conn.request_ended.notified() => continue,
        }
        if let Some((at, reason)) = conn.expiry(limits)
            && at <= Instant::now()
        {
            return reason;
        }
    }
}
