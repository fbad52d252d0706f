//! Following the cluster's log: every message, in stream order, handed to this
//! node's store to decide and apply. The position is the store's: each apply records
//! the last stream sequence it covers in the same transaction, so a restart (or a
//! crash, which rolls the store back to its last durable commit) resumes right after
//! what the store holds.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::{self, consumer::DeliverPolicy, consumer::pull};
use futures::StreamExt;
use tokio::sync::{mpsc, oneshot, watch};

use super::log::{Decision, Waiter, Waiting};
use super::{CHANGE_SUBJECT, DELIVERY_SUBJECT, MAX_BACKOFF, Status};
use crate::domain::timestamp;
use crate::forward::{self, Notice};
use crate::ingest::Payload;
use crate::process::Processor;
use crate::store::{IngestOutcome, LoggedChange, LoggedDelivery, Store};

/// Another node's delivery reaches this node's live `/` Socket.IO clients when it is
/// at most this old: a node catching up on an hour of log does not replay the hour
/// to them (the `/webhooks` feed, which follows the store, has everything).
const LIVE_WITHIN_MS: i64 = 60_000;

/// The first pause before following again after a failure (doubling up to
/// `MAX_BACKOFF` while failures follow each other).
const MIN_BACKOFF: Duration = Duration::from_millis(100);

/// After this long without a message, the stream's state is looked up to tell a
/// quiet log from a consumer that stalled.
const STALL_CHECK: Duration = Duration::from_secs(1);

pub struct Materializer {
    pub store: Store,
    pub processor: Processor,
    pub js: jetstream::Context,
    pub stream: String,
    pub waiting: Arc<Waiting>,
    pub status: Arc<Status>,
    /// What forwarding learns from the log: targets changed, re-sends asked.
    pub notices: mpsc::UnboundedSender<Notice>,
    /// Counts the token changes applied, for the tokens held in memory.
    pub tokens_changed: watch::Sender<u64>,
}

