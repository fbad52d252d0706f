//! What opening a store reads before the writer starts: the schema version and where
//! the store stands, the dedup window's recent content keys; and `compact`, which
//! rewrites a stopped store's file.

use std::path::Path;
use std::time::Duration;

use redb::{Database, ReadableDatabase, ReadableTable};

use super::dedup::{self, ContentWindow};
use super::tables::{self, meta};
use super::{CommitObserver, DB_FILE, EventRecord, Status, StoreError, codec, index};
use crate::domain::ContentKey;

/// Where a store stands when it is opened.
pub(super) struct Position {
    pub last_change: u64,
    pub next_seq: u64,
    /// Highest seq of the acknowledgement log applied durably.
    pub log_applied: u64,
    /// Cluster mode: the last message of the replicated log applied durably.
    pub stream_applied: Option<u64>,
}

/// Creates every table, checks the schema version, says where the store stands.
pub(super) fn initialize(db: &Database) -> Result<Position, StoreError> {
    let txn = db.begin_write()?;
    let (position, actions_stale) = {
        let mut t = tables::WriteTables::open(&txn)?;
        let found = t.meta.get(meta::SCHEMA_VERSION)?.map(|v| v.value());
        match found {
            Some(found) if found > tables::SCHEMA_VERSION => {
                return Err(StoreError::NewerSchema {
                    found,
                    known: tables::SCHEMA_VERSION,
                });
            }
            Some(found) if found == tables::SCHEMA_VERSION => {}
            // Older layouts read as they are (see `SCHEMA_VERSION`); what is
            // written from now on may need this binary.
            Some(_) | None => {
                t.meta
                    .insert(meta::SCHEMA_VERSION, tables::SCHEMA_VERSION)?;
            }
        }
        let value =
            |key| -> Result<Option<u64>, StoreError> { Ok(t.meta.get(key)?.map(|v| v.value())) };
        let next_seq = value(meta::NEXT_SEQ)?.unwrap_or(1);
        let position = Position {
            last_change: value(meta::NEXT_CHANGE)?.unwrap_or(1) - 1,
            next_seq,
            // A store older than the log applied everything it holds.
            log_applied: value(meta::LOG_APPLIED)?.unwrap_or(next_seq - 1),
            stream_applied: value(meta::STREAM_APPLIED)?,
        };
        let actions_stale = value(meta::ACTIONS_APPLIED)?.unwrap_or(0) != position.log_applied;
        (position, actions_stale)
    };
    if actions_stale {
        let observed = super::actions::rebuild(&txn)?;
        txn.open_table(tables::META)?
            .insert(meta::ACTIONS_APPLIED, position.log_applied)?;
        tracing::info!(
            observed,
            "rebuilt the Actions state from the stored job deliveries"
        );
    }
    txn.commit()?;
    Ok(position)
}

/// The content keys of events received within the dedup window, so a restart does
/// not reopen the window for a second hook's copy.
pub(super) fn recent_content_window(
    db: &Database,
    ttl: Duration,
) -> Result<ContentWindow, StoreError> {
    let mut window = ContentWindow::new(ttl);
    if !window.is_enabled() {
        return Ok(window);
    }
    let txn = db.begin_read()?;
    let index_table = txn.open_table(tables::EVENT_INDEX)?;
    let events = txn.open_table(tables::EVENTS)?;
    // The window reaches back from the newest delivery stored, not from now: what the
    // next delivery is compared with depends on the deliveries alone, so a cluster
    // node restarted later decides as the others did.
    let newest = index_table
        .range((index::ALL, "", i64::MIN, 0u64)..=(index::ALL, "", i64::MAX, u64::MAX))?
        .next_back()
        .transpose()?
        .map_or(0, |(key, _)| key.value().2);
    let since = newest.saturating_sub(i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX));
    for entry in
        index_table.range((index::ALL, "", since, 0u64)..=(index::ALL, "", i64::MAX, u64::MAX))?
    {
        let seq = entry?.0.value().3;
        let Some(bytes) = events.get(seq)? else {
            continue;
        };
        let record: EventRecord = codec::decode(bytes.value())?;
        if record.status == Status::Duplicate {
            continue;
        }
        if let Some(key) = record.content_key {
            let original = dedup::Original {
                seq,
                delivery_id: record.origin.delivery_id.as_str().into(),
            };
            window.remember(ContentKey(key), original, record.received_at_ms);
        }
    }
    Ok(window)
}

/// Rewrites the database file to drop freed pages (`hookvault compact`, on a stopped
/// instance). Returns the file size before and after.
pub fn compact(dir: &Path) -> Result<(u64, u64), StoreError> {
    let path = dir.join(DB_FILE);
    let before = std::fs::metadata(&path)?.len();
    let mut db = Database::builder().create(&path)?;
    db.compact()
        .map_err(|e| StoreError::Database(e.to_string()))?;
    drop(db);
    Ok((before, std::fs::metadata(&path)?.len()))
}

/// Creates the database file readable by its owner only (0600, whatever the
/// umask), or takes group and other access away from an existing one.
pub(super) fn private_file(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .open(path)?;
    let mode = file.metadata()?.permissions().mode();
    if mode & 0o077 != 0 {
        file.set_permissions(std::fs::Permissions::from_mode(mode & 0o700))?;
    }
    Ok(())
}

#[derive(Clone)]
pub struct StoreOptions {
    /// redb's page cache. redb's default is 1 GiB, far too much for a small host.
    pub cache_bytes: usize,
    pub dedup_ttl: Duration,
    pub on_commit: Option<CommitObserver>,
    /// Called after every batch the log writer made durable: deliveries, time to
    /// write and `fdatasync` them.
    pub on_append: Option<CommitObserver>,
    /// Size past which the acknowledgement log begins a new segment.
    pub log_segment_bytes: u64,
    /// Cluster mode: deliveries are appended to a replicated log outside the store
    /// ([`Store::use_shared_log`]) and come back through [`Store::materialize`];
    /// the local log is only read at start, for what an earlier run left in it.
    pub cluster: bool,
}

impl StoreOptions {
    /// A store with `cache_bytes` of page cache and nothing else: no content-dedup
    /// window, no observers, the default log segments. For tools, tests and benches
    /// that open a store of their own.
    pub fn plain(cache_bytes: usize) -> Self {
        Self {
            cache_bytes,
            dedup_ttl: Duration::ZERO,
            on_commit: None,
            on_append: None,
            log_segment_bytes: crate::log::SEGMENT_BYTES,
            cluster: false,
        }
    }
}
