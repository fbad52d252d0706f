//! API tokens' durable state, kept opaque: name → the token's record (its SHA-256,
//! scope and limits, as `tokens` encodes them). The token itself is never stored.
//! Every change is a durable commit before it is answered, so a revocation that was
//! answered survives a crash.

use redb::{ReadableDatabase, ReadableTable, WriteTransaction};
use tokio::sync::oneshot;

use super::request::WriteRequest;
use super::tables::TOKENS;
use super::{Store, StoreError};

/// A change to the tokens table.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub enum TokenChange {
    /// Adds a token; not applied (false) when the name is taken.
    Create { name: String, record: Vec<u8> },
    /// Rewrites a token's record (its last use); not applied when it was revoked
    /// meanwhile, so a late update never brings a revoked token back.
    Update { name: String, record: Vec<u8> },
    /// Revokes a token; false when there was none of that name.
    Remove { name: String },
}

pub(super) fn apply(txn: &WriteTransaction, change: &TokenChange) -> Result<bool, StoreError> {
    let mut table = txn.open_table(TOKENS)?;
    Ok(match change {
        TokenChange::Create { name, record } => {
            if table.get(name.as_str())?.is_some() {
                false
            } else {
                table.insert(name.as_str(), record.as_slice())?;
                true
            }
        }
        TokenChange::Update { name, record } => {
            if table.get(name.as_str())?.is_some() {
                table.insert(name.as_str(), record.as_slice())?;
                true
            } else {
                false
            }
        }
        TokenChange::Remove { name } => table.remove(name.as_str())?.is_some(),
    })
}

impl Store {
    /// Applies one change durably; whether it applied (see [`TokenChange`]).
    /// In cluster mode through the cluster's log, so every node has the same tokens.
    pub async fn change_token(&self, change: TokenChange) -> Result<bool, StoreError> {
        if let Some(log) = self.cluster_log()? {
            return match log.change(super::LoggedChange::Token(change)).await? {
                super::ChangeOutcome::Applied(applied) => Ok(applied),
                _ => Err(StoreError::Cluster("no answer for a token change".into())),
            };
        }
        let (reply, answer) = oneshot::channel();
        self.send(WriteRequest::Tokens { change, reply }).await?;
        answer.await.map_err(|_| StoreError::Closed)?
    }

    /// Every token's (name, record).
    pub async fn tokens(&self) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        self.read(|db| {
            let txn = db.begin_read()?;
            // Made by the first token's commit.
            let table = match txn.open_table(TOKENS) {
                Ok(table) => table,
                Err(redb::TableError::TableDoesNotExist(_)) => return Ok(Vec::new()),
                Err(e) => return Err(e.into()),
            };
            let mut all = Vec::new();
            for entry in table.iter()? {
                let (name, record) = entry?;
                all.push((name.value().to_owned(), record.value().to_vec()));
            }
            Ok(all)
        })
        .await
    }
}
