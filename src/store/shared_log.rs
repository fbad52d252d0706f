//! The boundary between the store and a replicated log outside it (cluster mode).
//!
//! A delivery goes through one path whatever the log: prepared, appended, decided,
//! applied. With the local log ([`super::appender`]) the append is a file write on
//! the log-writer thread. In cluster mode it is a publish to a JetStream stream the
//! nodes share (`crate::cluster`), and the store gets the stream's messages back, in
//! stream order, through [`super::Store::materialize`]. The store names no NATS type:
//! this trait is what it knows of the replicated log.

use futures::future::BoxFuture;

use super::{EventRecord, IngestOutcome, PreparedEvent, StatusUpdate, StoreError};

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
}

/// What a change's application answers the node that appended it.
#[derive(Debug)]
pub enum ChangeOutcome {
    Record(Option<Box<EventRecord>>),
    Count(usize),
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
