//! What the store's writer is asked to do ([`WriteRequest`]), what it answers, and
//! how a request it cannot carry out is answered ([`refuse`]).

use std::sync::Arc;
use std::time::Instant;

use tokio::sync::oneshot;

use super::appender::LogEntry;
use super::events::StatusUpdate;
use super::forwarding::ForwardingChange;
use super::rejected::RejectedDelivery;
use super::{EventRecord, Origin, StoreError, codec, compression};
use crate::domain::{ContentKey, Delivery};

/// A delivery made ready for storage by its caller (encoding and compression happen
/// there, in parallel, so the writer only inserts).
pub struct PreparedEvent {
    pub content_key: Option<ContentKey>,
    /// Known to duplicate the content of this stored delivery (an imported
    /// duplicate): stored as its duplicate whatever the dedup window says.
    pub duplicate_of: Option<String>,
    pub record: EventRecord,
    pub compressed_body: Vec<u8>,
    pub encoded_headers: Vec<u8>,
}

/// Who waits for a processing outcome to be recorded: the record after it.
pub type UpdateReply = oneshot::Sender<Result<Option<EventRecord>, StoreError>>;

pub enum WriteRequest {
    /// Deliveries appended to the log (and answered already), to apply.
    Apply {
        entries: Vec<Arc<LogEntry>>,
        /// Redeliveries of stored ids the log writer answered, to count.
        delivery_duplicates: u64,
        /// When the log writer synced the batch.
        appended_at: Instant,
        /// Cluster mode: the last message of the replicated log the batch covers,
        /// recorded in the same transaction (`meta::STREAM_APPLIED`).
        stream_position: Option<u64>,
    },
    Update {
        update: StatusUpdate,
        reply: UpdateReply,
    },
    /// Retention: retire these events; answers how many were still there.
    Retire {
        seqs: Vec<u64>,
        reply: oneshot::Sender<Result<usize, StoreError>>,
    },
    /// Remove these test events entirely; answers how many were removed.
    RemoveTests {
        seqs: Vec<u64>,
        reply: oneshot::Sender<Result<usize, StoreError>>,
    },
    /// A delivery refused at the edge, for the rejected log. Nobody waits for it.
    Reject(Box<RejectedDelivery>),
    /// An authentic delivery the ingest filter ignored, for its log. Nobody waits.
    Ignore(Box<RejectedDelivery>),
    /// A consumer's new cursor (`cursors_v1`). Nobody waits for it: it rides on the
    /// next durable commit, and a consumer repeats what a crash made it forget.
    Cursor { name: String, seq: u64 },
    /// API tokens: durable before answered.
    Tokens {
        change: super::tokens::TokenChange,
        reply: oneshot::Sender<Result<bool, StoreError>>,
    },
    /// Forwarding's targets and failed deliveries: durable before answered.
    Forwarding {
        changes: Vec<ForwardingChange>,
        reply: oneshot::Sender<Result<(), StoreError>>,
    },
}

/// What the store did with a delivery. Both variants are durable when returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IngestOutcome {
    Stored {
        seq: u64,
    },
    /// `seq` is where the delivery id is found: the earlier copy for a redelivery,
    /// the duplicate's own event for a content duplicate.
    Duplicate {
        seq: u64,
        reason: DuplicateReason,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DuplicateReason {
    /// The delivery id is already stored (a redelivery, or a racing copy).
    DeliveryId,
    /// The same content came within the dedup window under another delivery id:
    /// stored, marked `duplicate` of that one (`None` if it was retired meanwhile).
    Content { of: Option<String> },
}

pub(super) enum Outcome {
    Applied,
    Update(Option<Box<EventRecord>>),
    Retire(usize),
    Removed(usize),
    Rejected,
    Cursor,
    Forwarding,
    Tokens(bool),
}

/// Answers a request that will not be carried out. Logged deliveries have been
/// answered already: the log keeps them for the reopened database.
pub(super) fn refuse(request: WriteRequest, error: &StoreError) {
    match request {
        WriteRequest::Apply { .. } => {}
        WriteRequest::Update { reply, .. } => {
            let _ = reply.send(Err(error.clone()));
        }
        WriteRequest::Retire { reply, .. } | WriteRequest::RemoveTests { reply, .. } => {
            let _ = reply.send(Err(error.clone()));
        }
        WriteRequest::Forwarding { reply, .. } => {
            let _ = reply.send(Err(error.clone()));
        }
        WriteRequest::Tokens { reply, .. } => {
            let _ = reply.send(Err(error.clone()));
        }
        WriteRequest::Reject(_) | WriteRequest::Ignore(_) | WriteRequest::Cursor { .. } => {}
    }
}

/// Encoding and compression, done by the caller so they run in parallel.
pub(super) fn prepare(delivery: Delivery) -> Result<PreparedEvent, StoreError> {
    let origin = Origin {
        delivery_id: delivery.id.as_str().to_owned(),
        event: delivery.event.as_str().to_owned(),
        action: delivery.fields.action,
        repository: delivery.fields.repository,
        organization: delivery.fields.organization,
        sender: delivery.fields.sender,
        installation_id: delivery.fields.installation_id,
        hook_id: delivery.hook_id,
    };
    let record = EventRecord::received(
        origin,
        delivery.received_at_ms,
        delivery.encoding,
        u32::try_from(delivery.body.len()).unwrap_or(u32::MAX),
        delivery.content_key.map(|k| k.0),
        delivery.test,
    );
    let compressed_body = compression::compress(&delivery.body)?;
    Ok(PreparedEvent {
        content_key: delivery.content_key,
        duplicate_of: None,
        encoded_headers: codec::encode(&delivery.headers),
        compressed_body,
        record,
    })
}
