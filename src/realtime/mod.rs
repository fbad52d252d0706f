//! Live events over Socket.IO (socketioxide), on the API's port:
//! - `/`: per-type events and `webhook-event` for the repositories and organizations
//!   a socket subscribed to, `security-alert` for everyone ([`Broadcast`], a
//!   processing stage that hands them to its own thread after the acknowledgement);
//! - `/webhooks`: the stream of stored events with filters and lossless resume
//!   ([`feed`]);
//! - `/monitoring`: periodic metrics ([`monitor`]).
//!
//! Every namespace checks access like the REST API. Sockets get bounded buffers; a
//! socket whose buffer is full is disconnected (and counted), so a stuck client never
//! slows ingest or other clients.

mod broadcast;
pub mod feed;
mod messages;
pub mod monitor;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::extract::ConnectInfo;
use serde::Serialize;
use serde_json::Value;
use socketioxide::extract::{AckSender, Data, SocketRef, State, TryData};
use socketioxide::handler::ConnectHandler;
use socketioxide::layer::SocketIoLayer;
use socketioxide::{SocketError, SocketIo};

pub use broadcast::Broadcast;

use crate::access::{Access, Denied};
use crate::config::Config;
use crate::guard::ClientIp;
use crate::search::SearchIndex;
use crate::store::Store;

/// Largest message a client may send (subscriptions are tiny).
pub const MAX_CLIENT_PAYLOAD: u64 = 64 * 1024;
/// Packets waiting for one socket before it counts as stuck and is disconnected.
pub const SOCKET_BUFFER: usize = 1024;
/// Repositories and organizations one socket may subscribe to on `/`.
pub const MAX_SUBSCRIPTIONS: usize = 100;

/// Shared by every namespace handler.
#[derive(Clone)]
pub struct Ctx {
    pub store: Store,
    pub search: SearchIndex,
    pub config: Arc<Config>,
    pub hub: Arc<Hub>,
    pub access: Arc<Access>,
}

/// Realtime state: the `/webhooks` subscribers and counters.
pub struct Hub {
    pub feed: feed::Feed,
    /// Sockets disconnected because their buffer was full.
    pub dropped: AtomicU64,
    /// Events whose `/` message was not sent: the fan-out queue was full.
    pub skipped_broadcasts: AtomicU64,
    pub started: Instant,
}

/// Sends one event to one socket; a socket that cannot keep up is disconnected.
pub fn send<T: Serialize + ?Sized>(hub: &Hub, socket: &SocketRef, event: &str, data: &T) {
    match socket.emit(event, data) {
        Ok(()) => {}
        Err(socketioxide::SendError::Socket(SocketError::InternalChannelFull)) => {
            hub.dropped.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(socket = %socket.id, "socket.io client too slow; disconnecting it");
            let _ = socket.clone().disconnect();
        }
        Err(error) => tracing::debug!(socket = %socket.id, %error, "socket.io send failed"),
    }
}

/// The Socket.IO layer to mount and the handle to broadcast with.
pub fn build(
    store: Store,
    search: SearchIndex,
    config: Arc<Config>,
    access: Arc<Access>,
) -> (SocketIoLayer, SocketIo, Arc<Hub>) {
    let hub = Arc::new(Hub {
        feed: feed::Feed::default(),
        dropped: AtomicU64::new(0),
        skipped_broadcasts: AtomicU64::new(0),
        started: Instant::now(),
    });
    let ctx = Ctx {
        store,
        search,
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
    io.ns("/", on_main.with(authorize));
    io.ns("/webhooks", feed::on_connect.with(authorize));
    io.ns("/monitoring", monitor::on_connect.with(authorize));
    (layer, io, hub)
}

/// Connect middleware: the same access rule as the REST API; the token comes from
/// the handshake's `auth: {token}`.
async fn authorize(
    socket: SocketRef,
    State(ctx): State<Ctx>,
    TryData(auth): TryData<Value>,
) -> Result<(), Denied> {
    let token = auth
        .ok()
        .and_then(|a| a.get("token").and_then(Value::as_str).map(str::to_owned));
    let parts = socket.req_parts();
    let peer = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0);
    let client = parts.extensions.get::<ClientIp>().map(|c| c.0);
    ctx.access
        .admit(client, peer, &parts.headers, token.as_deref())
}

/// Subscriptions answer an acknowledgement when the client asks for one, so a
/// client knows when it will start receiving.
async fn on_main(socket: SocketRef) {
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
