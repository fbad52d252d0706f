//! `/webhooks`: every stored event, once, in store order, to each subscriber whose
//! filter matches (`event`), and each later status change (`event-updated`).
//!
//! A subscriber may pass `since` (a sequence id, or a delivery id) to first receive
//! every stored event after it. One lock guards the subscribers and the highest seq
//! the live stream has reached: a catching-up subscriber reads from the store until
//! it has reached that seq, and switches to live under the lock, so nothing falls
//! in the gap and nothing is sent twice.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde_json::Value;
use socketioxide::extract::{AckSender, SocketRef, State, TryData};
use socketioxide::socket::Sid;

use super::{Ctx, Hub, send};
use crate::domain::Visibility;
use crate::store::{EventRecord, Store};
use crate::views::EventSummary;

/// Events read from the store per catch-up step.
const CATCH_UP_STEP: u64 = 500;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    pub repository: Option<String>,
    pub event_type: Option<String>,
    pub action: Option<String>,
    /// What the subscriber's socket was admitted to see.
    pub visibility: Visibility,
}

impl Filter {
    fn from_value(value: &Value, visibility: Visibility) -> Self {
        let text = |key: &str| {
            value
                .get(key)
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
        };
        Self {
            repository: text("repository"),
            event_type: text("eventType"),
            action: text("action"),
            visibility,
        }
    }

    pub fn matches(&self, record: &EventRecord) -> bool {
        self.repository
            .as_ref()
            .is_none_or(|r| record.origin.repository.as_ref() == Some(r))
            && self
                .event_type
                .as_ref()
                .is_none_or(|e| *e == record.origin.event)
            && self
                .action
                .as_ref()
                .is_none_or(|a| record.origin.action.as_ref() == Some(a))
            && record.visible_to(&self.visibility)
    }
}

struct Subscriber {
    socket: SocketRef,
    filter: Filter,
    /// Every event up to this seq has been considered for this subscriber.
    last_seq: u64,
    live: bool,
}

#[derive(Default)]
struct FeedState {
    subscribers: HashMap<Sid, Subscriber>,
    /// Highest seq the live stream has handled.
    max_seq: u64,
}

#[derive(Default)]
pub struct Feed {
    state: Mutex<FeedState>,
}

impl Feed {
    pub fn subscribers(&self) -> usize {
        self.state.lock().expect("feed lock").subscribers.len()
    }

    pub(super) fn remove(&self, sid: Sid) {
        self.state
            .lock()
            .expect("feed lock")
            .subscribers
            .remove(&sid);
    }

    /// [`Feed::remove`] unless the feed's lock is held, as it is while the feed
    /// itself sends (a send that cuts a slow client off comes back here): then the
    /// subscriber stays until its socket's disconnect removes it, and every send to
    /// it is skipped meanwhile.
    pub(super) fn remove_unless_sending(&self, sid: Sid) {
        if let Ok(mut state) = self.state.try_lock() {
            state.subscribers.remove(&sid);
        }
    }
}

pub async fn on_connect(socket: SocketRef) {
    socket.on(
        "subscribe:webhook-events",
        async |s: SocketRef,
               State(ctx): State<Ctx>,
               TryData(raw): TryData<Value>,
               ack: AckSender| {
            let subscribed = subscribe(ctx, s, raw.unwrap_or(Value::Null)).await;
            let _ = ack.send(&subscribed);
        },
    );
    socket.on(
        "unsubscribe:webhook-events",
        async |s: SocketRef, State(ctx): State<Ctx>| {
            ctx.hub.feed.remove(s.id);
        },
    );
    socket.on_disconnect(async |s: SocketRef, State(ctx): State<Ctx>| {
        ctx.hub.feed.remove(s.id);
        ctx.hub.forget(&s);
    });
}

/// Where a `since` points: a seq, or the seq of a delivery id the subscriber may see.
async fn resolve_since(store: &Store, since: &Value, visibility: &Visibility) -> Option<u64> {
    match since {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => match s.parse::<u64>() {
            Ok(seq) => Some(seq),
            Err(_) => store
                .get(s.clone())
                .await
                .ok()
                .flatten()
                .filter(|e| e.record.visible_to(visibility))
                .map(|e| e.seq),
        },
        _ => None,
    }
}

