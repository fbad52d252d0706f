//! Forwarding's durable state, kept opaque: the targets made through the API, and
//! the deliveries a target never took (with their attempts). What the bytes mean is
//! `forward`'s business; the store only keeps them, and each target's cursor in
//! `cursors_v1` under [`cursor_name`], so one commit changes a target and its cursor
//! together. Also the read a target's worker follows the store with.

use redb::{ReadableDatabase, ReadableTable, WriteTransaction};
use tokio::sync::oneshot;

use super::request::WriteRequest;
use super::tables::{
    CURSORS, EVENTS, FORWARD_FAILED, FORWARD_TARGETS, HEADERS, PAYLOADS, WriteTables,
};
use super::{EventRecord, Store, StoreError, StoredEvent, codec, compression};

/// Events one read looks at, at most, whether a target sends them or not: a target
/// whose filters match little does not hold a reader for long.
const SCAN: usize = 8192;

/// What a target's worker read: the events it sends, and how far it looked.
pub struct ForwardBatch {
    /// Every applied event up to here was looked at.
    pub last: u64,
    pub events: Vec<StoredEvent>,
    /// It stopped at a limit: more may follow at once.
    pub more: bool,
}

/// A change to forwarding's state. Each batch commits durably before it is answered;
/// in cluster mode it goes through the cluster's log, so every node holds the same
/// targets, cursors and failed deliveries, and a node taking over forwarding
/// resumes where the last one left.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub enum ForwardingChange {
    /// Creates or replaces a target made through the API.
    PutTarget { name: String, spec: Vec<u8> },
    /// Forgets a target: its spec, cursor and failed deliveries.
    DeleteTarget { name: String },
    /// Sets a target's cursor (where a new target starts).
    StartAt { name: String, seq: u64 },
    /// Moves a target's cursor forward to `seq`: never back (a late save from a node
    /// that ran the target before changes nothing), and not for a target deleted.
    Saved { name: String, seq: u64 },
    /// A delivery the target did not take (or a new attempt at one); not kept for
    /// a target deleted meanwhile.
    Failed {
        target: String,
        seq: u64,
        record: Vec<u8>,
    },
    /// Failed deliveries the target took at last.
    Cleared { target: String, seqs: Vec<u64> },
    /// Cluster mode: failed deliveries to send again, asked of whichever node runs
    /// the target. Changes nothing stored.
    Resend { target: String, seqs: Vec<u64> },
}

/// A target's key in `cursors_v1`.
pub fn cursor_name(target: &str) -> String {
    format!("forward/{target}")
}

pub(super) fn apply(
    txn: &WriteTransaction,
    t: &mut WriteTables,
    changes: &[ForwardingChange],
) -> Result<(), StoreError> {
    let mut targets = txn.open_table(FORWARD_TARGETS)?;
    let mut failed = txn.open_table(FORWARD_FAILED)?;
    for change in changes {
        match change {
            ForwardingChange::PutTarget { name, spec } => {
                targets.insert(name.as_str(), spec.as_slice())?;
            }
            ForwardingChange::DeleteTarget { name } => {
                targets.remove(name.as_str())?;
                t.cursors.remove(cursor_name(name).as_str())?;
                failed.retain_in((name.as_str(), 0)..=(name.as_str(), u64::MAX), |_, _| false)?;
            }
            ForwardingChange::StartAt { name, seq } => {
                t.cursors.insert(cursor_name(name).as_str(), *seq)?;
            }
            ForwardingChange::Saved { name, seq } => {
                let key = cursor_name(name);
                let saved = t.cursors.get(key.as_str())?.map(|v| v.value());
                if saved.is_some_and(|saved| saved < *seq) {
                    t.cursors.insert(key.as_str(), *seq)?;
                }
            }
            ForwardingChange::Failed {
                target,
                seq,
                record,
            } => {
                if t.cursors.get(cursor_name(target).as_str())?.is_some() {
                    failed.insert((target.as_str(), *seq), record.as_slice())?;
                }
            }
            ForwardingChange::Cleared { target, seqs } => {
                for seq in seqs {
                    failed.remove((target.as_str(), *seq))?;
                }
            }
            ForwardingChange::Resend { .. } => {}
        }
    }
    Ok(())
}

/// A target made through the API, as stored.
pub struct SavedTarget {
    pub name: String,
    pub spec: Vec<u8>,
}

impl Store {
    /// Commits forwarding changes durably.
    pub async fn change_forwarding(
        &self,
        changes: Vec<ForwardingChange>,
    ) -> Result<(), StoreError> {
        if let Some(log) = self.cluster_log()? {
            return log
                .change(super::LoggedChange::Forwarding(changes))
                .await
                .map(drop);
        }
        let (reply, answer) = oneshot::channel();
        self.send(WriteRequest::Forwarding { changes, reply })
            .await?;
        answer.await.map_err(|_| StoreError::Closed)?
    }

