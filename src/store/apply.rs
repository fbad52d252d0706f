//! What one write transaction does with a batch of requests: applies logged
//! deliveries (idempotently, at the seq the log gave them, recording the log
//! position), status changes, retirements, removals and rejected-log entries, each
//! with its change-log entry. The store writer (`writer`) owns the transactions and
//! their durability; this is what goes in them.

use redb::{Durability, ReadableDatabase, ReadableTable, WriteTransaction};
use tokio::sync::watch;

use super::actions::RowDeltas;
use super::appender::LogEntry;
use super::events;
use super::forwarding;
use super::rejected;
use super::request::{DuplicateReason, IngestOutcome, Outcome, WriteRequest};
use super::tables::{self, WriteTables, meta};
use super::tokens;
use super::writer::{MAX_BATCH, TWO_PHASE_COMMIT};
use super::{Status, StoreError, codec};

/// Applies every request of the batch; returns their outcomes, the last change id
/// and the Actions hourly rows it changed.
pub(super) fn apply_batch(
    txn: &WriteTransaction,
    batch: &[WriteRequest],
) -> Result<(Vec<Outcome>, u64, RowDeltas), StoreError> {
    let mut t = WriteTables::open(txn)?;
    let mut changes = ChangeLog::open(&t)?;
    let mut outcomes = Vec::with_capacity(batch.len());
    for request in batch {
        let outcome = match request {
            WriteRequest::Apply {
                entries,
                delivery_duplicates,
                stream_position,
                ..
            } => {
                if *delivery_duplicates > 0 {
                    bump(&mut t, meta::DELIVERY_DUPLICATES, *delivery_duplicates)?;
                }
                for entry in entries {
                    apply_entry(&mut t, &mut changes, entry)?;
                }
                if let Some(position) = stream_position {
                    t.meta.insert(meta::STREAM_APPLIED, *position)?;
                }
                Outcome::Applied
            }
            WriteRequest::Update { update, .. } => {
                let record = events::update_status(&mut t, update)?;
                if record.is_some() {
                    changes.add(&mut t, update.seq)?;
                }
                Outcome::Update(record.map(Box::new))
            }
            WriteRequest::Retire { seqs, .. } => {
                let mut retired = 0;
                for seq in seqs {
                    if events::retire(&mut t, *seq)? {
                        changes.add(&mut t, *seq)?;
                        retired += 1;
                    }
                }
                Outcome::Retire(retired)
            }
            WriteRequest::RemoveTests { seqs, .. } => {
                let mut removed = 0;
                for seq in seqs {
                    if events::remove_test(&mut t, *seq)? {
                        changes.add(&mut t, *seq)?;
                        removed += 1;
                    }
                }
                Outcome::Removed(removed)
            }
            WriteRequest::Reject(entry) => {
                rejected::insert(&mut t, rejected::EdgeLog::Rejected, entry)?;
                Outcome::Rejected
            }
            WriteRequest::Ignore(entry) => {
                rejected::insert(&mut t, rejected::EdgeLog::Ignored, entry)?;
                Outcome::Rejected
            }
            WriteRequest::Cursor { name, seq, .. } => {
                t.cursors.insert(name.as_str(), *seq)?;
                Outcome::Cursor
            }
            WriteRequest::Tokens { change, .. } => Outcome::Tokens(tokens::apply(txn, change)?),
            WriteRequest::Forwarding { changes, .. } => {
                forwarding::apply(txn, &mut t, changes)?;
                Outcome::Forwarding
            }
        };
        outcomes.push(outcome);
    }
    t.flush()?;
    let last_change = changes.finish(&mut t)?;
    Ok((
        outcomes,
        last_change,
        std::mem::take(&mut t.actions.changed_rows),
    ))
}

/// What the log in `dir` holds past the position `db` recorded last.
pub(super) fn logged_after(
    dir: &std::path::Path,
    db: &redb::Database,
) -> Result<Vec<LogEntry>, StoreError> {
    let txn = db.begin_read()?;
    let applied = txn
        .open_table(tables::META)?
        .get(meta::LOG_APPLIED)?
        .map_or(0, |v| v.value());
    crate::log::read_after(dir, applied)
        .map_err(|e| StoreError::Log(e.to_string()))?
        .iter()
        .map(|frame| Ok(codec::decode::<LogEntry>(&frame.payload)?))
        .collect()
}

