//! Full-text search: a tantivy index derived from the store. One [`Indexer`] task
//! owns the `IndexWriter`, follows the store's change log and commits in batches with
//! the last applied change id in the commit payload; at startup it catches up from
//! there. A missing or unreadable index is rebuilt from the store in the background.
//! The ingest path never touches tantivy.

mod background;
mod common_grams;
mod document;
mod fresh;
mod indexer;
mod query;
mod query_text;
mod schema;
mod term_counts;
mod visible;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};

use serde::{Deserialize, Serialize};
use tantivy::tokenizer::TokenizerManager;
use tantivy::{Index, IndexReader, ReloadPolicy};

use crate::store::Store;

pub use document::{payload_of, text_of};
pub use fresh::Fresh;
pub use indexer::Indexer;
pub use query::{Facets, Hit, SearchError, SearchRequest, SearchResults, SortOrder};
pub use schema::EXACT_FIELDS;

use schema::Fields;

/// Folder of the index inside the data directory.
pub const INDEX_DIR: &str = "search-index";

/// What each commit records, so a restart knows where to resume.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
struct Checkpoint {
    schema: u32,
    change: u64,
}

/// Handle for searching; cheap to clone.
#[derive(Clone)]
pub struct SearchIndex {
    inner: Arc<Inner>,
}

struct Inner {
    index: Index,
    reader: IndexReader,
    fields: Fields,
    /// The analyzers a query's `text` words go through: exact phrases look for
    /// common-word pairs, loose ones (slop, prefix) for words alone.
    exact_phrases: TokenizerManager,
    loose_phrases: TokenizerManager,
    /// Last change id whose effect is searchable.
    indexed_change: AtomicU64,
    rebuilding: AtomicBool,
    /// When indexing last failed (ms since the epoch; 0: never).
    last_failure_ms: AtomicI64,
    /// New events' payload parts, handed over by ingest.
    fresh: Fresh,
}

/// Why an index was (re)created instead of opened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Opened {
    Existing,
    Created,
    Rebuilt(String),
}

impl SearchIndex {
    /// Opens the index under `data_dir`, creating it when missing and recreating it
    /// (to be rebuilt from the store) when it cannot be read or has another schema.
    /// Returns the checkpoint to resume from: `None` means build from scratch.
    pub fn open(data_dir: &Path) -> anyhow::Result<(SearchIndex, Option<u64>, Opened)> {
        let dir = data_dir.join(INDEX_DIR);
        let (schema, fields) = schema::build();
        {
            use std::os::unix::fs::DirBuilderExt;
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(&dir)
                .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", dir.display()))?;
        }
        // An empty directory is a new index (it may be a mount point for another disk).
        let opened = if std::fs::read_dir(&dir)?.next().is_none() {
            Opened::Created
        } else {
            match open_existing(&dir) {
                Ok((index, checkpoint)) => {
                    return Self::wrap(index, fields, checkpoint, Opened::Existing);
                }
                Err(problem) => {
                    tracing::warn!(%problem, "search index unreadable; rebuilding it from the store");
                    empty_dir(&dir)?;
                    Opened::Rebuilt(problem)
                }
            }
        };
        let index = Index::create_in_dir(&dir, schema)?;
        Self::wrap(index, fields, None, opened)
    }

    fn wrap(
        index: Index,
        fields: Fields,
        checkpoint: Option<u64>,
        opened: Opened,
    ) -> anyhow::Result<(SearchIndex, Option<u64>, Opened)> {
        // tantivy keeps no analyzers in the index: each open registers them again.
        index
            .tokenizers()
            .register(schema::TEXT_TOKENIZER, common_grams::index_analyzer());
        let with_text = |analyzer| {
            let tokenizers = TokenizerManager::default();
            tokenizers.register(schema::TEXT_TOKENIZER, analyzer);
            tokenizers
        };
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .try_into()?;
        let inner = Inner {
            index,
            reader,
            fields,
            exact_phrases: with_text(common_grams::phrase_analyzer()),
            loose_phrases: with_text(common_grams::words_analyzer()),
            indexed_change: AtomicU64::new(checkpoint.unwrap_or(0)),
            rebuilding: AtomicBool::new(checkpoint.is_none()),
            last_failure_ms: AtomicI64::new(0),
            fresh: Fresh::default(),
        };
        Ok((
            SearchIndex {
                inner: Arc::new(inner),
            },
            checkpoint,
            opened,
        ))
    }

