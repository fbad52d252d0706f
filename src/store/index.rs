//! The secondary indexes: which `(field, value)` entries an event has in
//! `EVENT_INDEX`, and how they are added and removed together with their counts.

use std::collections::BTreeMap;

use redb::{ReadableTable, Table, WriteTransaction};

use super::{EventRecord, StoreError, tables};

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
    index: Table<'txn, (&'static str, &'static str, i64, u64), ()>,
    counts: Table<'txn, (&'static str, &'static str), u64>,
    /// This transaction's changes to the entry counts, written once per
    /// `(field, value)` by [`Self::flush`].
    pending: BTreeMap<(&'static str, String), i64>,
}

impl<'txn> IndexTables<'txn> {
    pub fn open(txn: &'txn WriteTransaction) -> Result<Self, StoreError> {
        Ok(Self {
            index: txn.open_table(tables::EVENT_INDEX)?,
            counts: txn.open_table(tables::INDEX_COUNTS)?,
            pending: BTreeMap::new(),
        })
    }

    fn count(&mut self, field: &'static str, value: &str, delta: i64) {
        *self.pending.entry((field, value.to_owned())).or_default() += delta;
    }

    /// Writes the transaction's count changes; call before the commit.
    pub fn flush(&mut self) -> Result<(), StoreError> {
        for ((field, value), delta) in std::mem::take(&mut self.pending) {
            if delta == 0 {
                continue;
            }
            let key = (field, value.as_str());
            let count = self.counts.get(key)?.map_or(0, |c| c.value());
            match count.checked_add_signed(delta).filter(|&n| n > 0) {
                Some(n) => self.counts.insert(key, n)?,
                None => self.counts.remove(key)?,
            };
        }
        Ok(())
    }

    pub fn add(
        &mut self,
        field: &'static str,
        value: &str,
        received_at_ms: i64,
        seq: u64,
    ) -> Result<(), StoreError> {
        if self
            .index
            .insert((field, value, received_at_ms, seq), ())?
            .is_none()
        {
            self.count(field, value, 1);
        }
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
        field: &'static str,
        value: &str,
        received_at_ms: i64,
        seq: u64,
    ) -> Result<(), StoreError> {
        if self
            .index
            .remove((field, value, received_at_ms, seq))?
            .is_some()
        {
            self.count(field, value, -1);
        }
        Ok(())
    }
}
