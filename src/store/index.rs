//! The secondary indexes: which `(field, value)` entries an event has in
//! `EVENT_INDEX`, and how they are added and removed together with their counts.

use std::collections::BTreeMap;

use redb::{ReadableTable, Table, WriteTransaction};

use super::{EventRecord, Status, StoreError, tables};

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
        (EVENT, record.origin.event.as_str()),
        (STATUS, record.status.as_str()),
    ];
    if let Some(repository) = &record.origin.repository {
        entries.push((REPOSITORY, repository));
    }
    if let Some(action) = &record.origin.action {
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

    /// Adds (`present`) or removes one entry of event `seq`, counting it only if that
    /// changed the index.
    fn set(
        &mut self,
        (field, value): (&'static str, &str),
        received_at_ms: i64,
        seq: u64,
        present: bool,
    ) -> Result<(), StoreError> {
        let key = (field, value, received_at_ms, seq);
        let changed = if present {
            self.index.insert(key, ())?.is_none()
        } else {
            self.index.remove(key)?.is_some()
        };
        if changed {
            self.count(field, value, if present { 1 } else { -1 });
        }
        Ok(())
    }

    /// Adds (`present`) or removes every index entry of `record`, stored as `seq`.
    pub fn set_all(
        &mut self,
        record: &EventRecord,
        seq: u64,
        present: bool,
    ) -> Result<(), StoreError> {
        for entry in entries(record) {
            self.set(entry, record.received_at_ms, seq, present)?;
        }
        Ok(())
    }

    /// Moves the status entry of event `seq` from `old` to `new`.
    pub fn change_status(
        &mut self,
        old: Status,
        new: Status,
        received_at_ms: i64,
        seq: u64,
    ) -> Result<(), StoreError> {
        self.set((STATUS, old.as_str()), received_at_ms, seq, false)?;
        self.set((STATUS, new.as_str()), received_at_ms, seq, true)
    }
}