    /// Where ingest hands new events' payload parts to the indexer.
    pub fn fresh(&self) -> &Fresh {
        &self.inner.fresh
    }

    /// Last change id whose effect is searchable.
    pub fn indexed_change(&self) -> u64 {
        self.inner.indexed_change.load(Ordering::Acquire)
    }

    /// True while a full rebuild from the store is running.
    pub fn rebuilding(&self) -> bool {
        self.inner.rebuilding.load(Ordering::Acquire)
    }

    /// Changes committed to the store that are not searchable yet.
    pub fn lag(&self, store: &Store) -> u64 {
        store.last_change().saturating_sub(self.indexed_change())
    }

    /// When indexing last failed and rolled back (a full disk), if ever.
    pub fn last_failure_ms(&self) -> Option<i64> {
        Some(self.inner.last_failure_ms.load(Ordering::Relaxed)).filter(|&at| at > 0)
    }

    pub fn num_docs(&self) -> u64 {
        self.inner.reader.searcher().num_docs()
    }

    pub fn dir(data_dir: &Path) -> PathBuf {
        data_dir.join(INDEX_DIR)
    }
}

/// Removes what is in `dir`, keeping `dir` itself (removing a mount point fails).
fn empty_dir(dir: &Path) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            std::fs::remove_dir_all(&path)?;
        } else {
            std::fs::remove_file(&path)?;
        }
    }
    Ok(())
}

fn open_existing(dir: &Path) -> Result<(Index, Option<u64>), String> {
    let index = Index::open_in_dir(dir).map_err(|e| e.to_string())?;
    let metas = index.load_metas().map_err(|e| e.to_string())?;
    let checkpoint: Option<Checkpoint> = metas
        .payload
        .as_deref()
        .and_then(|p| serde_json::from_str(p).ok());
    let change = match checkpoint {
        Some(c) if c.schema == schema::SCHEMA_VERSION => Some(c.change),
        Some(c) => {
            return Err(format!(
                "index has schema {}, this build uses {}",
                c.schema,
                schema::SCHEMA_VERSION
            ));
        }
        None if metas.segments.is_empty() => None,
        None => return Err("index has no checkpoint".into()),
    };
    // Opening every segment reads its files: a missing or truncated file fails here.
    let reader = index.reader().map_err(|e| e.to_string())?;
    let searcher = reader.searcher();
    for segment in searcher.segment_readers() {
        segment.get_store_reader(0).map_err(|e| e.to_string())?;
    }
    Ok((index, change))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Commits the index as a build of `schema` would, with its checkpoint.
    fn commit_checkpoint(index: SearchIndex, schema: u32, change: u64) {
        let mut writer: tantivy::IndexWriter = index.inner.index.writer(15_000_000).unwrap();
        let mut prepared = writer.prepare_commit().unwrap();
        prepared.set_payload(&serde_json::to_string(&Checkpoint { schema, change }).unwrap());
        prepared.commit().unwrap();
    }

    /// An index committed by a build with another schema (say, one that still wrote
    /// a field this one dropped) is emptied and rebuilt from the store, not read.
    #[test]
    fn an_index_of_another_schema_is_rebuilt() {
        let dir = tempfile::tempdir().unwrap();
        let (index, checkpoint, opened) = SearchIndex::open(dir.path()).unwrap();
        assert_eq!((checkpoint, opened), (None, Opened::Created));
        commit_checkpoint(index, schema::SCHEMA_VERSION - 1, 7);

        let (index, checkpoint, opened) = SearchIndex::open(dir.path()).unwrap();
        assert_eq!(checkpoint, None, "rebuilt from the store");
        assert!(
            matches!(&opened, Opened::Rebuilt(why) if why.contains("schema")),
            "{opened:?}"
        );
        assert!(index.rebuilding());

        // Once rebuilt with this schema, it opens as it is.
        commit_checkpoint(index, schema::SCHEMA_VERSION, 7);
        let (_, checkpoint, opened) = SearchIndex::open(dir.path()).unwrap();
        assert_eq!((checkpoint, opened), (Some(7), Opened::Existing));
    }
}
