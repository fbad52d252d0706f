//! Scoped API tokens: `read`, `write` or `admin`, optionally limited to
//! organizations and repositories. A token is 256 random bits, shown once; the store
//! keeps only its SHA-256, so the data directory never holds a usable token. The
//! tokens are held in memory, keyed by that hash, so a request's token is found with
//! one hash and one map lookup, and a revocation takes effect for the next request.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, RwLock};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::domain::timestamp;
use crate::store::{Store, StoreError, TokenChange};

pub mod command;

/// Prefix of every token, so a leaked one is recognisable (secret scanners).
const PREFIX: &str = "hvt_";
/// Last-use times are written at most this often per token.
const TOUCH_EVERY_MS: i64 = 60_000;
/// Longest token name.
const MAX_NAME: usize = 64;
/// Organizations plus repositories a token may be limited to.
const MAX_LIMITS: usize = 100;

/// What a token may do. Each includes the ones before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// Read events, statistics, search, repositories; Socket.IO.
    Read,
    /// Also replay, retry and test events.
    Write,
    /// Also tokens, filters, forwarding targets, backups and exports.
    Admin,
}

impl Scope {
    pub fn parse(text: &str) -> Result<Self, TokenError> {
        match text {
            "read" => Ok(Self::Read),
            "write" => Ok(Self::Write),
            "admin" => Ok(Self::Admin),
            other => Err(TokenError::Invalid(format!(
                "scope: {other:?} is not read, write or admin"
            ))),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Read => "read",
            Self::Write => "write",
            Self::Admin => "admin",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("{0}")]
    Invalid(String),
    #[error("a token named {0:?} exists")]
    Exists(String),
    #[error("no token named {0:?}")]
    NotFound(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What a new token is for, as the API and the command line give it.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TokenRequest {
    pub name: String,
    pub scope: Scope,
    #[serde(default)]
    pub organizations: Vec<String>,
    #[serde(default)]
    pub repositories: Vec<String>,
}

impl TokenRequest {
    fn check(&self) -> Result<(), TokenError> {
        let mut chars = self.name.chars();
        let starts_well = chars.next().is_some_and(|c| c.is_ascii_alphanumeric());
        let rest_ok = chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
        if !(starts_well && rest_ok && self.name.len() <= MAX_NAME) {
            return Err(TokenError::Invalid(format!(
                "name: {:?} must be 1 to {MAX_NAME} letters, digits, '.', '_' or '-', starting with a letter or digit",
                self.name
            )));
        }
        if self.organizations.len() + self.repositories.len() > MAX_LIMITS {
            return Err(TokenError::Invalid(format!(
                "at most {MAX_LIMITS} organizations and repositories"
            )));
        }
        let plain = |s: &str| {
            !s.is_empty()
                && s.len() <= 100
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
        };
        if let Some(bad) = self.organizations.iter().find(|o| !plain(o)) {
            return Err(TokenError::Invalid(format!(
                "organizations: {bad:?} is not an organization name"
            )));
        }
        let repo = |r: &String| r.split_once('/').is_some_and(|(o, n)| plain(o) && plain(n));
        if let Some(bad) = self.repositories.iter().find(|r| !repo(r)) {
            return Err(TokenError::Invalid(format!(
                "repositories: {bad:?} is not owner/name"
            )));
        }
        Ok(())
    }
}

/// A token as stored and listed: everything but the token.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TokenRecord {
    pub name: String,
    pub scope: Scope,
    pub organizations: Vec<String>,
    pub repositories: Vec<String>,
    /// Hex SHA-256 of the token.
    pub sha256: String,
    pub created_at_ms: i64,
    pub last_used_ms: Option<i64>,
}

impl TokenRecord {
    /// Limited to some organizations or repositories.
    pub fn is_limited(&self) -> bool {
        !self.organizations.is_empty() || !self.repositories.is_empty()
    }
}

/// A token in memory, with its last use as it moves.
struct Live {
    record: TokenRecord,
    last_used_ms: AtomicI64,
    last_written_ms: AtomicI64,
}

/// Who a presented token is: its record as it was when the request came.
#[derive(Debug, Clone)]
pub struct Holder {
    pub name: String,
    pub scope: Scope,
    pub organizations: Vec<String>,
    pub repositories: Vec<String>,
}

/// Every token of a running instance, in memory, backed by the store.
pub struct Tokens {
    /// `None` once [`Tokens::close`]d: Socket.IO's state keeps the access rule (and
    /// so this) alive past the server, and the store's writer stops only when every
    /// handle to it is gone.
    store: std::sync::Mutex<Option<Store>>,
    by_hash: RwLock<HashMap<String, Arc<Live>>>,
}

/// Cluster mode: reads the tokens again each time a token change from the cluster's
/// log is applied, until the node stops.
pub async fn follow_cluster(tokens: Arc<Tokens>, mut changed: tokio::sync::watch::Receiver<u64>) {
    while changed.changed().await.is_ok() {
        if let Err(error) = tokens.reload().await {
            tracing::warn!(%error, "cannot read the API tokens again");
        }
    }
}

/// Every stored token, by hash.
async fn read_all(store: &Store) -> Result<HashMap<String, Arc<Live>>, TokenError> {
    let mut by_hash = HashMap::new();
    for (name, bytes) in store.tokens().await? {
        let record: TokenRecord = serde_json::from_slice(&bytes)
            .map_err(|e| TokenError::Store(StoreError::Corrupt(format!("token {name:?}: {e}"))))?;
        by_hash.insert(record.sha256.clone(), Arc::new(live(record)));
    }
    Ok(by_hash)
}

/// Whether `token` has the form of a scoped token (`hvt_…`), valid or not.
pub fn looks_scoped(token: &str) -> bool {
    token.starts_with(PREFIX)
}

fn hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

impl Tokens {
    /// Loads every stored token.
    pub async fn load(store: Store) -> Result<Arc<Self>, TokenError> {
        let by_hash = read_all(&store).await?;
        Ok(Arc::new(Self {
            store: std::sync::Mutex::new(Some(store)),
            by_hash: RwLock::new(by_hash),
        }))
    }

    /// Reads every token from the store again: in cluster mode, after another node
    /// made, revoked or used one (each a message of the cluster's log).
    pub async fn reload(&self) -> Result<(), TokenError> {
        let by_hash = read_all(&self.store()?).await?;
        *self.write() = by_hash;
        Ok(())
    }

    /// Lets go of the store, at shutdown; changes fail from then on.
    pub fn close(&self) {
        self.store.lock().unwrap_or_else(|e| e.into_inner()).take();
    }

    fn store(&self) -> Result<Store, StoreError> {
        let store = self.store.lock().unwrap_or_else(|e| e.into_inner());
        store.clone().ok_or(StoreError::Closed)
    }

    /// Makes a token: answers it (the only time it is ever seen) and its record.
    pub async fn create(&self, request: TokenRequest) -> Result<(String, TokenRecord), TokenError> {
        request.check()?;
        let secret: [u8; 32] = rand::random();
        let token = format!("{PREFIX}{}", hex::encode(secret));
        let record = TokenRecord {
            name: request.name,
            scope: request.scope,
            organizations: request.organizations,
            repositories: request.repositories,
            sha256: hash(&token),
            created_at_ms: timestamp::now_ms(),
            last_used_ms: None,
        };
        let change = TokenChange::Create {
            name: record.name.clone(),
            record: encode(&record),
        };
        if !self.store()?.change_token(change).await? {
            return Err(TokenError::Exists(record.name));
        }
        self.write()
            .insert(record.sha256.clone(), Arc::new(live(record.clone())));
        Ok((token, record))
    }

    /// Revokes a token: refused from the next request on, and gone from the store.
    pub async fn revoke(&self, name: &str) -> Result<(), TokenError> {
        let removed = {
            let mut map = self.write();
            let hash = map
                .iter()
                .find(|(_, l)| l.record.name == name)
                .map(|(h, _)| h.clone());
            hash.and_then(|h| map.remove(&h))
        };
        let change = TokenChange::Remove {
            name: name.to_owned(),
        };
        let stored = self.store()?.change_token(change).await?;
        if removed.is_none() && !stored {
            return Err(TokenError::NotFound(name.to_owned()));
        }
        Ok(())
    }

    /// Every token's record, by name.
    pub fn list(&self) -> Vec<TokenRecord> {
        let mut all: Vec<TokenRecord> = self
            .by_hash
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .map(|l| snapshot(l))
            .collect();
        all.sort_by(|a, b| a.name.cmp(&b.name));
        all
    }

    /// The holder of `token`, if it is a live token; notes its use.
    pub fn find(&self, token: &str) -> Option<Holder> {
        if !looks_scoped(token) {
            return None;
        }
        let live = self
            .by_hash
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&hash(token))
            .cloned()?;
        let now = timestamp::now_ms();
        live.last_used_ms.store(now, Ordering::Relaxed);
        let written = live.last_written_ms.load(Ordering::Relaxed);
        if now - written >= TOUCH_EVERY_MS
            && live
                .last_written_ms
                .compare_exchange(written, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            let change = TokenChange::Update {
                name: live.record.name.clone(),
                record: encode(&snapshot(&live)),
            };
            if let Ok(store) = self.store() {
                tokio::spawn(async move {
                    if let Err(error) = store.change_token(change).await {
                        tracing::debug!(%error, "a token's last use was not saved");
                    }
                });
            }
        }
        let r = &live.record;
        Some(Holder {
            name: r.name.clone(),
            scope: r.scope,
            organizations: r.organizations.clone(),
            repositories: r.repositories.clone(),
        })
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<String, Arc<Live>>> {
        self.by_hash.write().unwrap_or_else(|e| e.into_inner())
    }
}

fn live(record: TokenRecord) -> Live {
    let used = record.last_used_ms.unwrap_or(0);
    Live {
        last_used_ms: AtomicI64::new(used),
        last_written_ms: AtomicI64::new(used),
        record,
    }
}

fn snapshot(live: &Live) -> TokenRecord {
    let used = live.last_used_ms.load(Ordering::Relaxed);
    TokenRecord {
        last_used_ms: (used > 0).then_some(used),
        ..live.record.clone()
    }
}

fn encode(record: &TokenRecord) -> Vec<u8> {
    serde_json::to_vec(record).expect("a token record is plain data")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(name: &str, orgs: &[&str], repos: &[&str]) -> TokenRequest {
        TokenRequest {
            name: name.into(),
            scope: Scope::Read,
            organizations: orgs.iter().map(|s| s.to_string()).collect(),
            repositories: repos.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn requests_are_checked() {
        assert!(
            request("ci-reader", &["octo-org"], &["octo-org/app"])
                .check()
                .is_ok()
        );
        for bad in [
            request("", &[], &[]),
            request("a b", &[], &[]),
            request("ok", &["octo/org"], &[]),
            request("ok", &[], &["no-slash"]),
            request("ok", &[], &["a/b/c"]),
        ] {
            assert!(bad.check().is_err(), "{bad:?}");
        }
        assert!(Scope::parse("owner").is_err());
        assert!(Scope::Admin > Scope::Write && Scope::Write > Scope::Read);
    }
}
