//! Live events over Socket.IO (socketioxide), on the API's port:
//! - `/`: per-type events and `webhook-event` for the repositories and organizations
//!   a socket subscribed to, `security-alert` for everyone ([`Broadcast`], a
//!   processing stage that hands them to its own thread after the acknowledgement);
//! - `/webhooks`: the stream of stored events with filters and lossless resume
//!   ([`feed`]);
//! - `/monitoring`: periodic metrics ([`monitor`]).
//!
//! Every namespace checks access like the REST API. Sockets get bounded buffers; a
//! socket whose buffer is full is cut off at the TCP level (counted once), so a
//! stuck client never slows ingest or other clients, and what was queued for it is
//! freed. At shutdown every session is closed and the handles to the store are let
//! go, so a client cannot hold up the stop ([`close`]).

mod admitted;
mod broadcast;
pub mod feed;
mod messages;
pub mod monitor;

use std::collections::hash_map::Entry;
use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, Request};
use axum::middleware::Next;
use axum::response::Response;
use serde::Serialize;
use socketioxide::extract::{AckSender, Data, SocketRef, State};
use socketioxide::handler::ConnectHandler;
use socketioxide::layer::SocketIoLayer;
use socketioxide::socket::Sid;
use socketioxide::{SocketError, SocketIo};

pub use admitted::disconnect_token;
pub use broadcast::Broadcast;

use crate::config::Config;
use crate::guard::access::Access;
use crate::search::SearchIndex;
use crate::server::{CloseReason, Connections};
use crate::store::Store;

/// Largest message a client may send (subscriptions are tiny).
pub const MAX_CLIENT_PAYLOAD: u64 = 64 * 1024;
/// Packets waiting for one socket before it counts as stuck and is cut off.
pub const SOCKET_BUFFER: usize = 1024;
/// Bytes handed to one WebSocket and not yet written to its connection, at most,
/// before it counts as stuck: the packet bound alone would let a thousand 20 kB
/// security alerts (20 MB) wait for each client that stopped reading.
pub const SOCKET_MAX_BYTES: u64 = 4 << 20;
/// The same across all WebSockets: past it, the sockets holding more than their
/// share are cut off, so memory held for slow subscribers stays bounded.
pub const SUBSCRIBERS_MAX_BYTES: u64 = 128 << 20;
/// Repositories and organizations one socket may subscribe to on `/`.
pub const MAX_SUBSCRIPTIONS: usize = 100;

/// Shared by every namespace handler.
#[derive(Clone)]
pub struct Ctx {
    handles: Arc<RwLock<Option<Handles>>>,
    pub config: Arc<Config>,
    pub hub: Arc<Hub>,
    pub access: Arc<Access>,
}

/// What the handlers read from; taken away at shutdown ([`close`]), since
/// socketioxide keeps its state alive as long as any session lingers.
#[derive(Clone)]
pub struct Handles {
    pub store: Store,
    pub search: SearchIndex,
}

