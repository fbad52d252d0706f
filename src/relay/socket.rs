//! The subscription to the server's `/webhooks` stream over Socket.IO: connect with
//! `auth: {token}`, `subscribe:webhook-events` with `{since}`, then every `event`
//! summary in store order. A task of its own reads the WebSocket and answers the
//! server's pings while deliveries take their time; it queues at most [`QUEUE`]
//! summaries and, past that, ends the subscription, so a local URL that is down for
//! days costs no memory: the server keeps the events, and the next subscription
//! resumes from the last one delivered.

use std::time::Duration;

use futures::{SinkExt, StreamExt};
use reqwest::Url;
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use super::engineio::{self, Frame, Packet};
use crate::config::Secret;

pub const NAMESPACE: &str = "/webhooks";
/// Summaries read ahead of the deliveries, at most.
pub const QUEUE: usize = 1024;
/// Connecting, the handshake and the subscription's acknowledgement together.
const OPEN_TIMEOUT: Duration = Duration::from_secs(30);
/// The acknowledgement id of the one subscription a connection makes.
const SUBSCRIBE_ACK: u64 = 1;

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// One stored event, as the stream announces it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    pub seq: u64,
    pub delivery_id: String,
    pub event: String,
    pub status: String,
}

impl Summary {
    fn from_value(value: &Value) -> Option<Self> {
        let text = |key: &str| value.get(key).and_then(Value::as_str).map(str::to_owned);
        Some(Self {
            seq: value.get("id")?.as_u64()?,
            delivery_id: text("deliveryId")?,
            event: text("event").unwrap_or_default(),
            status: text("status").unwrap_or_default(),
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// The server refused the namespace: a wrong token, or no token from afar.
    #[error("the server refused the relay: {0}")]
    Refused(String),
    /// The server is unreachable, restarting, or answered something unexpected.
    #[error("{0}")]
    Failed(String),
}

/// A live subscription. Dropping it closes the connection.
pub struct Subscription {
    summaries: mpsc::Receiver<Summary>,
    reader: JoinHandle<()>,
}

impl Subscription {
    /// Connects to the hookvault at `base` and subscribes to every event after `since`.
    pub async fn open(base: &Url, token: Option<&Secret>, since: u64) -> Result<Self, OpenError> {
        let (tx, summaries) = mpsc::channel(QUEUE);
        let (ws, silence, overflowed) =
            tokio::time::timeout(OPEN_TIMEOUT, handshake(base, token, since, &tx))
                .await
                .map_err(|_| OpenError::Failed("no answer to the Socket.IO handshake".into()))??;
        let reader = if overflowed {
            // What was queued is delivered, then the next subscription reads on.
            tokio::spawn(leave(ws))
        } else {
            tokio::spawn(read(ws, silence, tx))
        };
        Ok(Self { summaries, reader })
    }

    /// The next event after the ones already returned; `None` once the connection
    /// has ended and everything read before was returned.
    pub async fn next(&mut self) -> Option<Summary> {
        self.summaries.recv().await
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

/// The WebSocket URL of the server's Socket.IO endpoint.
fn websocket_url(base: &Url) -> Result<Url, OpenError> {
    let mut url = base.clone();
    let scheme = match base.scheme() {
        "http" => "ws",
        "https" => "wss",
        other => {
            return Err(OpenError::Failed(format!(
                "cannot connect to a {other}: URL"
            )));
        }
    };
    url.set_scheme(scheme)
        .map_err(|()| OpenError::Failed("not a URL to connect to".into()))?;
    url.path_segments_mut()
        .map_err(|()| OpenError::Failed("not a URL to connect to".into()))?
        .pop_if_empty()
        .extend(["socket.io", ""]);
    url.set_query(Some("EIO=4&transport=websocket"));
    url.set_fragment(None);
    Ok(url)
}

/// Connects, joins the namespace and subscribes; returns the socket, how long it may
/// stay silent before it counts as dead (the server pings within that), and whether
/// the queue filled up before the acknowledgement came.
async fn handshake(
    base: &Url,
    token: Option<&Secret>,
    since: u64,
    queue: &mpsc::Sender<Summary>,
) -> Result<(Ws, Duration, bool), OpenError> {
    let url = websocket_url(base)?;
    let (mut ws, _) = tokio_tungstenite::connect_async(url.as_str())
        .await
        .map_err(|e| OpenError::Failed(super::describe(e)))?;
    let mut silence = Duration::from_secs(45);
    let auth = match token {
        Some(token) => json!({"token": token.expose()}),
        None => json!({}),
    };
    let mut overflowed = false;
    loop {
        let text = match ws.next().await {
            Some(Ok(Message::Text(text))) => text,
            Some(Ok(Message::Close(_))) | None => {
                return Err(OpenError::Failed("the server closed the connection".into()));
            }
            Some(Ok(_)) => continue,
            Some(Err(e)) => return Err(OpenError::Failed(super::describe(e))),
        };
        match engineio::parse(&text, NAMESPACE) {
            Frame::Open {
                ping_interval_ms,
                ping_timeout_ms,
            } => {
                silence = Duration::from_millis(ping_interval_ms + ping_timeout_ms);
                send(&mut ws, engineio::connect(NAMESPACE, &auth)).await?;
            }
            Frame::Ping => send(&mut ws, engineio::PONG.to_owned()).await?,
            Frame::Close | Frame::Packet(Packet::Disconnect) => {
                return Err(OpenError::Failed("the server closed the session".into()));
            }
            Frame::Packet(Packet::ConnectError(message)) => {
                return Err(OpenError::Refused(message));
            }
            Frame::Packet(Packet::Connected) => {
                let request = json!({"since": since});
                let packet = engineio::event_with_ack(
                    NAMESPACE,
                    SUBSCRIBE_ACK,
                    "subscribe:webhook-events",
                    &request,
                );
                send(&mut ws, packet).await?;
            }
            Frame::Packet(Packet::Ack { id, data }) if id == SUBSCRIBE_ACK => {
                if data.first() == Some(&Value::Bool(true)) {
                    return Ok((ws, silence, overflowed));
                }
                return Err(OpenError::Failed(format!(
                    "the server refused the subscription from sequence id {since}"
                )));
            }
            // The catch-up may start before the acknowledgement arrives.
            Frame::Packet(Packet::Event { name, data }) => {
                if let Some(summary) = summary_of(&name, &data) {
                    // Past a full queue nothing is kept: what follows the dropped
                    // one must not be delivered before it.
                    overflowed = overflowed || queue.try_send(summary).is_err();
                } else if name == "subscription-error" {
                    tracing::warn!(message = %data["message"], "the server refused the subscription");
                }
            }
            _ => {}
        }
    }
}

/// Leaves the stream at once (the queue filled up during the handshake).
async fn leave(mut ws: Ws) {
    let _ = ws
        .send(Message::text(engineio::disconnect(NAMESPACE)))
        .await;
    let _ = ws.close(None).await;
}

async fn send(ws: &mut Ws, text: String) -> Result<(), OpenError> {
    ws.send(Message::text(text))
        .await
        .map_err(|e| OpenError::Failed(super::describe(e)))
}

fn summary_of(name: &str, data: &Value) -> Option<Summary> {
    (name == "event")
        .then(|| Summary::from_value(data))
        .flatten()
}

/// Reads the subscribed socket until it ends: answers pings, queues summaries.
async fn read(mut ws: Ws, silence: Duration, queue: mpsc::Sender<Summary>) {
    loop {
        let text = match tokio::time::timeout(silence, ws.next()).await {
            Err(_) => {
                tracing::warn!(
                    seconds = silence.as_secs(),
                    "no ping from the server; the connection counts as lost"
                );
                return;
            }
            Ok(Some(Ok(Message::Text(text)))) => text,
            Ok(Some(Ok(Message::Close(_))) | None) => {
                tracing::warn!("the server closed the connection");
                return;
            }
            Ok(Some(Ok(_))) => continue,
            Ok(Some(Err(error))) => {
                tracing::warn!(error = %super::describe(error), "the connection to the server broke");
                return;
            }
        };
        match engineio::parse(&text, NAMESPACE) {
            Frame::Ping => {
                if let Err(error) = ws.send(Message::text(engineio::PONG)).await {
                    tracing::warn!(error = %super::describe(error), "the connection to the server broke");
                    return;
                }
            }
            Frame::Close | Frame::Packet(Packet::Disconnect) => {
                tracing::warn!("the server ended the session");
                return;
            }
            Frame::Packet(Packet::Event { name, data }) => {
                let Some(summary) = summary_of(&name, &data) else {
                    continue;
                };
                match queue.try_send(summary) {
                    Ok(()) => {}
                    Err(mpsc::error::TrySendError::Full(_)) => {
                        tracing::info!(
                            queued = QUEUE,
                            "deliveries are behind; leaving the stream until they catch up \
                             (the server keeps the rest)"
                        );
                        let _ = ws
                            .send(Message::text(engineio::disconnect(NAMESPACE)))
                            .await;
                        let _ = ws.close(None).await;
                        return;
                    }
                    Err(mpsc::error::TrySendError::Closed(_)) => return,
                }
            }
            _ => {}
        }
    }
}
