//! A consistent copy of a running store, for online backups: every table read in
//! one redb read transaction and written to a new database file, while ingest goes
//! on. redb has no file-level snapshot (its header moves with every commit, so a
//! byte copy of a live file can be torn), and a copy table by table is also
//! compacted: no free pages.

use std::path::Path;

use redb::{Database, Key, ReadTransaction, ReadableDatabase, TableDefinition, TableHandle, Value};

use super::tables::{self, meta};
use super::{Store, StoreError};

/// What a snapshot holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SnapshotFacts {
    /// Highest seq in the copy (0 for an empty store).
    pub last_seq: u64,
    /// Events in the copy (duplicates included, retired ones not).
    pub events: u64,
    pub schema_version: u64,
}

impl Store {
    /// Copies everything committed so far into a new database at `to` (which must
    /// not exist). Reads only: the writers go on meanwhile.
    pub async fn snapshot_to(&self, to: &Path) -> Result<SnapshotFacts, StoreError> {
        let to = to.to_owned();
        self.read(move |db| copy(&db.begin_read()?, &to)).await
    }
}

fn copy(from: &ReadTransaction, to: &Path) -> Result<SnapshotFacts, StoreError> {
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .open(to)?;
    let copied =
        Database::builder().create_with_backend(redb::backends::FileBackend::new(file)?)?;
    let mut names = Vec::new();
    copy_table(from, &copied, tables::META, &mut names)?;
    copy_table(from, &copied, tables::EVENTS, &mut names)?;
    copy_table(from, &copied, tables::PAYLOADS, &mut names)?;
    copy_table(from, &copied, tables::HEADERS, &mut names)?;
    copy_table(from, &copied, tables::DELIVERIES, &mut names)?;
    copy_table(from, &copied, tables::CONTENT_DUPLICATES, &mut names)?;
    copy_table(from, &copied, tables::EVENT_INDEX, &mut names)?;
    copy_table(from, &copied, tables::INDEX_COUNTS, &mut names)?;
    copy_table(from, &copied, tables::CHANGES, &mut names)?;
    copy_table(from, &copied, tables::RETIRED, &mut names)?;
    copy_table(from, &copied, tables::REJECTED, &mut names)?;
    copy_table(from, &copied, tables::IGNORED, &mut names)?;
    copy_table(from, &copied, tables::TOKENS, &mut names)?;
    copy_table(from, &copied, tables::RETRY_QUEUE, &mut names)?;
    copy_table(from, &copied, tables::CURSORS, &mut names)?;
    copy_table(from, &copied, tables::FORWARD_TARGETS, &mut names)?;
    copy_table(from, &copied, tables::FORWARD_FAILED, &mut names)?;
    copy_table(from, &copied, tables::HOURLY, &mut names)?;
    copy_table(from, &copied, tables::HISTOGRAM, &mut names)?;
    copy_table(from, &copied, tables::REPO_HOURLY, &mut names)?;
    copy_table(from, &copied, tables::REPO_STATS, &mut names)?;
    copy_table(from, &copied, tables::ALERTS, &mut names)?;
    copy_table(from, &copied, tables::JOB_METRICS, &mut names)?;
    copy_table(from, &copied, tables::ACTIONS_OBSERVED, &mut names)?;
    copy_table(from, &copied, tables::ACTIONS_JOBS, &mut names)?;
    copy_table(from, &copied, tables::ACTIONS_RUN_JOBS, &mut names)?;
    copy_table(from, &copied, tables::ACTIONS_HOURLY, &mut names)?;
    copy_table(from, &copied, tables::ACTIONS_TOTALS, &mut names)?;
    copy_table(from, &copied, tables::ACTIONS_LIVE, &mut names)?;
    // A table added to `tables.rs` but not above would be left out silently: the
    // backup refuses instead (and the test below fails first).
    for table in from.list_tables()? {
        if !names.contains(&table.name().to_owned()) {
            return Err(StoreError::Database(format!(
                "the backup does not know the table {}; this build cannot back it up",
                table.name()
            )));
        }
    }
    if from.list_multimap_tables()?.next().is_some() {
        return Err(StoreError::Database(
            "the backup does not copy multimap tables".into(),
        ));
    }

    let txn = from;
    let value = |key| -> Result<u64, StoreError> {
        Ok(txn
            .open_table(tables::META)?
            .get(key)?
            .map_or(0, |v| v.value()))
    };
    let events = txn.open_table(tables::EVENTS)?;
    use redb::ReadableTableMetadata;
    Ok(SnapshotFacts {
        last_seq: value(meta::NEXT_SEQ)?.saturating_sub(1),
        events: events.len()?,
        schema_version: value(meta::SCHEMA_VERSION)?,
    })
}

/// Copies one table in one transaction; a table the source lacks is created empty.
fn copy_table<K: Key + 'static, V: Value + 'static>(
    from: &ReadTransaction,
    to: &Database,
    table: TableDefinition<K, V>,
    names: &mut Vec<String>,
) -> Result<(), StoreError> {
    use redb::ReadableTable;
    names.push(table.name().to_owned());
    let txn = to.begin_write()?;
    {
        let mut target = txn.open_table(table)?;
        match from.open_table(table) {
            Ok(source) => {
                for entry in source.iter()? {
                    let (key, value) = entry?;
                    target.insert(key.value(), value.value())?;
                }
            }
            Err(redb::TableError::TableDoesNotExist(_)) => {}
            Err(e) => return Err(e.into()),
        }
    }
    txn.commit()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::StoreOptions;

    #[tokio::test]
    async fn every_table_of_a_store_is_copied() {
        let dir = tempfile::tempdir().unwrap();
        let options = StoreOptions::plain(1 << 20);
        let (store, writer) = Store::open(dir.path(), &options).unwrap();
        let copy = dir.path().join("copy.redb");
        let facts = store
            .snapshot_to(&copy)
            .await
            .expect("every table is known");
        assert_eq!(facts.events, 0);
        assert_eq!(facts.schema_version, tables::SCHEMA_VERSION);
        assert!(
            store.snapshot_to(&copy).await.is_err(),
            "never over an existing file"
        );
        drop(store);
        writer.join();
    }
}
