//! `hookvault export` and `hookvault import`: stored deliveries as NDJSON, one a line
//! (headers, payload, receive time, status), streamed in store order with constant
//! memory. Import deduplicates by delivery id, reports a bad line by its number and
//! skips it whole, and processes what it imported like fresh deliveries.

use std::collections::BTreeMap;
use std::io::{BufRead, Write};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::domain::{
    Delivery, DeliveryId, EventFields, EventType, PayloadEncoding, Visibility, timestamp,
};
use crate::ingest;
use crate::store::{DuplicateReason, EventRecord, IngestOutcome, Status, Store, StoreError};

/// Events read from the store per step of an export.
const EXPORT_STEP: u64 = 1_000;
/// Deliveries stored together (one group commit) during an import.
const IMPORT_BATCH: usize = 256;

/// One exported delivery.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Line {
    pub delivery_id: String,
    pub event: String,
    pub received_at: String,
    pub status: String,
    pub content_type: String,
    pub headers: BTreeMap<String, String>,
    pub payload: Value,
    /// The body as received, when it is not the compact form of `payload` (pretty
    /// printed JSON, form encoding), so an import stores the same bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub raw_body: Option<String>,
    /// A content duplicate's original delivery: an import stores the line as its
    /// duplicate again (when that delivery is in the store), not as a new event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duplicate_of: Option<String>,
}

/// Which events to export (the events API's filters).
#[derive(Debug, Clone, Default)]
pub struct ExportFilter {
    pub repository: Option<String>,
    pub event: Option<String>,
    pub action: Option<String>,
    /// Any of these; empty: every status.
    pub statuses: Vec<Status>,
    pub start_ms: Option<i64>,
    pub end_ms: Option<i64>,
    /// Only the events the caller may see.
    pub visibility: Visibility,
}

impl ExportFilter {
    fn matches(&self, record: &EventRecord) -> bool {
        let same = |filter: &Option<String>, value: Option<&String>| {
            filter.as_ref().is_none_or(|f| value == Some(f))
        };
        same(&self.repository, record.origin.repository.as_ref())
            && same(&self.event, Some(&record.origin.event))
            && same(&self.action, record.origin.action.as_ref())
            && (self.statuses.is_empty() || self.statuses.contains(&record.status))
            && self.start_ms.is_none_or(|t| record.received_at_ms >= t)
            && self.end_ms.is_none_or(|t| record.received_at_ms <= t)
            && record.visible_to(&self.visibility)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TransferError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
}

/// Writes every matching event, oldest first; returns how many. Blocking.
pub fn export(
    store: &Store,
    filter: &ExportFilter,
    out: &mut impl Write,
) -> Result<u64, TransferError> {
    let last = store.max_seq_blocking()?;
    let mut written = 0;
    let mut from = 1;
    while from <= last {
        for (seq, record) in store.records_blocking(from, from + EXPORT_STEP - 1)? {
            if !filter.matches(&record) {
                continue;
            }
            let Some(stored) = store.get_seq_blocking(seq)? else {
                continue;
            };
            let payload = ingest::decode_payload(stored.record.encoding, &stored.body)
                .map_err(|e| StoreError::Corrupt(format!("payload of event {seq}: {e}")))?;
            let compact = serde_json::to_vec(&payload).expect("a Value serializes");
            let raw_body = (compact != stored.body)
                .then(|| String::from_utf8_lossy(&stored.body).into_owned());
            let line = Line {
                delivery_id: record.origin.delivery_id.clone(),
                event: record.origin.event.clone(),
                received_at: timestamp::to_rfc3339(record.received_at_ms),
                status: record.status.as_str().to_owned(),
                content_type: content_type(record.encoding).to_owned(),
                headers: stored.headers.into_iter().collect(),
                payload,
                raw_body,
                duplicate_of: stored.duplicate_of,
            };
            serde_json::to_writer(&mut *out, &line).map_err(std::io::Error::from)?;
            out.write_all(b"\n")?;
            written += 1;
        }
        from += EXPORT_STEP;
    }
    out.flush()?;
    Ok(written)
}

fn content_type(encoding: PayloadEncoding) -> &'static str {
    match encoding {
        PayloadEncoding::Json => "application/json",
        PayloadEncoding::Form => "application/x-www-form-urlencoded",
    }
}