    /// Where forwarding keeps its files beside the database: `<data>/forward/`.
    pub fn forwarding_dir(&self) -> std::path::PathBuf {
        let data = self.db.path().parent().unwrap_or(std::path::Path::new("."));
        data.join("forward")
    }

    /// The applied events after seq `after` that `wanted` picks, with their headers
    /// and bodies, in seq order: up to `limit` of them, stopping once `max_bytes` of
    /// bodies are read. The others are looked at, not read: their payloads stay
    /// compressed. Like [`Store::events_after`], with the tables opened once a read.
    pub async fn events_to_forward(
        &self,
        after: u64,
        limit: usize,
        max_bytes: usize,
        wanted: impl Fn(&EventRecord) -> bool + Send + 'static,
    ) -> Result<ForwardBatch, StoreError> {
        self.read(move |db| {
            let txn = db.begin_read()?;
            let records = txn.open_table(EVENTS)?;
            let headers = txn.open_table(HEADERS)?;
            let payloads = txn.open_table(PAYLOADS)?;
            let mut batch = ForwardBatch {
                last: after,
                events: Vec::new(),
                more: false,
            };
            let mut bytes = 0;
            for (scanned, entry) in records.range(after.saturating_add(1)..)?.enumerate() {
                if batch.events.len() >= limit || bytes >= max_bytes || scanned >= SCAN {
                    batch.more = true;
                    break;
                }
                let (seq, record) = entry?;
                let seq = seq.value();
                let record: EventRecord = codec::decode(record.value())?;
                batch.last = seq;
                if !wanted(&record) {
                    continue;
                }
                let headers = headers
                    .get(seq)?
                    .map(|b| codec::decode(b.value()))
                    .transpose()?
                    .unwrap_or_default();
                let compressed = payloads
                    .get(seq)?
                    .ok_or_else(|| StoreError::Corrupt(format!("event {seq} has no payload")))?;
                let body = compression::decompress(compressed.value(), record.body_len as usize)
                    .map_err(|e| StoreError::Corrupt(format!("payload of event {seq}: {e}")))?;
                bytes += body.len();
                batch.events.push(StoredEvent {
                    seq,
                    record,
                    headers,
                    body,
                    duplicate_of: None,
                });
            }
            Ok(batch)
        })
        .await
    }

    /// The targets made through the API.
    pub async fn forwarding_targets(&self) -> Result<Vec<SavedTarget>, StoreError> {
        self.read(|db| {
            let txn = db.begin_read()?;
            let targets = match txn.open_table(FORWARD_TARGETS) {
                Ok(table) => table,
                Err(redb::TableError::TableDoesNotExist(_)) => return Ok(Vec::new()),
                Err(e) => return Err(e.into()),
            };
            targets
                .iter()?
                .map(|entry| {
                    let (name, spec) = entry?;
                    Ok(SavedTarget {
                        name: name.value().to_owned(),
                        spec: spec.value().to_vec(),
                    })
                })
                .collect()
        })
        .await
    }

    /// A target's cursor, if it has one.
    pub async fn forwarding_cursor(&self, target: &str) -> Result<Option<u64>, StoreError> {
        let name = cursor_name(target);
        self.read(move |db| {
            let txn = db.begin_read()?;
            let cursors = txn.open_table(CURSORS)?;
            Ok(cursors.get(name.as_str())?.map(|v| v.value()))
        })
        .await
    }

    /// Up to `limit` of a target's failed deliveries with seq in `from..=to`, oldest
    /// first, and how many it has in all.
    pub async fn forwarding_failed(
        &self,
        target: &str,
        from: u64,
        to: u64,
        limit: usize,
    ) -> Result<(Vec<(u64, Vec<u8>)>, u64), StoreError> {
        let target = target.to_owned();
        self.read(move |db| {
            let txn = db.begin_read()?;
            let failed = match txn.open_table(FORWARD_FAILED) {
                Ok(table) => table,
                Err(redb::TableError::TableDoesNotExist(_)) => return Ok((Vec::new(), 0)),
                Err(e) => return Err(e.into()),
            };
            let all = (target.as_str(), 0)..=(target.as_str(), u64::MAX);
            let total = failed.range(all)?.count() as u64;
            let mut out = Vec::new();
            for entry in failed.range((target.as_str(), from)..=(target.as_str(), to))? {
                if out.len() >= limit {
                    break;
                }
                let (key, record) = entry?;
                out.push((key.value().1, record.value().to_vec()));
            }
            Ok((out, total))
        })
        .await
    }
}
