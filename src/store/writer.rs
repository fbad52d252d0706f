//! The single writer: one thread owns every write transaction and packs all the
//! deliveries waiting in its queue into one durable commit (group commit). Each caller
//! is answered only after that commit has reached the disk.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use redb::{Database, Durability, ReadableTable, WriteTransaction};
use tokio::sync::{mpsc, oneshot, watch};

use super::dedup::ContentWindow;
use super::index::IndexTables;
use super::tables::{self, meta};
use super::{EventRecord, StoreError, codec};
use crate::domain::ContentKey;

/// Most deliveries committed in one transaction. Bounds the time one commit holds
/// the callers of the batch, and the memory of one transaction.
const MAX_BATCH: usize = 1024;

/// A delivery made ready for storage by its caller (encoding and compression happen
/// there, in parallel, so the writer only inserts).
pub struct PreparedEvent {
    pub delivery_id: String,
    pub content_key: Option<ContentKey>,
    pub record: EventRecord,
    pub compressed_body: Vec<u8>,
    pub encoded_headers: Vec<u8>,
}

pub struct WriteRequest {
    pub event: PreparedEvent,
    pub reply: oneshot::Sender<Result<IngestOutcome, StoreError>>,
}

/// What the store did with a delivery. Both variants are durable when returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IngestOutcome {
    Stored { seq: u64 },
    Duplicate { seq: u64, reason: DuplicateReason },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DuplicateReason {
    /// The delivery id is already stored (a redelivery, or a racing copy).
    DeliveryId,
    /// The same content came within the dedup window under another delivery id.
    Content,
}

pub struct Writer {
    pub db: Arc<Database>,
    pub window: ContentWindow,
    /// The highest committed seq: the change feed later stages follow.
    pub committed: watch::Sender<u64>,
}

impl Writer {
    /// Runs until every sender is dropped. Blocking: call on its own thread.
    pub fn run(mut self, mut queue: mpsc::Receiver<WriteRequest>) {
        while let Some(first) = queue.blocking_recv() {
            let mut batch = vec![first];
            while batch.len() < MAX_BATCH {
                match queue.try_recv() {
                    Ok(request) => batch.push(request),
                    Err(_) => break,
                }
            }
            self.commit_batch(batch);
        }
    }

    fn commit_batch(&mut self, batch: Vec<WriteRequest>) {
        let now = Instant::now();
        let result = self.write(&batch, now);
        match result {
            Ok(outcomes) => {
                let mut last_stored = None;
                for (request, outcome) in batch.iter().zip(&outcomes) {
                    if let (IngestOutcome::Stored { seq }, Some(key)) =
                        (outcome, request.event.content_key)
                    {
                        self.window.remember(key, *seq, now);
                    }
                    if let IngestOutcome::Stored { seq } = outcome {
                        last_stored = Some(*seq);
                    }
                }
                if let Some(seq) = last_stored {
                    self.committed.send_replace(seq);
                }
                for (request, outcome) in batch.into_iter().zip(outcomes) {
                    let _ = request.reply.send(Ok(outcome));
                }
            }
            Err(error) => {
                tracing::error!(%error, batch = batch.len(), "group commit failed; deliveries answered with an error");
                for request in batch {
                    let _ = request.reply.send(Err(error.clone()));
                }
            }
        }
    }

    fn write(
        &self,
        batch: &[WriteRequest],
        now: Instant,
    ) -> Result<Vec<IngestOutcome>, StoreError> {
        let mut txn = self.db.begin_write()?;
        txn.set_durability(Durability::Immediate)?;
        let outcomes = self.insert_batch(&txn, batch, now)?;
        let inserted = now.elapsed();
        txn.commit()?;
        tracing::debug!(
            batch = batch.len(),
            insert_us = inserted.as_micros() as u64,
            commit_us = (now.elapsed() - inserted).as_micros() as u64,
            "group commit"
        );
        Ok(outcomes)
    }

    fn insert_batch(
        &self,
        txn: &WriteTransaction,
        batch: &[WriteRequest],
        now: Instant,
    ) -> Result<Vec<IngestOutcome>, StoreError> {
        let mut meta_table = txn.open_table(tables::META)?;
        let mut events = txn.open_table(tables::EVENTS)?;
        let mut payloads = txn.open_table(tables::PAYLOADS)?;
        let mut headers = txn.open_table(tables::HEADERS)?;
        let mut deliveries = txn.open_table(tables::DELIVERIES)?;
        let mut content_duplicates = txn.open_table(tables::CONTENT_DUPLICATES)?;
        let mut index = IndexTables {
            index: txn.open_table(tables::EVENT_INDEX)?,
            counts: txn.open_table(tables::INDEX_COUNTS)?,
        };

        let mut next_seq = meta_table.get(meta::NEXT_SEQ)?.map_or(1, |v| v.value());
        let mut delivery_dups = 0;
        let mut content_dups = 0;
        // Keys stored earlier in this same batch: not in the window until the commit.
        let mut batch_keys: HashMap<ContentKey, u64> = HashMap::new();
        let mut outcomes = Vec::with_capacity(batch.len());

        for WriteRequest { event, .. } in batch {
            let id = event.delivery_id.as_str();
            let known = match deliveries.get(id)? {
                Some(seq) => Some(seq.value()),
                None => content_duplicates.get(id)?.map(|seq| seq.value()),
            };
            if let Some(seq) = known {
                delivery_dups += 1;
                outcomes.push(IngestOutcome::Duplicate {
                    seq,
                    reason: DuplicateReason::DeliveryId,
                });
                continue;
            }

            let same_content = event.content_key.and_then(|key| {
                batch_keys
                    .get(&key)
                    .copied()
                    .or_else(|| self.window.lookup(&key, now))
            });
            if let Some(seq) = same_content {
                content_duplicates.insert(id, seq)?;
                let original = events
                    .get(seq)?
                    .map(|bytes| codec::decode::<EventRecord>(bytes.value()))
                    .transpose()?;
                if let Some(mut original) = original {
                    original.content_duplicates += 1;
                    events.insert(seq, codec::encode(&original).as_slice())?;
                }
                content_dups += 1;
                outcomes.push(IngestOutcome::Duplicate {
                    seq,
                    reason: DuplicateReason::Content,
                });
                continue;
            }

            let seq = next_seq;
            next_seq += 1;
            events.insert(seq, codec::encode(&event.record).as_slice())?;
            payloads.insert(seq, event.compressed_body.as_slice())?;
            headers.insert(seq, event.encoded_headers.as_slice())?;
            deliveries.insert(id, seq)?;
            index.add_all(&event.record, seq)?;
            if let Some(key) = event.content_key.filter(|_| self.window.is_enabled()) {
                batch_keys.insert(key, seq);
            }
            outcomes.push(IngestOutcome::Stored { seq });
        }

        meta_table.insert(meta::NEXT_SEQ, next_seq)?;
        for (key, added) in [
            (meta::DELIVERY_DUPLICATES, delivery_dups),
            (meta::CONTENT_DUPLICATES, content_dups),
        ] {
            if added > 0 {
                let count = meta_table.get(key)?.map_or(0, |v| v.value());
                meta_table.insert(key, count + added)?;
            }
        }
        Ok(outcomes)
    }
}