/// A line turned into a delivery (and the delivery it duplicates, if it is a
/// content duplicate), or why it cannot be.
fn delivery_of(line: &str) -> Result<(Delivery, Option<String>), String> {
    let line: Line = serde_json::from_str(line).map_err(|e| format!("not an export line: {e}"))?;
    let id = DeliveryId::parse(&line.delivery_id).map_err(|e| e.0)?;
    let event = EventType::parse(&line.event).map_err(|e| e.0)?;
    let received_at_ms = timestamp::parse(&line.received_at)
        .ok_or_else(|| format!("receivedAt {:?} is not a time", line.received_at))?;
    let encoding = if line.content_type == content_type(PayloadEncoding::Form) {
        PayloadEncoding::Form
    } else {
        PayloadEncoding::Json
    };
    let body = match line.raw_body {
        Some(raw) => raw.into_bytes(),
        None => serde_json::to_vec(&line.payload).expect("a Value serializes"),
    };
    let payload = ingest::decode_payload(encoding, &body).map_err(|e| e.to_string())?;
    let delivery = Delivery {
        hook_id: line
            .headers
            .get("x-github-hook-id")
            .and_then(|h| h.parse().ok()),
        headers: line.headers.into_iter().collect(),
        fields: EventFields::extract(&payload),
        id,
        event,
        encoding,
        body: body.into(),
        // Imports deduplicate by delivery id only: every exported event was distinct.
        content_key: None,
        received_at_ms,
        test: false,
    };
    Ok((delivery, line.duplicate_of))
}

#[derive(Debug, Default)]
pub struct ImportReport {
    pub imported: u64,
    pub duplicates: u64,
    /// (line number, reason) of every skipped line.
    pub skipped: Vec<(u64, String)>,
}

/// Stores every good line of `input`; calls `progress` after each batch.
pub async fn import(
    store: &Store,
    input: impl BufRead,
    mut progress: impl FnMut(&ImportReport),
) -> Result<ImportReport, TransferError> {
    let mut report = ImportReport::default();
    let mut batch = Vec::with_capacity(IMPORT_BATCH);
    for (index, line) in input.lines().enumerate() {
        let line = line?;
        let number = index as u64 + 1;
        if line.trim().is_empty() {
            continue;
        }
        match delivery_of(&line) {
            Ok(delivery) => {
                // A batch's deliveries are sent to the log writer concurrently; a
                // duplicate waits until what came before it (its original) is
                // stored, so the writer never meets it first and misses the link.
                if delivery.1.is_some() && !batch.is_empty() {
                    store_batch(store, &mut batch, &mut report).await?;
                }
                batch.push(delivery);
            }
            Err(reason) => report.skipped.push((number, reason)),
        }
        if batch.len() == IMPORT_BATCH {
            store_batch(store, &mut batch, &mut report).await?;
            progress(&report);
        }
    }
    store_batch(store, &mut batch, &mut report).await?;
    progress(&report);
    Ok(report)
}

async fn store_batch(
    store: &Store,
    batch: &mut Vec<(Delivery, Option<String>)>,
    report: &mut ImportReport,
) -> Result<(), TransferError> {
    let prepared = batch
        .drain(..)
        .map(|(delivery, duplicate_of)| {
            let mut event = Store::prepare(delivery)?;
            event.duplicate_of = duplicate_of;
            Ok(event)
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
    let outcomes =
        futures::future::join_all(prepared.into_iter().map(|e| store.ingest_prepared(e))).await;
    for outcome in outcomes {
        match outcome? {
            // A content duplicate is stored too, as the duplicate it was.
            IngestOutcome::Stored { .. }
            | IngestOutcome::Duplicate {
                reason: DuplicateReason::Content { .. },
                ..
            } => report.imported += 1,
            IngestOutcome::Duplicate { .. } => report.duplicates += 1,
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_lines_say_what_is_wrong() {
        assert!(delivery_of("{").unwrap_err().contains("not an export line"));
        let line = r#"{"deliveryId":"a/b","event":"push","receivedAt":"2024-01-01T00:00:00Z","status":"processed","contentType":"application/json","headers":{},"payload":{}}"#;
        assert!(delivery_of(line).unwrap_err().contains("delivery id"));
        let line = r#"{"deliveryId":"a","event":"push","receivedAt":"soon","status":"processed","contentType":"application/json","headers":{},"payload":{}}"#;
        assert!(delivery_of(line).unwrap_err().contains("receivedAt"));
        let line = r#"{"deliveryId":"a","event":"push","receivedAt":"2024-01-01T00:00:00Z","status":"processed","contentType":"application/json","headers":{},"payload":[1]}"#;
        assert!(delivery_of(line).unwrap_err().contains("object"));
    }
}
