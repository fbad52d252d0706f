//! The one place events are written: a new event, a content duplicate, and a change
//! of processing status. Each writes the record, its index entries, its retry entry
//! and its counters together, inside the caller's transaction.

use redb::ReadableTable;

use super::appender::LogEntry;
use super::tables::WriteTables;
use super::{EventRecord, Fact, Status, StoreError, codec};

/// The result of processing one event, to be recorded. Everything in it is decided
/// by whoever processed the event, nothing by the writer that records it: a cluster
/// node recording another node's outcome from the log records the same thing.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct StatusUpdate {
    pub seq: u64,
    /// The attempt this is (the stored attempts + 1 when processing began): an
    /// outcome for an attempt recorded already (another processing of the same
    /// event won the race, or the same update seen again) changes nothing.
    pub attempt: u32,
    pub outcome: Result<Vec<Fact>, String>,
    pub processing_time_us: u64,
    pub processed_at_ms: i64,
    /// When a failure should be retried automatically (`None`: no more retries).
    pub retry_at_ms: Option<i64>,
}

pub fn load(t: &WriteTables, seq: u64) -> Result<Option<EventRecord>, StoreError> {
    match t.events.get(seq)? {
        Some(bytes) => Ok(Some(codec::decode(bytes.value())?)),
        None => Ok(None),
    }
}

pub fn insert(t: &mut WriteTables, seq: u64, event: &LogEntry) -> Result<(), StoreError> {
    insert_record(t, seq, &event.record, event)?;
    t.actions
        .observe_event(seq, &event.record, &event.compressed_body)
}

fn insert_record(
    t: &mut WriteTables,
    seq: u64,
    record: &EventRecord,
    event: &LogEntry,
) -> Result<(), StoreError> {
    t.events.insert(seq, codec::encode(record).as_slice())?;
    t.payloads.insert(seq, event.compressed_body.as_slice())?;
    t.payload_bytes += event.compressed_body.len() as i64;
    t.headers.insert(seq, event.encoded_headers.as_slice())?;
    t.deliveries
        .insert(record.origin.delivery_id.as_str(), seq)?;
    t.index.set_all(record, seq, true)?;
    if let Some(due) = record.next_attempt_ms {
        t.retry_queue.insert((due, seq), ())?; // processed before it was stored, and failed
    }
    t.counters.apply(record, 1);
    t.alerts.observe(record, seq, &mut t.counters)?;
    // A test event is not activity of its repository (and can be removed).
    if let Some(repo) = record.origin.repository.as_ref().filter(|_| !record.test) {
        t.counters.touch_repository(repo, record.received_at_ms);
    }
    Ok(())
}

/// Stores a delivery whose content is already stored as event `original`: as an
/// event of its own under `seq`, with its bytes and headers, status `duplicate`,
/// counted only as a duplicate. Returns the original's delivery id.
pub fn insert_content_duplicate(
    t: &mut WriteTables,
    seq: u64,
    event: &LogEntry,
    original: u64,
) -> Result<Option<String>, StoreError> {
    let record = as_duplicate(event.record.clone());
    insert_record(t, seq, &record, event)?;
    t.content_duplicates.insert(
        record.origin.delivery_id.as_str(),
        (original, record.received_at_ms),
    )?;
    let Some(mut first) = load(t, original)? else {
        return Ok(None); // retired meanwhile
    };
    first.content_duplicates += 1;
    t.events
        .insert(original, codec::encode(&first).as_slice())?;
    Ok(Some(first.origin.delivery_id))
}

/// The record a content duplicate is stored with: status `duplicate`, and none of
/// the processing that may have run before the store (`Processor::first_attempt`).
pub fn as_duplicate(mut record: EventRecord) -> EventRecord {
    record.status = Status::Duplicate;
    record.attempts = 0;
    record.last_error = None;
    record.processing_time_us = None;
    record.processed_at_ms = None;
    record.next_attempt_ms = None;
    record.facts.clear();
    record
}

/// Records a processing outcome: status, attempts, error, time, facts, the status
/// index entry, the retry queue and every counter the change touches.
pub fn update_status(
    t: &mut WriteTables,
    update: &StatusUpdate,
) -> Result<Option<EventRecord>, StoreError> {
    let Some(old) = load(t, update.seq)? else {
        return Ok(None); // deleted meanwhile (retention): nothing to record
    };
    if old.status == Status::Duplicate {
        return Ok(None); // never processed (callers refuse before getting here)
    }
    if update.attempt != old.attempts + 1 {
        return Ok(Some(old)); // that attempt is recorded already
    }
    let mut new = old.clone();
    new.record_attempt(
        update.outcome.clone(),
        update.processing_time_us,
        update.processed_at_ms,
        update.retry_at_ms,
    );

    t.events
        .insert(update.seq, codec::encode(&new).as_slice())?;
    if old.status != new.status {
        t.index
            .change_status(old.status, new.status, old.received_at_ms, update.seq)?;
    }
    if let Some(due) = old.next_attempt_ms {
        t.retry_queue.remove((due, update.seq))?;
    }
    if let Some(due) = new.next_attempt_ms {
        t.retry_queue.insert((due, update.seq), ())?;
    }
    t.counters.apply(&old, -1);
    t.counters.apply(&new, 1);
    t.alerts.observe(&new, update.seq, &mut t.counters)?;
    Ok(Some(new))
}

/// Retention: removes an event's payload, headers, index entries and retry entry,
/// and keeps its record among the retired ones. Counters keep its contributions, so
/// statistics over past hours stay; its delivery id stays known, so a late
/// redelivery is still a duplicate. Returns false if the event was already gone.
pub fn retire(t: &mut WriteTables, seq: u64) -> Result<bool, StoreError> {
    let Some(record) = load(t, seq)? else {
        return Ok(false);
    };
    remove_stored(t, seq, &record)?;
    t.retired.insert(seq, codec::encode(&record).as_slice())?;
    Ok(true)
}

/// Removes a synthesized test event entirely: its record, payload, headers, delivery
/// id, index entries, retry entry and every counter contribution, as if it had never
/// been sent. Returns false if there was no such test event.
pub fn remove_test(t: &mut WriteTables, seq: u64) -> Result<bool, StoreError> {
    let Some(record) = load(t, seq)?.filter(|r| r.test) else {
        return Ok(false);
    };
    remove_stored(t, seq, &record)?;
    t.deliveries.remove(record.origin.delivery_id.as_str())?;
    t.counters.apply(&record, -1);
    Ok(true)
}

/// Removes what an event keeps besides its delivery id and counts: the record, its
/// payload, headers, index entries and retry entry.
fn remove_stored(t: &mut WriteTables, seq: u64, record: &EventRecord) -> Result<(), StoreError> {
    t.events.remove(seq)?;
    let freed = t
        .payloads
        .remove(seq)?
        .map_or(0, |p| p.value().len() as i64);
    t.payload_bytes -= freed;
    t.headers.remove(seq)?;
    t.index.set_all(record, seq, false)?;
    if let Some(due) = record.next_attempt_ms {
        t.retry_queue.remove((due, seq))?;
    }
    Ok(())
}
