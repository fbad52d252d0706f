//! Point reads: one event with its payload, the work queues of the processor, and
//! the facts health is computed from.

use redb::{ReadTransaction, ReadableDatabase, ReadableTable, ReadableTableMetadata};

use super::tables;
use super::{EventRecord, Status, Store, StoreError, codec, compression, index};

/// A stored event with everything the detail view shows.
#[derive(Debug, Clone)]
pub struct StoredEvent {
    pub seq: u64,
    pub record: EventRecord,
    pub headers: Vec<(String, String)>,
    /// The body exactly as received.
    pub body: Vec<u8>,
    /// For a content duplicate, the delivery id of the event it duplicates (`None`
    /// when that one was retired).
    pub duplicate_of: Option<String>,
}

/// A stored event's repository, organization and request headers.
#[derive(Debug, Clone, Default)]
pub struct StoredHeaders {
    pub repository: Option<String>,
    pub organization: Option<String>,
    pub headers: Vec<(String, String)>,
}

/// Most recent events counted for health; keeps the health endpoint cheap under a
/// flood (the count then reads "at least this many").
pub const RECENT_CAP: usize = 10_000;

/// What the health score is computed from.
#[derive(Debug, Clone, Default)]
pub struct HealthFacts {
    pub total_events: u64,
    pub pending: u64,
    pub failed: u64,
    pub oldest_pending_ms: Option<i64>,
    pub last_event_ms: Option<i64>,
    pub events_since: u64,
    /// Time of the last failed commit, if any.
    pub last_write_failure_ms: Option<i64>,
    /// No durable commit has succeeded since a commit failed.
    pub writes_failing: bool,
}

fn seq_of(txn: &ReadTransaction, delivery_id: &str) -> Result<Option<u64>, StoreError> {
    Ok(txn
        .open_table(tables::DELIVERIES)?
        .get(delivery_id)?
        .map(|s| s.value()))
}

fn record_of(txn: &ReadTransaction, seq: u64) -> Result<Option<EventRecord>, StoreError> {
    Ok(txn
        .open_table(tables::EVENTS)?
        .get(seq)?
        .map(|b| codec::decode::<EventRecord>(b.value()))
        .transpose()?)
}

/// The body of the event `record` was read for, decompressed.
fn body_of(txn: &ReadTransaction, seq: u64, record: &EventRecord) -> Result<Vec<u8>, StoreError> {
    let compressed = txn
        .open_table(tables::PAYLOADS)?
        .get(seq)?
        .ok_or_else(|| StoreError::Corrupt(format!("event {seq} has no payload")))?;
    compression::decompress(compressed.value(), record.body_len as usize)
        .map_err(|e| StoreError::Corrupt(format!("payload of event {seq}: {e}")))
}

fn load_event(txn: &ReadTransaction, seq: u64) -> Result<Option<StoredEvent>, StoreError> {
    let Some(record) = record_of(txn, seq)? else {
        return Ok(None);
    };
    let headers = txn
        .open_table(tables::HEADERS)?
        .get(seq)?
        .map(|b| codec::decode(b.value()))
        .transpose()?;
    let body = body_of(txn, seq, &record)?;
    let duplicate_of = match record.status {
        Status::Duplicate => original_of(txn, &record.origin.delivery_id)?,
        _ => None,
    };
    Ok(Some(StoredEvent {
        seq,
        record,
        headers: headers.unwrap_or_default(),
        body,
        duplicate_of,
    }))
}

/// Reads by seq in one read transaction, the body only when asked: the search
/// index's reader, which usually has the payload's parts already (`search::Fresh`).
pub struct SeqReader {
    txn: ReadTransaction,
}

impl SeqReader {
    pub fn record(&self, seq: u64) -> Result<Option<EventRecord>, StoreError> {
        record_of(&self.txn, seq)
    }

    /// The body of the event `record` was read for, decompressed.
    pub fn body(&self, seq: u64, record: &EventRecord) -> Result<Vec<u8>, StoreError> {
        body_of(&self.txn, seq, record)
    }
}

/// The delivery id of the stored event a content duplicate duplicates.
fn original_of(txn: &ReadTransaction, delivery_id: &str) -> Result<Option<String>, StoreError> {
    let Some(entry) = txn
        .open_table(tables::CONTENT_DUPLICATES)?
        .get(delivery_id)?
    else {
        return Ok(None);
    };
    let (original, _) = entry.value();
    Ok(record_of(txn, original)?.map(|r| r.origin.delivery_id))
}

/// Seqs in one index entry, oldest first.
fn oldest_in(
    txn: &ReadTransaction,
    field: &str,
    value: &str,
    limit: usize,
) -> Result<Vec<u64>, StoreError> {
    let index = txn.open_table(tables::EVENT_INDEX)?;
    let mut seqs = Vec::new();
    for entry in index
        .range((field, value, i64::MIN, 0u64)..=(field, value, i64::MAX, u64::MAX))?
        .take(limit)
    {
        seqs.push(entry?.0.value().3);
    }
    Ok(seqs)
}

