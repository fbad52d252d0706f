//! The rejected-delivery log: the last [`KEEP`] deliveries refused at the ingest
//! edge, with only what was known when they were refused (never the body, never a
//! secret or an expected signature), and a running count per reason.

use redb::{ReadableDatabase, ReadableTable};
use serde::{Deserialize, Serialize};

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

/// Meta key counting rejections with `code`.
fn count_key(code: &str) -> String {
    format!("{}{code}", meta::REJECTED_PREFIX)
}

pub(super) fn insert(t: &mut WriteTables, entry: &RejectedDelivery) -> Result<(), StoreError> {
    let id = t.meta.get(meta::NEXT_REJECTED)?.map_or(1, |v| v.value());
    t.rejected.insert(id, codec::encode(entry).as_slice())?;
    t.meta.insert(meta::NEXT_REJECTED, id + 1)?;
    if id > KEEP {
        // One in, one out: the table never holds more than KEEP.
        t.rejected.remove(id - KEEP)?;
    }
    let key = count_key(&entry.refusal.code);
    let count = t.meta.get(key.as_str())?.map_or(0, |v| v.value());
    t.meta.insert(key.as_str(), count + 1)?;
    Ok(())
}

/// The newest `limit` entries, newest first, and every reason's running count.
pub(super) fn list(db: &redb::Database, limit: usize) -> Result<RejectedLog, StoreError> {
    let txn = db.begin_read()?;
    let table = txn.open_table(tables::REJECTED)?;
    let mut entries = Vec::new();
    for entry in table.iter()?.rev().take(limit) {
        entries.push(codec::decode(entry?.1.value())?);
    }
    let meta_table = txn.open_table(tables::META)?;
    let mut by_reason = Vec::new();
    let prefix = meta::REJECTED_PREFIX;
    for entry in meta_table.range(prefix..)? {
        let (key, value) = entry?;
        let Some(code) = key.value().strip_prefix(prefix) else {
            break;
        };
        by_reason.push((code.to_owned(), value.value()));
    }
    Ok(RejectedLog { entries, by_reason })
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
