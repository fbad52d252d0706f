//! The rejected-delivery log: the last [`KEEP`] deliveries refused at the ingest
//! edge, with only what was known when they were refused (never the body, never a
//! secret or an expected signature), and a running count per reason; and its twin,
//! the log of authentic deliveries the ingest filter ignored, counted per rule.

use redb::{ReadableDatabase, ReadableTable};
use serde::{Deserialize, Serialize};

use super::request::WriteRequest;
use super::tables::{self, WriteTables, meta};
use super::{StoreError, codec};
use crate::domain::Refusal;

/// Entries kept; older ones roll off as new ones arrive.
pub const KEEP: u64 = 1000;

/// One refused delivery and when. Encoded as its fields in order, `refusal`'s inline
/// (bincode has no framing for a nested struct), as when they were one struct.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RejectedDelivery {
    pub received_at_ms: i64,
    pub refusal: Refusal,
}

/// What the log holds: the newest entries first, and each reason's running count.
#[derive(Debug, Clone, Default)]
pub struct RejectedLog {
    pub entries: Vec<RejectedDelivery>,
    pub by_reason: Vec<(String, u64)>,
}

/// One of the two logs of deliveries turned away at the edge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EdgeLog {
    /// Refused by validation (`rejected_v1`), counted by reason code.
    Rejected,
    /// Authentic but ignored by the ingest filter (`ignored_v1`), counted by rule.
    Ignored,
}

impl EdgeLog {
    fn table(self) -> redb::TableDefinition<'static, u64, &'static [u8]> {
        match self {
            Self::Rejected => tables::REJECTED,
            Self::Ignored => tables::IGNORED,
        }
    }

    fn next_key(self) -> &'static str {
        match self {
            Self::Rejected => meta::NEXT_REJECTED,
            Self::Ignored => meta::NEXT_IGNORED,
        }
    }

    fn count_prefix(self) -> &'static str {
        match self {
            Self::Rejected => meta::REJECTED_PREFIX,
            Self::Ignored => meta::IGNORED_PREFIX,
        }
    }
}

pub(super) fn insert(
    t: &mut WriteTables,
    log: EdgeLog,
    entry: &RejectedDelivery,
) -> Result<(), StoreError> {
    let id = t.meta.get(log.next_key())?.map_or(1, |v| v.value());
    let table = match log {
        EdgeLog::Rejected => &mut t.rejected,
        EdgeLog::Ignored => &mut t.ignored,
    };
    table.insert(id, codec::encode(entry).as_slice())?;
    if id > KEEP {
        // One in, one out: the table never holds more than KEEP.
        table.remove(id - KEEP)?;
    }
    t.meta.insert(log.next_key(), id + 1)?;
    // The count of entries with this code (`rejected:<code>`, `ignored:<rule>`).
    let key = format!("{}{}", log.count_prefix(), entry.refusal.code);
    let count = t.meta.get(key.as_str())?.map_or(0, |v| v.value());
    t.meta.insert(key.as_str(), count + 1)?;
    Ok(())
}

/// The newest `limit` entries, newest first, and every code's running count.
pub(super) fn list(
    db: &redb::Database,
    log: EdgeLog,
    limit: usize,
) -> Result<RejectedLog, StoreError> {
    let txn = db.begin_read()?;
    let table = txn.open_table(log.table())?;
    let mut entries = Vec::new();
    for entry in table.iter()?.rev().take(limit) {
        entries.push(codec::decode(entry?.1.value())?);
    }
    let meta_table = txn.open_table(tables::META)?;
    let mut by_reason = Vec::new();
    let prefix = log.count_prefix();
    for entry in meta_table.range(prefix..)? {
        let (key, value) = entry?;
        let Some(code) = key.value().strip_prefix(prefix) else {
            break;
        };
        by_reason.push((code.to_owned(), value.value()));
    }
    Ok(RejectedLog { entries, by_reason })
}

impl super::Store {
    /// Adds an entry to the ignored-delivery log, like [`Store::record_rejection`].
    pub fn record_ignored(&self, entry: RejectedDelivery) -> bool {
        self.queue
            .try_send(WriteRequest::Ignore(Box::new(entry)))
            .is_ok()
    }

    /// The newest `limit` ignored deliveries and the running count per rule.
    pub async fn ignored(&self, limit: usize) -> Result<RejectedLog, StoreError> {
        self.read(move |db| list(db, EdgeLog::Ignored, limit)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Entries written before `Refusal` was split out read the same: the nested struct
    /// encodes exactly as the flat one did.
    #[test]
    fn the_encoding_is_the_one_of_the_flat_struct() {
        #[derive(Serialize)]
        struct Flat(i64, String, Option<String>, Option<String>, Option<String>);
        #[derive(Serialize)]
        struct Rest(
            Option<String>,
            bool,
            Option<u64>,
            Option<String>,
            u16,
            String,
            String,
        );
        let refusal = Refusal {
            source: "10.0.0.1".into(),
            event: Some("push".into()),
            delivery_id: None,
            user_agent: Some("curl/8".into()),
            content_type: Some("application/json".into()),
            signature_sent: true,
            body_bytes: Some(12),
            body_sha256: None,
            status: 401,
            code: "signature_mismatch".into(),
            reason: "no".into(),
        };
        let entry = RejectedDelivery {
            received_at_ms: 1_700_000_000_000,
            refusal: refusal.clone(),
        };
        let r = refusal;
        let flat = (
            Flat(
                entry.received_at_ms,
                r.source,
                r.event,
                r.delivery_id,
                r.user_agent,
            ),
            Rest(
                r.content_type,
                r.signature_sent,
                r.body_bytes,
                r.body_sha256,
                r.status,
                r.code,
                r.reason,
            ),
        );
        assert_eq!(codec::encode(&entry), codec::encode(&flat));
        let back: RejectedDelivery = codec::decode(&codec::encode(&flat)).unwrap();
        assert_eq!(back, entry);
    }
}