impl Store {
    /// Up to `limit` changes after change id `after`: (change id, seq), in order.
    pub fn changes_after_blocking(
        &self,
        after: u64,
        limit: usize,
    ) -> Result<Vec<(u64, u64)>, StoreError> {
        let txn = self.db.get()?.begin_read()?;
        let changes = txn.open_table(tables::CHANGES)?;
        let mut out = Vec::new();
        for entry in changes.range(after + 1..)?.take(limit) {
            let (id, seq) = entry?;
            out.push((id.value(), seq.value()));
        }
        Ok(out)
    }

    /// Seqs of stored events from `from` on, up to `limit` (for full rebuilds).
    pub fn seqs_from_blocking(&self, from: u64, limit: usize) -> Result<Vec<u64>, StoreError> {
        let txn = self.db.get()?.begin_read()?;
        let events = txn.open_table(tables::EVENTS)?;
        let mut out = Vec::new();
        for entry in events.range(from..)?.take(limit) {
            out.push(entry?.0.value());
        }
        Ok(out)
    }

    /// The applied events after seq `after`, in seq order, with their bodies: up to
    /// `limit` of them, stopping once `max_bytes` of bodies are read. Retired
    /// and removed events leave gaps, which are skipped. Events acknowledged but not
    /// yet applied are not here yet (the applier follows within milliseconds); the
    /// applier writes in seq order, so what is here is never missing an earlier seq
    /// that will come later.
    pub async fn events_after(
        &self,
        after: u64,
        limit: usize,
        max_bytes: usize,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        self.read(move |db| {
            let txn = db.begin_read()?;
            let events = txn.open_table(tables::EVENTS)?;
            let mut out = Vec::new();
            let mut bytes = 0;
            for entry in events.range(after.saturating_add(1)..)? {
                if out.len() >= limit || (bytes >= max_bytes && !out.is_empty()) {
                    break;
                }
                let seq = entry?.0.value();
                if let Some(event) = load_event(&txn, seq)? {
                    bytes += event.body.len();
                    out.push(event);
                }
            }
            Ok(out)
        })
        .await
    }

    /// Metadata of one event, without its payload. Blocking.
    pub fn record_blocking(&self, seq: u64) -> Result<Option<EventRecord>, StoreError> {
        let txn = self.db.get()?.begin_read()?;
        let events = txn.open_table(tables::EVENTS)?;
        Ok(events
            .get(seq)?
            .map(|b| codec::decode(b.value()))
            .transpose()?)
    }

    /// Metadata of the events with seq in `from..=to`, in order. Blocking.
    pub fn records_blocking(
        &self,
        from: u64,
        to: u64,
    ) -> Result<Vec<(u64, EventRecord)>, StoreError> {
        let txn = self.db.get()?.begin_read()?;
        let events = txn.open_table(tables::EVENTS)?;
        let mut out = Vec::new();
        for entry in events.range(from..=to)? {
            let (seq, bytes) = entry?;
            out.push((seq.value(), codec::decode(bytes.value())?));
        }
        Ok(out)
    }

    /// The highest stored seq (0 when empty). Blocking.
    pub fn max_seq_blocking(&self) -> Result<u64, StoreError> {
        let txn = self.db.get()?.begin_read()?;
        let events = txn.open_table(tables::EVENTS)?;
        Ok(events.last()?.map_or(0, |(seq, _)| seq.value()))
    }

    /// A [`SeqReader`] over what is committed now. Blocking.
    pub fn seq_reader_blocking(&self) -> Result<SeqReader, StoreError> {
        Ok(SeqReader {
            txn: self.db.get()?.begin_read()?,
        })
    }

    /// [`Store::get_seq`] for callers already off the async executor.
    pub fn get_seq_blocking(&self, seq: u64) -> Result<Option<StoredEvent>, StoreError> {
        // The tail first: see `tail` for why the order matters.
        if let Some(event) = self.tail.by_seq(seq)? {
            return Ok(Some(event));
        }
        load_event(&self.db.get()?.begin_read()?, seq)
    }

    /// The last committed change id.
    pub fn last_change(&self) -> u64 {
        *self.committed.borrow()
    }

    /// The event stored under this delivery id, with headers and body.
    /// Finds every acknowledged delivery, applied or still only in the log.
    pub async fn get(&self, delivery_id: String) -> Result<Option<StoredEvent>, StoreError> {
        // The tail first (see `tail` for why the order matters); it answers even
        // while the database is being reopened.
        if let Some(event) = self.tail.by_id(&delivery_id)? {
            return Ok(Some(event));
        }
        self.read(move |db| {
            let txn = db.begin_read()?;
            match seq_of(&txn, &delivery_id)? {
                Some(seq) => load_event(&txn, seq),
                None => Ok(None),
            }
        })
        .await
    }

