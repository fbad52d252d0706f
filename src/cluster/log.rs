//! Appending to the cluster's log: publish, wait for JetStream's acknowledgement,
//! then for this node's own decision of the message.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_nats::HeaderMap;
use async_nats::jetstream;
use futures::FutureExt;
use futures::future::BoxFuture;
use tokio::sync::oneshot;

use super::{DELIVERY_SUBJECT, Status};
use crate::store::{Appended, IngestOutcome, LoggedDelivery, PreparedEvent, SharedLog, StoreError};

/// The node that appended a message: an id made at each start.
pub const NODE_HEADER: &str = "Hookvault-Node";
/// The appending node's number for the message, to find who waits for it.
pub const TICKET_HEADER: &str = "Hookvault-Ticket";

/// How long an acknowledged append waits for this node's decision before the caller
/// is told to retry (the delivery stays in the log: the retry is a duplicate).
const DECISION_PATIENCE: Duration = Duration::from_secs(30);

pub type Decision = Result<IngestOutcome, StoreError>;

/// The appends of this node waiting for their decision, by ticket.
pub struct Waiting {
    node: String,
    next: AtomicU64,
    replies: Mutex<HashMap<u64, oneshot::Sender<Decision>>>,
}

impl Default for Waiting {
    fn default() -> Self {
        Self {
            node: format!("{:016x}", rand::random::<u64>()),
            next: AtomicU64::new(1),
            replies: Mutex::default(),
        }
    }
}

impl Waiting {
    fn register(&self) -> (u64, oneshot::Receiver<Decision>) {
        let ticket = self.next.fetch_add(1, Ordering::Relaxed);
        let (reply, answer) = oneshot::channel();
        self.replies
            .lock()
            .expect("not poisoned")
            .insert(ticket, reply);
        (ticket, answer)
    }

    fn forget(&self, ticket: u64) {
        self.replies.lock().expect("not poisoned").remove(&ticket);
    }

    /// Who waits for the message with these headers, if this node appended it.
    pub fn take(&self, headers: Option<&HeaderMap>) -> Option<oneshot::Sender<Decision>> {
        let headers = headers?;
        if headers.get(NODE_HEADER)?.as_str() != self.node {
            return None;
        }
        let ticket = headers.get(TICKET_HEADER)?.as_str().parse().ok()?;
        self.replies.lock().expect("not poisoned").remove(&ticket)
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
}

/// Publishes, trying again for a while when the stream did not take the message at
/// all: no stream answered (a stream just made in a cluster is not known to every
/// server at once; its leader moves after a server is lost). A timeout is not tried
/// again: the message may be in the stream, and the sender's own retry finds it.
async fn publish(
    js: &jetstream::Context,
    headers: HeaderMap,
    payload: bytes::Bytes,
) -> Result<jetstream::publish::PublishAck, jetstream::context::PublishError> {
    const PATIENCE: Duration = Duration::from_secs(5);
    let started = std::time::Instant::now();
    let mut pause = Duration::from_millis(20);
    loop {
        let published = async {
            js.publish_with_headers(DELIVERY_SUBJECT, headers.clone(), payload.clone())
                .await?
                .await
        };
        match published.await {
            Err(error)
                if error.kind() == jetstream::context::PublishErrorKind::StreamNotFound
                    && started.elapsed() < PATIENCE =>
            {
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_millis(500));
            }
            result => return result,
        }
    }
}

impl SharedLog for ClusterLog {
    fn append(&self, event: PreparedEvent) -> BoxFuture<'static, Result<Appended, StoreError>> {
        let js = self.js.clone();
        let waiting = self.waiting.clone();
        let status = self.status.clone();
        async move {
            let (ticket, decision) = waiting.register();
            let mut headers = HeaderMap::new();
            headers.insert(
                async_nats::header::NATS_MESSAGE_ID,
                event.record.origin.delivery_id.as_str(),
            );
            headers.insert(NODE_HEADER, waiting.node.as_str());
            headers.insert(TICKET_HEADER, ticket.to_string().as_str());
            let payload = bytes::Bytes::from(LoggedDelivery::encode(event));
            let ack = match publish(&js, headers, payload).await {
                Ok(ack) => ack,
                Err(error) => {
                    // Maybe appended all the same: the sender's retry finds it then.
                    waiting.forget(ticket);
                    return Err(StoreError::Cluster(format!(
                        "it did not take the delivery: {error}"
                    )));
                }
            };
            status.saw(ack.sequence);
            if ack.duplicate {
                waiting.forget(ticket);
                return Ok(Appended::AlreadyLogged {
                    stream_seq: ack.sequence,
                });
            }
            match tokio::time::timeout(DECISION_PATIENCE, decision).await {
                Ok(Ok(decided)) => decided.map(Appended::Decided),
                Ok(Err(_)) => Err(StoreError::Closed),
                Err(_) => {
                    waiting.forget(ticket);
                    Err(StoreError::Cluster(
                        "it holds the delivery, but this node is behind it".into(),
                    ))
                }
            }
        }
        .boxed()
    }
}