/// Registers (or replaces) the socket's subscription; false if `since` is unknown.
async fn subscribe(ctx: Ctx, socket: SocketRef, request: Value) -> bool {
    let filter = Filter::from_value(&request, ctx.hub.admissions.visibility(&socket));
    let since = match request.get("since").filter(|v| !v.is_null()) {
        None => None,
        Some(value) => {
            let Some(handles) = ctx.handles() else {
                return false;
            };
            match resolve_since(&handles.store, value, &filter.visibility).await {
                Some(seq) => Some(seq),
                None => {
                    let message =
                        format!("since {value} is neither a sequence id nor a stored delivery id");
                    let _ = socket.emit(
                        "subscription-error",
                        &serde_json::json!({"message": message}),
                    );
                    return false;
                }
            }
        }
    };
    {
        let mut state = ctx.hub.feed.state.lock().expect("feed lock");
        let last_seq = since.unwrap_or(state.max_seq).min(state.max_seq);
        let live = since.is_none() || last_seq >= state.max_seq;
        let subscriber = Subscriber {
            socket: socket.clone(),
            filter,
            last_seq,
            live,
        };
        state.subscribers.insert(socket.id, subscriber);
        if live {
            return true;
        }
    }
    tokio::spawn(catch_up(ctx, socket.id));
    true
}

/// Sends a resuming subscriber the stored events it missed, then makes it live.
async fn catch_up(ctx: Ctx, sid: Sid) {
    loop {
        let (from, target) = {
            let mut state = ctx.hub.feed.state.lock().expect("feed lock");
            let max_seq = state.max_seq;
            let Some(subscriber) = state.subscribers.get_mut(&sid) else {
                return;
            };
            if subscriber.last_seq >= max_seq {
                subscriber.live = true;
                return;
            }
            (
                subscriber.last_seq,
                max_seq.min(subscriber.last_seq + CATCH_UP_STEP),
            )
        };
        let Some(super::Handles { store, .. }) = ctx.handles() else {
            return;
        };
        let records =
            match tokio::task::spawn_blocking(move || store.records_blocking(from + 1, target))
                .await
            {
                Ok(Ok(records)) => records,
                _ => {
                    tracing::error!("catch-up read failed; dropping the subscriber");
                    ctx.hub.feed.remove(sid);
                    return;
                }
            };
        let mut state = ctx.hub.feed.state.lock().expect("feed lock");
        let Some(subscriber) = state.subscribers.get_mut(&sid) else {
            return;
        };
        if subscriber.last_seq != from {
            return; // resubscribed meanwhile: the new subscription has its own catch-up
        }
        for (seq, record) in records {
            if subscriber.filter.matches(&record) {
                send(
                    &ctx.hub,
                    &subscriber.socket,
                    "event",
                    &EventSummary::new(seq, record),
                );
            }
        }
        subscriber.last_seq = target;
    }
}

/// A change id and the event it touched (`None` if deleted since).
type Change = (u64, Option<(u64, EventRecord)>);

/// Follows the store's change log and fans each change out to live subscribers.
pub async fn run(hub: Arc<Hub>, store: Store) {
    let mut feed = store.subscribe();
    let mut cursor = store.last_change();
    {
        let first = store.clone();
        let max_seq = tokio::task::spawn_blocking(move || first.max_seq_blocking())
            .await
            .ok()
            .and_then(Result::ok);
        hub.feed.state.lock().expect("feed lock").max_seq = max_seq.unwrap_or(0);
    }
    loop {
        let reader = store.clone();
        let step = tokio::task::spawn_blocking(
            move || -> Result<Vec<Change>, crate::store::StoreError> {
                let mut out = Vec::new();
                for (change, seq) in reader.changes_after_blocking(cursor, 1024)? {
                    out.push((
                        change,
                        reader.record_blocking(seq)?.map(|record| (seq, record)),
                    ));
                }
                Ok(out)
            },
        )
        .await;
        let changes = match step {
            Ok(Ok(changes)) => changes,
            _ => {
                tracing::error!("realtime feed could not read the change log; retrying");
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                continue;
            }
        };
        if changes.is_empty() {
            if feed.changed().await.is_err() {
                return;
            }
            continue;
        }
        let mut state = hub.feed.state.lock().expect("feed lock");
        for (change, event) in changes {
            cursor = change;
            let Some((seq, record)) = event else {
                continue; // deleted meanwhile
            };
            let is_new = seq > state.max_seq;
            if is_new {
                state.max_seq = seq;
            }
            for subscriber in state.subscribers.values_mut().filter(|s| s.live) {
                if is_new {
                    if subscriber.last_seq >= seq {
                        continue;
                    }
                    subscriber.last_seq = seq;
                }
                if subscriber.filter.matches(&record) {
                    let name = if is_new { "event" } else { "event-updated" };
                    send(
                        &hub,
                        &subscriber.socket,
                        name,
                        &EventSummary::new(seq, record.clone()),
                    );
                }
            }
        }
    }
}
