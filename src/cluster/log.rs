//! Appending to the cluster's log: publish, wait for JetStream's acknowledgement,
//! then for this node's own decision of the message.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_nats::HeaderMap;
use async_nats::jetstream::{self, context::PublishErrorKind, publish::PublishAck};
use bytes::Bytes;
use futures::FutureExt;
use futures::future::BoxFuture;
use tokio::sync::oneshot;

use super::{CHANGE_SUBJECT, DELIVERY_SUBJECT, Status};
use crate::store::{
    Appended, ChangeOutcome, IngestOutcome, LoggedChange, LoggedDelivery, PreparedEvent, SharedLog,
    StoreError,
};

/// The node that appended a message: an id made at each start.
pub const NODE_HEADER: &str = "Hookvault-Node";
/// The appending node's number for the message, to find who waits for it.
pub const TICKET_HEADER: &str = "Hookvault-Ticket";

/// How long an acknowledged append waits for this node's decision before the caller
/// is told to retry (the message stays in the log: a retried delivery is a duplicate).
const DECISION_PATIENCE: Duration = Duration::from_secs(30);

pub type Decision = Result<IngestOutcome, StoreError>;
pub type Applied = Result<ChangeOutcome, StoreError>;

/// Who waits for this node's decision of a message it appended.
pub enum Waiter {
    Delivery(oneshot::Sender<Decision>),
    Change(oneshot::Sender<Applied>),
}

/// The appends of this node waiting for their decision, by ticket.
pub struct Waiting {
    node: String,
    next: AtomicU64,
    waiters: Mutex<HashMap<u64, Waiter>>,
}

impl Default for Waiting {
    fn default() -> Self {
        Self {
            node: format!("{:016x}", rand::random::<u64>()),
            next: AtomicU64::new(1),
            waiters: Mutex::default(),
        }
    }
}

impl Waiting {
    /// This node's id, made at its start.
    pub fn node(&self) -> &str {
        &self.node
    }

    /// A ticket for `waiter`, and the headers that carry it.
    fn register(&self, waiter: Waiter) -> (u64, HeaderMap) {
        let ticket = self.next.fetch_add(1, Ordering::Relaxed);
        self.waiters
            .lock()
            .expect("not poisoned")
            .insert(ticket, waiter);
        let mut headers = HeaderMap::new();
        headers.insert(NODE_HEADER, self.node.as_str());
        headers.insert(TICKET_HEADER, ticket.to_string().as_str());
        (ticket, headers)
    }

    fn forget(&self, ticket: u64) {
        self.waiters.lock().expect("not poisoned").remove(&ticket);
    }

    /// Who waits for the message with these headers, if this node appended it.
    pub fn take(&self, headers: Option<&HeaderMap>) -> Option<Waiter> {
        let headers = headers?;
        if headers.get(NODE_HEADER)?.as_str() != self.node {
            return None;
        }
        let ticket = headers.get(TICKET_HEADER)?.as_str().parse().ok()?;
        self.waiters.lock().expect("not poisoned").remove(&ticket)
    }
}

pub struct ClusterLog {
    js: jetstream::Context,
    waiting: Arc<Waiting>,
    status: Arc<Status>,
}

impl ClusterLog {
    pub fn new(js: jetstream::Context, waiting: Arc<Waiting>, status: Arc<Status>) -> Self {
        Self {
            js,
            waiting,
            status,
        }
    }

    /// Publishes under `ticket`; the acknowledgement, or the caller's error.
    async fn publish(
        &self,
        subject: &'static str,
        ticket: u64,
        headers: HeaderMap,
        payload: Bytes,
    ) -> Result<PublishAck, StoreError> {
        match publish(&self.js, subject, headers, payload).await {
            Ok(ack) => {
                self.status.saw(ack.sequence);
                Ok(ack)
            }
            Err(error) => {
                // Maybe appended all the same: a sender's retry finds it then.
                self.waiting.forget(ticket);
                Err(StoreError::Cluster(format!(
                    "it did not take the message: {error}"
                )))
            }
        }
    }

    /// Waits for this node's decision of the message under `ticket`.
    async fn decided<T>(
        &self,
        ticket: u64,
        decision: oneshot::Receiver<Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        match tokio::time::timeout(DECISION_PATIENCE, decision).await {
            Ok(Ok(decided)) => decided,
            Ok(Err(_)) => Err(StoreError::Closed),
            Err(_) => {
                self.waiting.forget(ticket);
                Err(StoreError::Cluster(
                    "it holds the message, but this node is behind it".into(),
                ))
            }
        }
    }
}

/// Publishes, trying again for a while when the stream did not take the message at
/// all: no stream answered (a stream just made in a cluster is not known to every
/// server at once; its leader moves after a server is lost), or another copy with
/// the same `Nats-Msg-Id` is being stored (nats-server 2.11 and later refuse the
/// second one meanwhile; tried again, it is answered as a duplicate, with the
/// first one's sequence). A timeout is not tried again: the message may be in the
/// stream, and the sender's own retry finds it.
async fn publish(
    js: &jetstream::Context,
    subject: &'static str,
    headers: HeaderMap,
    payload: Bytes,
) -> Result<PublishAck, jetstream::context::PublishError> {
    const PATIENCE: Duration = Duration::from_secs(5);
    let started = std::time::Instant::now();
    let mut pause = Duration::from_millis(20);
    loop {
        let published = async {
            js.publish_with_headers(subject, headers.clone(), payload.clone())
                .await?
                .await
        };
        match published.await {
            Err(error)
                if (error.kind() == PublishErrorKind::StreamNotFound
                    || copy_in_process(&error))
                    && started.elapsed() < PATIENCE =>
            {
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_millis(500));
            }
            result => return result,
        }
    }
}

/// JetStream's "duplicate message id is in process".
fn copy_in_process(error: &jetstream::context::PublishError) -> bool {
    const IN_PROCESS: jetstream::ErrorCode = jetstream::ErrorCode(10158);
    std::error::Error::source(error)
        .and_then(|source| source.downcast_ref::<jetstream::Error>())
        .is_some_and(|error| error.error_code() == IN_PROCESS)
}

impl SharedLog for Arc<ClusterLog> {
    fn append(&self, event: PreparedEvent) -> BoxFuture<'static, Result<Appended, StoreError>> {
        let log = self.clone();
        async move {
            let (reply, decision) = oneshot::channel();
            let (ticket, mut headers) = log.waiting.register(Waiter::Delivery(reply));
            // JetStream refuses a copy within its duplicate window by this id.
            headers.insert(
                async_nats::header::NATS_MESSAGE_ID,
                event.record.origin.delivery_id.as_str(),
            );
            let payload = Bytes::from(LoggedDelivery::encode(event));
            let ack = log
                .publish(DELIVERY_SUBJECT, ticket, headers, payload)
                .await?;
            if ack.duplicate {
                log.waiting.forget(ticket);
                return Ok(Appended::AlreadyLogged {
                    stream_seq: ack.sequence,
                });
            }
            log.decided(ticket, decision).await.map(Appended::Decided)
        }
        .boxed()
    }

    fn change(
        &self,
        change: LoggedChange,
    ) -> BoxFuture<'static, Result<ChangeOutcome, StoreError>> {
        let log = self.clone();
        async move {
            let (reply, applied) = oneshot::channel();
            let (ticket, headers) = log.waiting.register(Waiter::Change(reply));
            let payload = Bytes::from(change.encode());
            log.publish(CHANGE_SUBJECT, ticket, headers, payload)
                .await?;
            log.decided(ticket, applied).await
        }
        .boxed()
    }
}
