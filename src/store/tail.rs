//! The acknowledged tail: deliveries durable in the log and answered, but not yet
//! applied to redb. A delivery is acknowledged right after the log's `fdatasync`, so
//! for a few milliseconds (longer while the store writer is busy or failing) only
//! the log has it; reads by delivery id and by seq look here first, which makes every
//! acknowledged delivery readable at once.
//!
//! The log writer adds a batch before answering its callers; the store writer drops
//! what it applied only after that commit is visible. A reader that misses an entry
//! here therefore finds it in a read transaction begun afterwards: look here first,
//! then in redb, never the other way round.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};

use super::appender::LogEntry;
use super::reads::StoredEvent;
use super::{Status, StoreError, codec, compression};

/// One logged delivery with what its detail view needs beyond the frame.
struct TailEvent {
    entry: Arc<LogEntry>,
    /// For a content duplicate, the delivery id of its original.
    duplicate_of: Option<String>,
}

#[derive(Default)]
struct Entries {
    by_seq: BTreeMap<u64, TailEvent>,
    by_id: HashMap<String, u64>,
}

#[derive(Default)]
pub struct Tail {
    entries: Mutex<Entries>,
}

impl Tail {
    fn lock(&self) -> MutexGuard<'_, Entries> {
        // A panic while holding the lock leaves whole entries behind: still usable.
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds logged deliveries (the log writer, after the batch's `fdatasync`).
    pub fn add(&self, logged: impl IntoIterator<Item = (Arc<LogEntry>, Option<String>)>) {
        let mut entries = self.lock();
        for (entry, duplicate_of) in logged {
            entries
                .by_id
                .insert(entry.record.origin.delivery_id.clone(), entry.seq);
            entries.by_seq.insert(
                entry.seq,
                TailEvent {
                    entry,
                    duplicate_of,
                },
            );
        }
    }

    /// Drops every delivery up to `seq` (the store writer, once they are visible).
    pub fn applied_through(&self, seq: u64) {
        let mut entries = self.lock();
        let kept = entries.by_seq.split_off(&(seq + 1));
        let applied = std::mem::replace(&mut entries.by_seq, kept);
        for event in applied.into_values() {
            entries.by_id.remove(&event.entry.record.origin.delivery_id);
        }
    }

    /// The delivery with this id, if it is still only in the log.
    pub fn by_id(&self, delivery_id: &str) -> Result<Option<StoredEvent>, StoreError> {
        let found = {
            let entries = self.lock();
            entries
                .by_id
                .get(delivery_id)
                .and_then(|seq| entries.by_seq.get(seq))
                .map(|e| (e.entry.clone(), e.duplicate_of.clone()))
        };
        found.map(|(e, of)| stored_event(&e, of)).transpose()
    }

    /// Whether a delivery with this id is still only in the log.
    pub fn contains(&self, delivery_id: &str) -> bool {
        self.lock().by_id.contains_key(delivery_id)
    }

    /// The delivery with this seq, if it is still only in the log.
    pub fn by_seq(&self, seq: u64) -> Result<Option<StoredEvent>, StoreError> {
        let found = self
            .lock()
            .by_seq
            .get(&seq)
            .map(|e| (e.entry.clone(), e.duplicate_of.clone()));
        found.map(|(e, of)| stored_event(&e, of)).transpose()
    }
}

/// The event as the store will hold it once applied (`events::insert` and
/// `events::insert_content_duplicate` make the same record).
fn stored_event(entry: &LogEntry, duplicate_of: Option<String>) -> Result<StoredEvent, StoreError> {
    let seq = entry.seq;
    let record = match entry.duplicate_of {
        Some(_) => super::events::as_duplicate(entry.record.clone()),
        None => entry.record.clone(),
    };
    let headers = codec::decode(&entry.encoded_headers)?;
    let body = compression::decompress(&entry.compressed_body, record.body_len as usize)
        .map_err(|e| StoreError::Corrupt(format!("payload of logged event {seq}: {e}")))?;
    debug_assert!(duplicate_of.is_none() || record.status == Status::Duplicate);
    Ok(StoredEvent {
        seq,
        record,
        headers,
        body,
        duplicate_of,
    })
}