/// Applies log entries to `db` in one durable transaction (at start, and after a
/// database was reopened); entries already there are skipped.
pub(super) fn write_entries(
    db: &redb::Database,
    entries: &[LogEntry],
    committed: &watch::Sender<u64>,
) -> Result<(), StoreError> {
    for chunk in entries.chunks(MAX_BATCH * 4) {
        let mut txn = db.begin_write()?;
        txn.set_durability(Durability::Immediate)?;
        txn.set_two_phase_commit(TWO_PHASE_COMMIT);
        let last_change = {
            let mut t = WriteTables::open(&txn)?;
            let mut changes = ChangeLog::open(&t)?;
            for entry in chunk {
                apply_entry(&mut t, &mut changes, entry)?;
            }
            t.flush()?;
            changes.finish(&mut t)?
        };
        txn.commit()?;
        if last_change > *committed.borrow() {
            committed.send_replace(last_change);
        }
    }
    Ok(())
}

/// The change log's next id, and what a transaction added to it.
struct ChangeLog {
    next: u64,
    first: u64,
}

impl ChangeLog {
    fn open(t: &WriteTables) -> Result<Self, StoreError> {
        let next = t.meta.get(meta::NEXT_CHANGE)?.map_or(1, |v| v.value());
        Ok(Self { next, first: next })
    }

    /// Records that event `seq` changed.
    fn add(&mut self, t: &mut WriteTables, seq: u64) -> Result<(), StoreError> {
        t.changes.insert(self.next, seq)?;
        self.next += 1;
        Ok(())
    }

    /// Saves the next id; returns the last change id there is.
    fn finish(self, t: &mut WriteTables) -> Result<u64, StoreError> {
        if self.next != self.first {
            t.meta.insert(meta::NEXT_CHANGE, self.next)?;
        }
        Ok(self.next - 1)
    }
}

/// Applies one logged delivery: a new event or a content duplicate, at the seq the
/// log gave it, and records the log position in the same transaction. Idempotent:
/// an entry whose seq is already stored (or retired) is left alone.
fn apply_entry(
    t: &mut WriteTables,
    changes: &mut ChangeLog,
    entry: &LogEntry,
) -> Result<IngestOutcome, StoreError> {
    let seq = entry.seq;
    let applied = t.meta.get(meta::LOG_APPLIED)?.map_or(0, |v| v.value());
    if seq <= applied || t.retired.get(seq)?.is_some() {
        return Ok(IngestOutcome::Stored { seq });
    }
    if let Some(stored) = events::load(t, seq)? {
        // Applied already (from the log, after the database was reopened).
        return Ok(match stored.status {
            Status::Duplicate => IngestOutcome::Duplicate {
                seq,
                reason: DuplicateReason::Content { of: None },
            },
            _ => IngestOutcome::Stored { seq },
        });
    }
    let outcome = match entry.duplicate_of {
        Some(original) => {
            let of = events::insert_content_duplicate(t, seq, entry, original)?;
            bump(t, meta::CONTENT_DUPLICATES, 1)?;
            IngestOutcome::Duplicate {
                seq,
                reason: DuplicateReason::Content { of },
            }
        }
        None => {
            events::insert(t, seq, entry)?;
            IngestOutcome::Stored { seq }
        }
    };
    changes.add(t, seq)?;
    let next_seq = t.meta.get(meta::NEXT_SEQ)?.map_or(1, |v| v.value());
    if seq >= next_seq {
        t.meta.insert(meta::NEXT_SEQ, seq + 1)?;
    }
    t.meta.insert(meta::LOG_APPLIED, seq)?;
    t.meta.insert(meta::ACTIONS_APPLIED, seq)?;
    Ok(outcome)
}

fn bump(t: &mut WriteTables, key: &str, by: u64) -> Result<(), StoreError> {
    let count = t.meta.get(key)?.map_or(0, |v| v.value());
    t.meta.insert(key, count + by)?;
    Ok(())
}