impl Materializer {
    /// Follows the stream until `shutdown`, starting over after any failure from the
    /// last message handed to the store (never handing one twice).
    pub async fn run(self, shutdown: impl std::future::Future<Output = ()> + Send) {
        tokio::pin!(shutdown);
        let mut handed = Status::decided(&self.store);
        let mut backoff = MIN_BACKOFF;
        loop {
            let before = handed;
            let failure = tokio::select! {
                _ = &mut shutdown => return,
                Err(failure) = self.follow(&mut handed) => failure,
            };
            self.status.failed(failure);
            if handed > before {
                backoff = MIN_BACKOFF; // it followed a while: a new failure
            }
            tokio::select! {
                _ = &mut shutdown => return,
                _ = tokio::time::sleep(backoff) => {}
            }
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    }

    async fn follow(&self, handed: &mut u64) -> Result<Infallible, String> {
        let mut stream = self
            .js
            .get_stream(&self.stream)
            .await
            .map_err(|e| format!("cannot find the stream {}: {e}", self.stream))?;
        let consumer = stream
            .create_consumer(pull::OrderedConfig {
                deliver_policy: DeliverPolicy::ByStartSequence {
                    start_sequence: *handed + 1,
                },
                ..Default::default()
            })
            .await
            .map_err(|e| format!("cannot follow the stream {}: {e}", self.stream))?;
        let mut messages = consumer
            .messages()
            .await
            .map_err(|e| format!("cannot follow the stream {}: {e}", self.stream))?;
        self.status.follows();
        loop {
            let message = match tokio::time::timeout(STALL_CHECK, messages.next()).await {
                Ok(Some(message)) => message.map_err(|e| format!("following the stream: {e}"))?,
                Ok(None) => return Err("the stream's consumer ended".into()),
                Err(_) => {
                    // Quiet for a while: fine if there is nothing new; a consumer
                    // that stalled (made while the stream's leader was still being
                    // chosen, or on a server that went away) is made again.
                    let last = stream
                        .info()
                        .await
                        .map_err(|e| format!("cannot read the stream's state: {e}"))?
                        .state
                        .last_sequence;
                    self.status.saw(last);
                    if last > *handed {
                        return Err(format!(
                            "the stream holds messages up to {last} but its consumer delivered none \
                             after {handed}; following again"
                        ));
                    }
                    continue;
                }
            };
            let info = message
                .info()
                .map_err(|e| format!("a message without stream metadata: {e}"))?;
            let seq = info.stream_sequence;
            self.status.saw(seq + info.pending);
            if seq <= *handed {
                continue;
            }
            if seq > *handed + 1 {
                tracing::error!(
                    from = *handed + 1,
                    to = seq - 1,
                    "messages of the cluster's log are gone (its age limit?) before this node applied them: \
                     this node misses them; restore it from a backup of another node"
                );
            }
            self.hand(&message, seq).await?;
            *handed = seq;
        }
    }

    /// Hands one message to the store. A message that cannot be read stops the
    /// node following the log, loudly: skipping it would make this node differ from
    /// the others for good.
    async fn hand(&self, message: &async_nats::jetstream::Message, seq: u64) -> Result<(), String> {
        let unreadable = |e| format!("message {seq} of the cluster's log cannot be read: {e}");
        let waiter = self.waiting.take(message.headers.as_ref());
        let handed = match message.subject.as_str() {
            DELIVERY_SUBJECT => {
                let event = LoggedDelivery::decode(&message.payload).map_err(unreadable)?;
                let reply = match waiter {
                    Some(Waiter::Delivery(reply)) => reply,
                    _ => self.announced(&event),
                };
                self.store.materialize(event, seq, Some(reply)).await
            }
            CHANGE_SUBJECT => {
                let change = LoggedChange::decode(&message.payload).map_err(unreadable)?;
                let notices = match &change {
                    LoggedChange::Forwarding(changes) => forward::notices(changes),
                    _ => Vec::new(),
                };
                let tokens = matches!(change, LoggedChange::Token(_));
                let reply = match waiter {
                    Some(Waiter::Change(reply)) => Some(reply),
                    _ => None,
                };
                let to = self.notices.clone();
                let tokens_changed = self.tokens_changed.clone();
                self.store
                    .materialize_change(change, seq)
                    .await
                    .map(|applied| {
                        if reply.is_some() || !notices.is_empty() || tokens {
                            tokio::spawn(async move {
                                let applied = applied.await;
                                if applied.is_ok() {
                                    for notice in notices {
                                        let _ = to.send(notice);
                                    }
                                    if tokens {
                                        tokens_changed.send_modify(|count| *count += 1);
                                    }
                                }
                                if let Some(reply) = reply {
                                    let _ = reply.send(applied);
                                }
                            });
                        }
                    })
            }
            subject => {
                tracing::warn!(%subject, seq, "a message of the cluster's log this version does not know; skipped");
                return Ok(());
            }
        };
        handed.map_err(|e| format!("the store took no more of the cluster's log: {e}"))
    }

    /// Where the decision of another node's delivery goes: to the `/` broadcast
    /// when it is recent.
    fn announced(&self, event: &crate::store::PreparedEvent) -> oneshot::Sender<Decision> {
        let (reply, decision) = oneshot::channel();
        if timestamp::now_ms() - event.record.received_at_ms <= LIVE_WITHIN_MS {
            tokio::spawn(announce(
                decision,
                self.store.clone(),
                self.processor.clone(),
            ));
        }
        reply
    }
}

/// Runs the after-commit stages (the `/` broadcast, processing metrics) for a
/// delivery another node acknowledged, as that node did for its own clients.
async fn announce(decision: oneshot::Receiver<Decision>, store: Store, processor: Processor) {
    let Ok(Ok(IngestOutcome::Stored { seq })) = decision.await else {
        return;
    };
    if let Ok(Some(stored)) = store.get_seq(seq).await {
        let payload = Payload::parse(stored.record.encoding, stored.body.into())
            .unwrap_or_else(|_| Payload::unreadable());
        processor.announce(seq, stored.record, payload);
    }
}
