//! What is published for a stored event: its subject, the raw body as received and
//! the GitHub headers, with `Nats-Msg-Id` = the delivery id so JetStream drops
//! re-sends inside its duplicate window.

use async_nats::HeaderMap;
use bytes::Bytes;

use super::subject::subject;
use crate::store::{Status, StoredEvent};

/// The header that carries the store's sequence number.
pub const SEQ_HEADER: &str = "Hookvault-Seq";

pub struct Outgoing {
    pub subject: String,
    pub headers: HeaderMap,
    pub body: Bytes,
}

/// The message for `event`, or `None` for what is not published: content duplicates
/// (another hook's copy of an event published already) and synthesized test events.
pub fn outgoing(event: StoredEvent) -> Option<Outgoing> {
    let record = &event.record;
    if record.status == Status::Duplicate || record.test {
        return None;
    }
    let stored = |name: &str| {
        event
            .headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    };
    let mut headers = HeaderMap::new();
    headers.insert("X-GitHub-Event", record.origin.event.as_str());
    headers.insert("X-GitHub-Delivery", record.origin.delivery_id.as_str());
    if let Some(hook) = stored("x-github-hook-id") {
        headers.insert("X-GitHub-Hook-ID", hook);
    } else if let Some(hook) = record.origin.hook_id {
        headers.insert("X-GitHub-Hook-ID", hook.to_string().as_str());
    }
    if let Some(content_type) = stored("content-type") {
        headers.insert("Content-Type", content_type);
    }
    headers.insert(SEQ_HEADER, event.seq.to_string().as_str());
    headers.insert(
        async_nats::header::NATS_MESSAGE_ID,
        record.origin.delivery_id.as_str(),
    );
    Some(Outgoing {
        subject: subject(&record.origin.event, record.origin.repository.as_deref()),
        headers,
        body: Bytes::from(event.body),
    })
}
