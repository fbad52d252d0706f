//! The open database, shared by the readers and the writer. After an I/O failure
//! (a full disk, say) redb refuses every later operation until the file is opened
//! again, so the writer empties the slot, reopens the file once it can, and puts the
//! new handle back. Meanwhile every caller gets [`StoreError::Unavailable`] with the
//! reason, which the API turns into 503 and health into "unhealthy".

use std::path::PathBuf;
use std::sync::{Arc, RwLock};

use redb::Database;

use super::StoreError;

pub(crate) struct DbSlot {
    state: RwLock<SlotState>,
    path: PathBuf,
    cache_bytes: usize,
}

struct SlotState {
    db: Option<Arc<Database>>,
    /// Why the store cannot write, while it cannot.
    trouble: Option<String>,
}

impl DbSlot {
    pub fn new(db: Database, path: PathBuf, cache_bytes: usize) -> Self {
        Self {
            state: RwLock::new(SlotState {
                db: Some(Arc::new(db)),
                trouble: None,
            }),
            path,
            cache_bytes,
        }
    }

    /// The database file (its directory is the data directory).
    pub fn path(&self) -> &std::path::Path {
        &self.path
    }

    /// The open database, or why there is none right now.
    pub fn get(&self) -> Result<Arc<Database>, StoreError> {
        let state = self.state.read().unwrap_or_else(|e| e.into_inner());
        state
            .db
            .clone()
            .ok_or_else(|| StoreError::Unavailable(state.trouble.clone().unwrap_or_default()))
    }

    /// Gives the handle up, so the file can close once in-flight reads end.
    pub fn close(&self, reason: String) {
        let mut state = self.state.write().unwrap_or_else(|e| e.into_inner());
        state.db = None;
        state.trouble = Some(reason);
    }

    /// Opens the file again (redb repairs it if it has to); fails while the old
    /// handle is still held somewhere or the disk still refuses.
    /// Runs `prepare` on the reopened database before anyone else can use it.
    pub fn reopen_then<T>(
        &self,
        prepare: impl FnOnce(&Database) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let db = Database::builder()
            .set_cache_size(self.cache_bytes)
            .create(&self.path)?;
        let prepared = prepare(&db)?;
        let mut state = self.state.write().unwrap_or_else(|e| e.into_inner());
        state.db = Some(Arc::new(db));
        state.trouble = None;
        Ok(prepared)
    }
}
