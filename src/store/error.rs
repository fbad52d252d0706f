//! Store failures, coarse on purpose: callers decide between "retry later" and "this
//! record is damaged"; the detail goes to the log.

use super::codec::CodecError;

#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Database(String),
    #[error("stored record unreadable: {0}")]
    Corrupt(String),
    #[error("the store is shutting down")]
    Closed,
    /// Writes fail for now (disk full, I/O error); the writer keeps trying.
    #[error("the store cannot write right now: {0}")]
    Unavailable(String),
    #[error(
        "it was written by a newer hookvault (store schema {found}; this hookvault, {}, \
         reads schema {known} at most): run the newer binary again, or restore a backup \
         made before the upgrade",
        env!("CARGO_PKG_VERSION")
    )]
    NewerSchema { found: u64, known: u64 },
    /// Cluster mode: the replicated log did not take a delivery, or this node is
    /// behind it; the caller retries.
    #[error("the cluster's log: {0}")]
    Cluster(String),
    /// The acknowledgement log cannot be opened (corrupt before its tail, or i/o).
    #[error("{0}")]
    Log(String),
    /// Another process (a running server) holds the database file.
    #[error("the store is in use by another hookvault process")]
    InUse,
}

macro_rules! from_redb {
    ($($error:ty),*) => {$(
        impl From<$error> for StoreError {
            fn from(e: $error) -> Self {
                StoreError::Database(e.to_string())
            }
        }
    )*};
}

impl From<redb::DatabaseError> for StoreError {
    fn from(e: redb::DatabaseError) -> Self {
        match e {
            redb::DatabaseError::DatabaseAlreadyOpen => StoreError::InUse,
            other => StoreError::Database(other.to_string()),
        }
    }
}

from_redb!(
    redb::Error,
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError,
    redb::SetDurabilityError,
    std::io::Error
);

impl From<CodecError> for StoreError {
    fn from(e: CodecError) -> Self {
        StoreError::Corrupt(e.to_string())
    }
}
