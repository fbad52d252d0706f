//! The secondary indexes: which `(field, value)` entries an event has in
//! `EVENT_INDEX`, and how they are added and removed together with their counts.

use redb::{ReadableTable, Table};

use super::{EventRecord, StoreError};

pub const ALL: &str = "all";
pub const REPOSITORY: &str = "repository";
pub const EVENT: &str = "event";
pub const ACTION: &str = "action";
pub const STATUS: &str = "status";

/// Every index entry of a record: one per indexed field that has a value, plus the
/// `all` entry that orders every event by time.
pub fn entries(record: &EventRecord) -> Vec<(&'static str, &str)> {
    let mut entries = vec![
        (ALL, ""),
        (EVENT, record.event.as_str()),
        (STATUS, record.status.as_str()),
    ];
    if let Some(repository) = &record.repository {
        entries.push((REPOSITORY, repository));
    }
    if let Some(action) = &record.action {
        entries.push((ACTION, action));
    }
    entries
}

pub struct IndexTables<'txn> {
    pub index: Table<'txn, (&'static str, &'static str, i64, u64), ()>,
    pub counts: Table<'txn, (&'static str, &'static str), u64>,
}

impl IndexTables<'_> {
    pub fn add(
        &mut self,
        field: &str,
        value: &str,
        received_at_ms: i64,
        seq: u64,
    ) -> Result<(), StoreError> {
        self.index.insert((field, value, received_at_ms, seq), ())?;
        let count = self.counts.get((field, value))?.map_or(0, |c| c.value());
        self.counts.insert((field, value), count + 1)?;
        Ok(())
    }

    pub fn add_all(&mut self, record: &EventRecord, seq: u64) -> Result<(), StoreError> {
        for (field, value) in entries(record) {
            self.add(field, value, record.received_at_ms, seq)?;
        }
        Ok(())
    }
}

impl IndexTables<'_> {
    pub fn remove_all(&mut self, record: &EventRecord, seq: u64) -> Result<(), StoreError> {
        for (field, value) in entries(record) {
            self.remove(field, value, record.received_at_ms, seq)?;
        }
        Ok(())
    }

    pub fn remove(
        &mut self,
        field: &str,
        value: &str,
        received_at_ms: i64,
        seq: u64,
    ) -> Result<(), StoreError> {
        if self
            .index
            .remove((field, value, received_at_ms, seq))?
            .is_some()
        {
            let count = self.counts.get((field, value))?.map_or(0, |c| c.value());
            if count <= 1 {
                self.counts.remove((field, value))?;
            } else {
                self.counts.insert((field, value), count - 1)?;
            }
        }
        Ok(())
    }
}