    /// Which of these delivery ids are stored (acknowledged: applied or still only in
    /// the log), without reading their events.
    pub async fn stored_ids(
        &self,
        mut ids: Vec<String>,
    ) -> Result<std::collections::HashSet<String>, StoreError> {
        // The tail first, then redb (see `tail`).
        let mut found: std::collections::HashSet<String> = std::collections::HashSet::new();
        ids.retain(|id| match self.tail.contains(id) {
            true => {
                found.insert(id.clone());
                false
            }
            false => true,
        });
        self.read(move |db| {
            let txn = db.begin_read()?;
            let deliveries = txn.open_table(tables::DELIVERIES)?;
            for id in ids {
                if deliveries.get(id.as_str())?.is_some() {
                    found.insert(id);
                }
            }
            Ok(found)
        })
        .await
    }

    /// The newest `limit` applied events' repository, organization and headers,
    /// newest first: what names the hooks they came through.
    pub async fn recent_headers(&self, limit: usize) -> Result<Vec<StoredHeaders>, StoreError> {
        self.read(move |db| {
            let txn = db.begin_read()?;
            let events = txn.open_table(tables::EVENTS)?;
            let headers = txn.open_table(tables::HEADERS)?;
            let mut out = Vec::new();
            for entry in events.iter()?.rev().take(limit) {
                let (seq, record) = entry?;
                let record: EventRecord = codec::decode(record.value())?;
                let kept: Vec<(String, String)> = headers
                    .get(seq.value())?
                    .map(|b| codec::decode(b.value()))
                    .transpose()?
                    .unwrap_or_default();
                out.push(StoredHeaders {
                    repository: record.origin.repository,
                    organization: record.origin.organization,
                    headers: kept,
                });
            }
            Ok(out)
        })
        .await
    }

    pub async fn get_seq(&self, seq: u64) -> Result<Option<StoredEvent>, StoreError> {
        if let Some(event) = self.tail.by_seq(seq)? {
            return Ok(Some(event));
        }
        self.read(move |db| load_event(&db.begin_read()?, seq))
            .await
    }

    /// The oldest pending events, up to `limit`.
    pub async fn pending(&self, limit: usize) -> Result<Vec<u64>, StoreError> {
        self.read(move |db| {
            oldest_in(
                &db.begin_read()?,
                index::STATUS,
                Status::Pending.as_str(),
                limit,
            )
        })
        .await
    }

    /// Every failed event, oldest first.
    pub async fn failed(&self) -> Result<Vec<u64>, StoreError> {
        self.read(|db| {
            oldest_in(
                &db.begin_read()?,
                index::STATUS,
                Status::Failed.as_str(),
                usize::MAX,
            )
        })
        .await
    }

    /// Failed events whose retry is due at `now_ms`, and when the next one after
    /// those falls due.
    pub async fn due_retries(
        &self,
        now_ms: i64,
        limit: usize,
    ) -> Result<(Vec<u64>, Option<i64>), StoreError> {
        self.read(move |db| {
            let txn = db.begin_read()?;
            let queue = txn.open_table(tables::RETRY_QUEUE)?;
            let mut due = Vec::new();
            for entry in queue.iter()? {
                let (at, seq) = entry?.0.value();
                if at > now_ms || due.len() >= limit {
                    return Ok((due, Some(at)));
                }
                due.push(seq);
            }
            Ok((due, None))
        })
        .await
    }

    pub async fn health_facts(&self, since_ms: i64) -> Result<HealthFacts, StoreError> {
        let last_failure = self.write_health.last_failure_ms();
        let writes_failing = self.write_health.failing();
        self.read(move |db| {
            let txn = db.begin_read()?;
            let counts = txn.open_table(tables::INDEX_COUNTS)?;
            let count = |status: Status| -> Result<u64, StoreError> {
                Ok(counts
                    .get((index::STATUS, status.as_str()))?
                    .map_or(0, |c| c.value()))
            };
            let index_table = txn.open_table(tables::EVENT_INDEX)?;
            let pending = Status::Pending.as_str();
            let oldest_pending = index_table
                .range(
                    (index::STATUS, pending, i64::MIN, 0u64)
                        ..=(index::STATUS, pending, i64::MAX, u64::MAX),
                )?
                .next()
                .transpose()?
                .map(|(key, _)| key.value().2);
            let mut all = index_table
                .range((index::ALL, "", i64::MIN, 0u64)..=(index::ALL, "", i64::MAX, u64::MAX))?;
            let last_event = all.next_back().transpose()?.map(|(key, _)| key.value().2);
            let events_since = index_table
                .range((index::ALL, "", since_ms, 0u64)..=(index::ALL, "", i64::MAX, u64::MAX))?
                .take(RECENT_CAP)
                .count() as u64;
            Ok(HealthFacts {
                total_events: txn.open_table(tables::EVENTS)?.len()? - count(Status::Duplicate)?,
                pending: count(Status::Pending)?,
                failed: count(Status::Failed)?,
                oldest_pending_ms: oldest_pending,
                last_event_ms: last_event,
                events_since,
                last_write_failure_ms: last_failure,
                writes_failing,
            })
        })
        .await
    }
}