impl Ctx {
    /// The store and index, unless the server is stopping.
    pub fn handles(&self) -> Option<Handles> {
        self.handles
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

/// Realtime state: the `/webhooks` subscribers and counters.
pub struct Hub {
    pub feed: feed::Feed,
    /// Sockets cut off because their buffer was full (each counted once).
    pub dropped: AtomicU64,
    /// Events whose `/` message was not sent: the fan-out queue was full.
    pub skipped_broadcasts: AtomicU64,
    pub started: Instant,
    connections: Arc<Connections>,
    /// Sockets already cut off, until their disconnect is seen.
    cut_off: Mutex<HashSet<Sid>>,
    /// The TCP peer of each session's WebSocket, when it upgraded from polling (the
    /// handshake's peer is then another connection).
    websocket_peers: Mutex<HashMap<Sid, SocketAddr>>,
    backlogs: Mutex<Backlogs>,
    /// What each socket was admitted as.
    pub admissions: admitted::Admissions,
}

/// What each WebSocket was handed and its connection has not written yet, as far as
/// the byte counts of the connection tell.
#[derive(Default)]
struct Backlogs {
    sockets: HashMap<Sid, Backlog>,
    /// Sum of every socket's `counted`.
    total: u64,
}

struct Backlog {
    conn: std::sync::Weak<crate::server::connections::Conn>,
    emitted: u64,
    written_before: u64,
    counted: u64,
}

impl Backlogs {
    /// Adds `bytes` handed to `sid`; true if that makes it one to cut off.
    fn add(&mut self, sid: Sid, bytes: u64) -> bool {
        let Some(backlog) = self.sockets.get_mut(&sid) else {
            return false;
        };
        let Some(conn) = backlog.conn.upgrade() else {
            return false;
        };
        backlog.emitted += bytes;
        let written = conn.written().saturating_sub(backlog.written_before);
        let now = backlog.emitted.saturating_sub(written);
        self.total = self.total + now - backlog.counted;
        backlog.counted = now;
        let share = self.total / self.sockets.len().max(1) as u64;
        now > SOCKET_MAX_BYTES || (self.total > SUBSCRIBERS_MAX_BYTES && now >= share)
    }

    fn remove(&mut self, sid: Sid) {
        if let Some(backlog) = self.sockets.remove(&sid) {
            self.total -= backlog.counted;
        }
    }
}

/// Sessions whose WebSocket peer is remembered, at most; past it the oldest
/// entries are simply forgotten (their sockets then fall back to engine.io's
/// heartbeat, which closes a socket whose buffer is full).
const MAX_WEBSOCKET_PEERS: usize = 100_000;

impl Hub {
    /// Cuts off a socket whose buffer is full, once: its TCP connection is aborted,
    /// which ends the engine.io session and frees what was queued for it. A polling
    /// socket (no connection to abort) leaves its rooms and the feed, and engine.io's
    /// next heartbeat, which finds the buffer full, closes it.
    fn cut_off(&self, socket: &SocketRef) {
        if !lock(&self.cut_off).insert(socket.id) {
            return;
        }
        self.dropped.fetch_add(1, Ordering::Relaxed);
        self.feed.remove_unless_sending(socket.id);
        lock(&self.backlogs).remove(socket.id);
        socket.leave_all();
        let aborted = self
            .websocket_peer(socket)
            .is_some_and(|p| self.connections.abort(p, CloseReason::Aborted));
        tracing::warn!(socket = %socket.id, aborted, "socket.io client too slow; cut off");
    }

    /// The TCP peer of the socket's WebSocket, if it has one.
    fn websocket_peer(&self, socket: &SocketRef) -> Option<SocketAddr> {
        let upgraded = lock(&self.websocket_peers).get(&socket.id).copied();
        upgraded.or_else(|| {
            (socket.transport_type() == socketioxide::TransportType::Websocket)
                .then(|| peer_of(socket))
                .flatten()
        })
    }

    /// Counts `bytes` handed to `socket`; true if it holds too much unwritten.
    fn queued(&self, socket: &SocketRef, bytes: u64) -> bool {
        let mut backlogs = lock(&self.backlogs);
        if let Entry::Vacant(entry) = backlogs.sockets.entry(socket.id) {
            let Some(conn) = self
                .websocket_peer(socket)
                .and_then(|p| self.connections.get(p))
            else {
                return false; // polling: bounded by the packet count alone
            };
            entry.insert(Backlog {
                written_before: conn.written(),
                conn: Arc::downgrade(&conn),
                emitted: 0,
                counted: 0,
            });
        }
        backlogs.add(socket.id, bytes)
    }

    fn is_cut_off(&self, sid: Sid) -> bool {
        lock(&self.cut_off).contains(&sid)
    }

    /// Forgets a socket that disconnected.
    fn forget(&self, socket: &SocketRef) {
        self.admissions.remove(socket);
        let sid = socket.id;
        lock(&self.cut_off).remove(&sid);
        lock(&self.websocket_peers).remove(&sid);
        lock(&self.backlogs).remove(sid);
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

fn peer_of(socket: &SocketRef) -> Option<SocketAddr> {
    socket
        .req_parts()
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0)
}

/// Sends one event to one socket; a socket that cannot keep up is cut off.
pub fn send<T: Serialize + ?Sized>(hub: &Hub, socket: &SocketRef, event: &str, data: &T) {
    if hub.is_cut_off(socket.id) {
        return;
    }
    let mut size = ByteCount(0);
    let _ = serde_json::to_writer(&mut size, data);
    if hub.queued(socket, size.0 + event.len() as u64) {
        hub.cut_off(socket);
        return;
    }
    match socket.emit(event, data) {
        Ok(()) => {}
        Err(socketioxide::SendError::Socket(SocketError::InternalChannelFull)) => {
            hub.cut_off(socket);
        }
        Err(error) => tracing::debug!(socket = %socket.id, %error, "socket.io send failed"),
    }
}

/// A writer that only counts.
struct ByteCount(u64);

impl std::io::Write for ByteCount {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0 += buf.len() as u64;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Middleware on the Socket.IO path: remembers the TCP peer of each WebSocket
/// upgrade of an existing session (`?sid=…&transport=websocket`).
pub async fn note_websocket_peer(
    axum::extract::State(hub): axum::extract::State<Arc<Hub>>,
    request: Request,
    next: Next,
) -> Response {
    if request.uri().path().starts_with("/socket.io/") {
        let query = request.uri().query().unwrap_or("");
        let mut sid = None;
        let mut websocket = false;
        for (name, value) in form_urlencoded::parse(query.as_bytes()) {
            match &*name {
                "sid" => sid = value.parse::<Sid>().ok(),
                "transport" => websocket = value == "websocket",
                _ => {}
            }
        }
        let peer = request
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0);
        if let (Some(sid), Some(peer), true) = (sid, peer, websocket) {
            let mut peers = lock(&hub.websocket_peers);
            if peers.len() >= MAX_WEBSOCKET_PEERS {
                peers.clear();
            }
            peers.insert(sid, peer);
        }
    }
    next.run(request).await
}

/// Closes every Socket.IO session and lets go of the store and index. Sessions
/// that never joined a namespace (refused clients) and half-open ones otherwise
/// keep socketioxide's state, and with it the store, alive until engine.io's ping
/// timeout (45 s).
pub async fn close(io: &SocketIo, handles: Arc<RwLock<Option<Handles>>>) {
    handles.write().unwrap_or_else(|e| e.into_inner()).take();
    // Closing waits for each transport to end; a half-open one need not be waited for.
    if tokio::time::timeout(Duration::from_secs(2), io.close())
        .await
        .is_err()
    {
        tracing::debug!("some socket.io transports were still closing at shutdown");
    }
}

/// The Socket.IO layer to mount and the handle to broadcast with.
#[allow(clippy::type_complexity)]
pub fn build(
    store: Store,
    search: SearchIndex,
    config: Arc<Config>,
    access: Arc<Access>,
    connections: Arc<Connections>,
) -> (
    SocketIoLayer,
    SocketIo,
    Arc<Hub>,
    Arc<RwLock<Option<Handles>>>,
) {
    let hub = Arc::new(Hub {
        feed: feed::Feed::default(),
        dropped: AtomicU64::new(0),
        skipped_broadcasts: AtomicU64::new(0),
        started: Instant::now(),
        connections,
        cut_off: Mutex::new(HashSet::new()),
        websocket_peers: Mutex::new(HashMap::new()),
        backlogs: Mutex::new(Backlogs::default()),
        admissions: admitted::Admissions::default(),
    });
    let handles = Arc::new(RwLock::new(Some(Handles { store, search })));
    let ctx = Ctx {
        handles: handles.clone(),
        config,
        hub: hub.clone(),
        access,
    };
    let (layer, io) = SocketIo::builder()
        .max_payload(MAX_CLIENT_PAYLOAD)
        // max_payload bounds HTTP long-polling only; WebSocket messages have their
        // own cap (64 MiB by default).
        .ws_max_message_size(MAX_CLIENT_PAYLOAD as usize)
        .ws_max_frame_size(MAX_CLIENT_PAYLOAD as usize)
        .max_buffer_size(SOCKET_BUFFER)
        .with_state(ctx)
        .build_layer();
    io.ns("/", on_main.with(admitted::authorize));
    io.ns("/webhooks", feed::on_connect.with(admitted::authorize));
    io.ns("/monitoring", monitor::on_connect.with(admitted::authorize));
    (layer, io, hub, handles)
}

/// Subscriptions answer an acknowledgement when the client asks for one, so a
/// client knows when it will start receiving.
async fn on_main(socket: SocketRef) {
    socket.on_disconnect(async |s: SocketRef, State(ctx): State<Ctx>| {
        ctx.hub.forget(&s);
    });
    for (event, prefix) in [
        ("subscribe:repository", "repo:"),
        ("subscribe:organization", "org:"),
    ] {
        socket.on(
            event,
            async move |s: SocketRef, Data::<String>(name): Data<String>, ack: AckSender| {
                let joined = join_capped(&s, format!("{prefix}{name}"));
                let _ = ack.send(&joined);
            },
        );
    }
    for (event, prefix) in [
        ("unsubscribe:repository", "repo:"),
        ("unsubscribe:organization", "org:"),
    ] {
        socket.on(
            event,
            async move |s: SocketRef, Data::<String>(name): Data<String>, ack: AckSender| {
                s.leave(format!("{prefix}{name}"));
                let _ = ack.send(&true);
            },
        );
    }
}

/// Joins `room` unless the socket already has the most subscriptions allowed.
fn join_capped(socket: &SocketRef, room: String) -> bool {
    if socket.rooms().len() >= MAX_SUBSCRIPTIONS {
        let message = format!("at most {MAX_SUBSCRIPTIONS} subscriptions per connection");
        let _ = socket.emit(
            "subscription-error",
            &serde_json::json!({"message": message}),
        );
        return false;
    }
    socket.join(room);
    true
}

/// Background tasks of the realtime layer: the `/webhooks` feed and the
/// `/monitoring` ticker. Both end when `shutdown` resolves.
pub async fn run(
    io: SocketIo,
    hub: Arc<Hub>,
    store: Store,
    search: SearchIndex,
    interval: Duration,
    shutdown: impl std::future::Future<Output = ()>,
) {
    tokio::pin!(shutdown);
    let feed = feed::run(hub.clone(), store.clone());
    let monitor = monitor::run(io, hub, store, search, interval);
    tokio::select! {
        () = feed => {}
        () = monitor => {}
        () = &mut shutdown => {}
    }
}
