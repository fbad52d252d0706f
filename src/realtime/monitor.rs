//! `/monitoring`: an `update` with live metrics on connect and then every interval.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use serde_json::{Value, json};
use socketioxide::SocketIo;
use socketioxide::extract::{SocketRef, State};

use super::{Ctx, Hub, send};
use crate::domain::timestamp;
use crate::search::SearchIndex;
use crate::store::Store;
use crate::views::success_rate;

pub async fn on_connect(socket: SocketRef, io: SocketIo, State(ctx): State<Ctx>) {
    socket.on_disconnect(async |s: SocketRef, State(ctx): State<Ctx>| {
        ctx.hub.forget(&s);
    });
    let Some(handles) = ctx.handles() else {
        return;
    };
    if let Some(update) = snapshot(&counts(&io), &ctx.hub, &handles.store, &handles.search).await {
        send(&ctx.hub, &socket, "update", &update);
    }
}

fn counts(io: &SocketIo) -> Value {
    let count = |ns: &str| io.of(ns).map_or(0, |n| n.sockets().len());
    json!({"/": count("/"), "/webhooks": count("/webhooks"), "/monitoring": count("/monitoring")})
}

/// Resident memory of this process in bytes (Linux), if known.
fn resident_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

async fn snapshot(
    clients: &Value,
    hub: &Hub,
    store: &Store,
    search: &SearchIndex,
) -> Option<Value> {
    let now = timestamp::now_ms();
    let facts = store.health_facts(now - 60_000).await.ok()?;
    let hour = store.statistics(now, 1).await.ok()?.summary;
    let all = store.statistics(now, 24).await.ok()?.summary;
    let avg = if hour.timed > 0 {
        hour.time_us_sum as f64 / hour.timed as f64 / 1000.0
    } else {
        0.0
    };
    Some(json!({
        "timestamp": timestamp::to_rfc3339(now),
        "eventsPerMinute": facts.events_since,
        "totals": {"events": facts.total_events, "lastHour": hour.total, "last24Hours": all.total},
        "successRate": success_rate(&hour),
        "avgProcessingTimeMs": (avg * 1000.0).round() / 1000.0,
        "pending": facts.pending,
        "failed": facts.failed,
        "indexLag": search.lag(store),
        "connectedClients": clients,
        "webhookSubscribers": hub.feed.subscribers(),
        "droppedClients": hub.dropped.load(Ordering::Relaxed),
        "skippedBroadcasts": hub.skipped_broadcasts.load(Ordering::Relaxed),
        "uptimeSeconds": hub.started.elapsed().as_secs(),
        "memoryBytes": resident_bytes(),
    }))
}

/// Sends an `update` to every `/monitoring` socket each interval.
pub async fn run(
    io: SocketIo,
    hub: Arc<Hub>,
    store: Store,
    search: SearchIndex,
    interval: Duration,
) {
    let mut ticker = tokio::time::interval(interval);
    ticker.tick().await;
    loop {
        ticker.tick().await;
        let Some(namespace) = io.of("/monitoring") else {
            continue;
        };
        let sockets = namespace.sockets();
        if sockets.is_empty() {
            continue;
        }
        if let Some(update) = snapshot(&counts(&io), &hub, &store, &search).await {
            for socket in sockets {
                send(&hub, &socket, "update", &update);
            }
        }
    }
}
