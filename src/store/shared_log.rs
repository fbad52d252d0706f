//! The boundary between the store and a replicated log outside it (cluster mode).
//!
//! A delivery goes through one path whatever the log: prepared, appended, decided,
//! applied. With the local log ([`super::appender`]) the append is a file write on
//! the log-writer thread. In cluster mode it is a publish to a JetStream stream the
//! nodes share (`crate::cluster`), and the store gets the stream's messages back, in
//! stream order, through [`super::Store::materialize`]. The store names no NATS type:
//! this trait is what it knows of the replicated log.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use futures::FutureExt;
use futures::future::BoxFuture;
use tokio::sync::oneshot;

use super::appender::{AppendRequest, Reply};
use super::request::WriteRequest;
use super::{
    DuplicateReason, EventRecord, IngestOutcome, PreparedEvent, StatusUpdate, Store, StoreError,
};

pub trait SharedLog: Send + Sync + 'static {
    /// Appends a delivery to the replicated log; resolves once it is durable there
    /// and this node has decided it.
    fn append(&self, event: PreparedEvent) -> BoxFuture<'static, Result<Appended, StoreError>>;

    /// Appends a change of stored state; resolves with what this node's application
    /// of it answered.
    fn change(&self, change: LoggedChange)
    -> BoxFuture<'static, Result<ChangeOutcome, StoreError>>;
}

pub enum Appended {
    /// What this node decided for the message appended.
    Decided(IngestOutcome),
    /// The log already held a message with this delivery id (within its duplicate
    /// window), at `stream_seq`: nothing was appended.
    AlreadyLogged { stream_seq: u64 },
}

/// What the store can give a message of the replicated log: a delivery to decide.
/// The codec's own frame (bincode, like the local log's frames).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct LoggedDelivery {
    pub content_key: Option<[u8; 32]>,
    pub duplicate_of: Option<String>,
    pub record: super::EventRecord,
    pub compressed_body: Vec<u8>,
    pub encoded_headers: Vec<u8>,
}

/// A change of stored state other than a delivery, as the replicated log carries
/// it. Each is idempotent: a node that applies one again after a crash (its store
/// rolled back to the last durable commit) ends where the others are.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub enum LoggedChange {
    /// A processing outcome (a replay, a retry, a test event's processing).
    Processed(StatusUpdate),
    /// Retention: retire these events.
    Retire(Vec<u64>),
    /// Remove these test events.
    RemoveTests(Vec<u64>),
    /// Forwarding's targets, cursors and failed deliveries.
    Forwarding(Vec<super::ForwardingChange>),
    /// An API token made, revoked, or its last use.
    Token(super::TokenChange),
}

/// What a change's application answers the node that appended it.
#[derive(Debug)]
pub enum ChangeOutcome {
    Record(Option<Box<EventRecord>>),
    Count(usize),
    Done,
    /// Whether the change applied (a token change).
    Applied(bool),
}

impl LoggedChange {
    pub fn encode(&self) -> Vec<u8> {
        super::codec::encode(self)
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, StoreError> {
        Ok(super::codec::decode(bytes)?)
    }
}

impl LoggedDelivery {
    pub fn encode(event: PreparedEvent) -> Vec<u8> {
        super::codec::encode(&Self {
            content_key: event.content_key.map(|k| k.0),
            duplicate_of: event.duplicate_of,
            record: event.record,
            compressed_body: event.compressed_body,
            encoded_headers: event.encoded_headers,
        })
    }

    pub fn decode(bytes: &[u8]) -> Result<PreparedEvent, StoreError> {
        let logged: Self = super::codec::decode(bytes)?;
        Ok(PreparedEvent {
            content_key: logged.content_key.map(crate::domain::ContentKey),
            duplicate_of: logged.duplicate_of,
            record: logged.record,
            compressed_body: logged.compressed_body,
            encoded_headers: logged.encoded_headers,
        })
    }
}

/// The store's side of cluster mode.
impl Store {
    /// Appends a delivery to the replicated log: what this node decided for it.
    pub(super) async fn append_shared(
        &self,
        log: &Arc<dyn SharedLog>,
        event: PreparedEvent,
    ) -> Result<IngestOutcome, StoreError> {
        let delivery_id = event.record.origin.delivery_id.clone();
        match log.append(event).await? {
            Appended::Decided(outcome) => Ok(outcome),
            Appended::AlreadyLogged { stream_seq } => {
                self.decided(stream_seq).await?;
                match self.get(delivery_id).await? {
                    Some(stored) => Ok(IngestOutcome::Duplicate {
                        seq: stored.seq,
                        reason: DuplicateReason::DeliveryId,
                    }),
                    None => Err(StoreError::Cluster(
                        "it holds this delivery, but this node has not applied it yet".into(),
                    )),
                }
            }
        }
    }

