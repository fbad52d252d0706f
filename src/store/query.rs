//! Listing events newest first from the secondary indexes. A query walks the one
//! index whose entry count is smallest among its filters, within the date range, and
//! checks the other filters on each record it meets: never a scan of every event
//! unless no filter is given, and then only the page asked for is read.

use redb::{ReadTransaction, ReadableTableMetadata};

use super::index;
use super::tables::{EVENT_INDEX, EVENTS, INDEX_COUNTS};
use super::{EventRecord, Status, StoreError, codec};
use crate::domain::Visibility;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventQuery {
    pub repository: Option<String>,
    pub event: Option<String>,
    pub action: Option<String>,
    /// Statuses accepted; empty accepts any.
    pub statuses: Vec<Status>,
    /// Inclusive bounds on the received time, in ms since the epoch.
    pub start_ms: Option<i64>,
    pub end_ms: Option<i64>,
    pub limit: usize,
    pub offset: usize,
    /// Only the events the caller may see.
    pub visibility: Visibility,
}

impl EventQuery {
    fn matches(&self, record: &EventRecord) -> bool {
        let same = |filter: &Option<String>, value: &Option<String>| {
            filter.as_ref().is_none_or(|f| value.as_ref() == Some(f))
        };
        same(&self.repository, &record.origin.repository)
            && self
                .event
                .as_ref()
                .is_none_or(|e| *e == record.origin.event)
            && same(&self.action, &record.origin.action)
            && (self.statuses.is_empty() || self.statuses.contains(&record.status))
            && record.visible_to(&self.visibility)
    }

    /// The `(field, value)` index entries this query could walk.
    fn candidate_indexes(&self) -> Vec<(&'static str, &str)> {
        let mut candidates = Vec::new();
        if let Some(r) = &self.repository {
            candidates.push((index::REPOSITORY, r.as_str()));
        }
        if let Some(e) = &self.event {
            candidates.push((index::EVENT, e.as_str()));
        }
        if let Some(a) = &self.action {
            candidates.push((index::ACTION, a.as_str()));
        }
        if let [status] = self.statuses.as_slice() {
            candidates.push((index::STATUS, status.as_str()));
        }
        candidates
    }

    /// True when walking one index answers the whole query without reading records.
    fn answered_by_one_index(&self) -> bool {
        let status_filters = usize::from(!self.statuses.is_empty());
        let filters = usize::from(self.repository.is_some())
            + usize::from(self.event.is_some())
            + usize::from(self.action.is_some())
            + status_filters;
        self.visibility.is_all() && (filters == 0 || (filters == 1 && self.statuses.len() <= 1))
    }
}

#[derive(Debug, Clone)]
pub struct Page {
    pub events: Vec<(u64, EventRecord)>,
    pub total: u64,
}

pub fn list(txn: &ReadTransaction, query: &EventQuery) -> Result<Page, StoreError> {
    let counts = txn.open_table(INDEX_COUNTS)?;
    let index_table = txn.open_table(EVENT_INDEX)?;
    let events = txn.open_table(EVENTS)?;
    let load = |seq: u64| -> Result<Option<EventRecord>, StoreError> {
        match events.get(seq)? {
            Some(bytes) => Ok(Some(codec::decode(bytes.value())?)),
            None => Ok(None),
        }
    };

    let mut chosen = (index::ALL, "");
    let mut smallest = u64::MAX;
    for (field, value) in query.candidate_indexes() {
        let count = counts.get((field, value))?.map_or(0, |c| c.value());
        if count < smallest {
            smallest = count;
            chosen = (field, value);
        }
    }
    let (field, value) = chosen;
    let low = (field, value, query.start_ms.unwrap_or(i64::MIN), 0u64);
    let high = (field, value, query.end_ms.unwrap_or(i64::MAX), u64::MAX);
    let mut entries = index_table.range(low..=high)?.rev();
    let page_end = query.offset.saturating_add(query.limit);
    let mut page = Vec::with_capacity(query.limit.min(1000));

    let by_index_alone = query.answered_by_one_index();
    if by_index_alone && query.start_ms.is_none() && query.end_ms.is_none() {
        // The count table already knows the total: read only the page.
        let total = if field == index::ALL {
            events.len()?
        } else {
            smallest
        };
        for entry in entries.by_ref().skip(query.offset).take(query.limit) {
            let seq = entry?.0.value().3;
            if let Some(record) = load(seq)? {
                page.push((seq, record));
            }
        }
        return Ok(Page {
            events: page,
            total,
        });
    }

    let mut total = 0u64;
    for entry in entries {
        let seq = entry?.0.value().3;
        let in_page = (query.offset..page_end).contains(&(total as usize));
        if by_index_alone {
            if in_page && let Some(record) = load(seq)? {
                page.push((seq, record));
            }
            total += 1;
        } else if let Some(record) = load(seq)?
            && query.matches(&record)
        {
            if in_page {
                page.push((seq, record));
            }
            total += 1;
        }
    }
    Ok(Page {
        events: page,
        total,
    })
}