    /// Cluster mode: the replicated log deliveries are appended to from now on.
    pub fn use_shared_log(&self, log: Arc<dyn SharedLog>) {
        if let Some(shared) = &self.shared_log
            && shared.set(log).is_err()
        {
            tracing::warn!("the cluster's log was set twice; the first one stays");
        }
    }

    /// Cluster mode: a message of the replicated log, in stream order, to decide and
    /// apply like a delivery appended here. `reply` gets what was decided (for the
    /// node that appended it, or a caller that wants to know).
    pub async fn materialize(
        &self,
        event: PreparedEvent,
        stream_seq: u64,
        reply: Option<Reply>,
    ) -> Result<(), StoreError> {
        self.decide(event, reply, Some(stream_seq)).await
    }

    /// Cluster mode: a change from the replicated log, in stream order. Resolves
    /// once it is queued, with what will answer what its application answered.
    pub async fn materialize_change(
        &self,
        change: LoggedChange,
        stream_seq: u64,
    ) -> Result<BoxFuture<'static, Result<ChangeOutcome, StoreError>>, StoreError> {
        fn answered<T: Send + 'static>(
            answer: oneshot::Receiver<Result<T, StoreError>>,
            outcome: fn(T) -> ChangeOutcome,
        ) -> BoxFuture<'static, Result<ChangeOutcome, StoreError>> {
            async move { answer.await.map_err(|_| StoreError::Closed)?.map(outcome) }.boxed()
        }
        let (request, answer) = match change {
            LoggedChange::Processed(update) => {
                let (reply, answer) = oneshot::channel();
                let request = WriteRequest::Update { update, reply };
                (
                    request,
                    answered(answer, |r: Option<EventRecord>| {
                        ChangeOutcome::Record(r.map(Box::new))
                    }),
                )
            }
            LoggedChange::Retire(seqs) => {
                let (reply, answer) = oneshot::channel();
                let request = WriteRequest::Retire { seqs, reply };
                (request, answered(answer, ChangeOutcome::Count))
            }
            LoggedChange::RemoveTests(seqs) => {
                let (reply, answer) = oneshot::channel();
                let request = WriteRequest::RemoveTests { seqs, reply };
                (request, answered(answer, ChangeOutcome::Count))
            }
            LoggedChange::Forwarding(changes) => {
                let (reply, answer) = oneshot::channel();
                let request = WriteRequest::Forwarding { changes, reply };
                (request, answered(answer, |()| ChangeOutcome::Done))
            }
            LoggedChange::Token(change) => {
                let (reply, answer) = oneshot::channel();
                let request = WriteRequest::Tokens { change, reply };
                (request, answered(answer, ChangeOutcome::Applied))
            }
        };
        self.appends
            .send(AppendRequest::Pass {
                request,
                stream_seq,
            })
            .await
            .map_err(|_| StoreError::Closed)?;
        Ok(answer)
    }

    /// Cluster mode: the replicated log every change goes through, instead of the
    /// writer. `None` on a single node.
    pub(super) fn cluster_log(&self) -> Result<Option<&Arc<dyn SharedLog>>, StoreError> {
        match &self.shared_log {
            None => Ok(None),
            Some(shared) => shared
                .get()
                .map(Some)
                .ok_or_else(|| StoreError::Cluster("not connected to it yet".into())),
        }
    }

    /// Cluster mode: resolves once this node has decided the replicated log's
    /// messages through `stream_seq` (readable by delivery id from then on).
    pub async fn decided(&self, stream_seq: u64) -> Result<(), StoreError> {
        const PATIENCE: Duration = Duration::from_secs(30);
        let deadline = Instant::now() + PATIENCE;
        let mut changes = self.committed.clone();
        while self.log.stream_decided.load(Ordering::Acquire) < stream_seq {
            if Instant::now() >= deadline {
                return Err(StoreError::Cluster("this node is behind it".into()));
            }
            // A batch of redeliveries only decides: no change wakes the feed, so
            // look again every few milliseconds as well.
            let _ = tokio::time::timeout(Duration::from_millis(5), changes.changed()).await;
        }
        Ok(())
    }

    /// The last message of a cluster's log this store applied, if it ever was a
    /// cluster node: what it holds came from that log, and only that log may add to
    /// it (a delivery stored here alone would take a seq the cluster gives another).
    pub fn applied_cluster_log(&self) -> Option<u64> {
        match self.log.stream_decided.load(Ordering::Acquire) {
            0 => None,
            position => Some(position),
        }
    }
}

pub(super) fn counted(outcome: ChangeOutcome) -> Result<usize, StoreError> {
    match outcome {
        ChangeOutcome::Count(count) => Ok(count),
        ChangeOutcome::Record(_) | ChangeOutcome::Done | ChangeOutcome::Applied(_) => {
            Err(StoreError::Cluster("no count for a count".into()))
        }
    }
}
