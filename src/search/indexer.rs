//! The indexing task: the only owner of the `IndexWriter`. It applies the store's
//! change log in order (each change re-indexes its event from the store, so applying
//! one twice is harmless; a new event's payload parts usually come from ingest's
//! parse instead, through [`Fresh`]), commits about every half second or every
//! 10,000 documents with the last applied change id as the commit payload, and
//! rebuilds from the events table when it starts without a checkpoint. A failed step
//! or commit (a full disk) rolls back to the last commit and goes on from there.

use std::collections::BTreeSet;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use tantivy::{IndexWriter, TantivyDocument, Term};

use super::background::Background;
use super::fresh::Fresh;
use super::{Checkpoint, SearchIndex, document, schema};
use crate::domain::timestamp;
use crate::store::{SeqReader, Store};

/// Longest a change waits to become searchable when changes keep coming.
const COMMIT_EVERY: Duration = Duration::from_millis(500);
const COMMIT_DOCS: usize = 10_000;
/// Changes read from the store per step.
const STEP: usize = 1_024;
/// tantivy's indexing memory budget (its minimum is 15 MB per thread; one thread).
const WRITER_MEMORY: usize = 32 * 1024 * 1024;

pub struct Indexer {
    store: Store,
    index: SearchIndex,
    /// `None` after a failure: made anew before the next step.
    writer: Option<IndexWriter>,
    /// Where the index's blocking work runs.
    background: Background,
    /// What the writer holds, committed or not.
    position: Position,
    /// What the last commit holds: where a failure rolls back to.
    committed: Position,
    uncommitted: usize,
    dirty_since: Option<Instant>,
}

impl Indexer {
    pub fn new(store: Store, index: SearchIndex, checkpoint: Option<u64>) -> anyhow::Result<Self> {
        let background = Background::start()?;
        let tantivy_index = index.inner.index.clone();
        let writer = background.run_blocking(move || new_writer(&tantivy_index))??;
        let position = Position {
            applied: checkpoint.unwrap_or(0),
            rebuild: checkpoint.is_none().then(|| (1, store.last_change())),
        };
        Ok(Self {
            store,
            index,
            writer: Some(writer),
            background,
            position,
            committed: position,
            uncommitted: 0,
            dirty_since: None,
        })
    }

    fn rebuilding(&self) -> bool {
        self.position.rebuild.is_some()
    }

    /// Indexes the next step of work (rebuild or changes); returns how many events
    /// it (re)indexed. Commits when the batch is due.
    pub async fn run_once(&mut self) -> anyhow::Result<usize> {
        let step = self.step().await;
        if step.is_err() {
            self.roll_back().await;
        }
        step
    }

    async fn step(&mut self) -> anyhow::Result<usize> {
        let store = self.store.clone();
        let index = self.index.clone();
        let writer = self.take_writer().await?;
        let position = self.position;
        let (writer, step) = self
            .background
            .run(move || {
                let inner = &index.inner;
                let step = apply_step(&store, &writer, &inner.fields, &inner.fresh, position);
                (writer, step)
            })
            .await?;
        self.writer = Some(writer);
        let (count, next) = step?;
        if count > 0 || next != self.position {
            self.dirty_since.get_or_insert_with(Instant::now);
        }
        self.uncommitted += count;
        let finished_rebuild = self.rebuilding() && next.rebuild.is_none();
        self.position = next;
        if finished_rebuild || self.uncommitted >= COMMIT_DOCS || self.commit_due() {
            self.try_commit().await?;
        }
        Ok(count)
    }

    /// The writer, made anew if a failure dropped it.
    async fn take_writer(&mut self) -> anyhow::Result<IndexWriter> {
        if let Some(writer) = self.writer.take() {
            return Ok(writer);
        }
        let index = self.index.inner.index.clone();
        let writer = self.background.run(move || new_writer(&index)).await??;
        tracing::info!(
            change = self.position.applied,
            "search index writer recreated; indexing resumes from the last commit"
        );
        Ok(writer)
    }

    /// After a failed step or commit. tantivy's indexing worker stops at its first
    /// I/O error (a full disk) and what it held is gone, so the writer is dropped
    /// and the position goes back to the last commit: those changes are applied
    /// again (applying a change twice is harmless) and nothing is skipped.
    async fn roll_back(&mut self) {
        if let Some(writer) = self.writer.take() {
            // Dropping joins tantivy's threads: not on the executor.
            let _ = self.background.run(move || drop(writer)).await;
        }
        self.position = self.committed;
        self.uncommitted = 0;
        self.dirty_since = None;
        self.index
            .inner
            .last_failure_ms
            .store(timestamp::now_ms(), Ordering::Relaxed);
    }

    fn commit_due(&self) -> bool {
        self.dirty_since
            .is_some_and(|since| since.elapsed() >= COMMIT_EVERY)
    }

    /// Commits what was applied, with the checkpoint, and makes it searchable.
    pub async fn commit(&mut self) -> anyhow::Result<()> {
        let committed = self.try_commit().await;
        if committed.is_err() {
            self.roll_back().await;
        }
        committed
    }

    async fn try_commit(&mut self) -> anyhow::Result<()> {
        if self.dirty_since.is_none() {
            return Ok(());
        }
        // Mid-rebuild, the checkpoint stays "none" so a crash restarts the rebuild.
        let checkpoint = (!self.rebuilding()).then_some(self.position.applied);
        let Some(mut writer) = self.writer.take() else {
            anyhow::bail!("no search index writer to commit with");
        };
        let (writer, result) = self
            .background
            .run(move || {
                let result = (|| -> tantivy::Result<()> {
                    let mut prepared = writer.prepare_commit()?;
                    if let Some(change) = checkpoint {
                        let payload = Checkpoint {
                            schema: schema::SCHEMA_VERSION,
                            change,
                        };
                        prepared.set_payload(
                            &serde_json::to_string(&payload).expect("checkpoints serialize"),
                        );
                    }
                    prepared.commit()?;
                    Ok(())
                })();
                (writer, result)
            })
            .await?;
        self.writer = Some(writer);
        result?;
        self.committed = self.position;
        self.uncommitted = 0;
        self.dirty_since = None;
        self.index.inner.reader.reload()?;
        if let Some(change) = checkpoint {
            self.index
                .inner
                .indexed_change
                .store(change, Ordering::Release);
            if self.index.inner.rebuilding.swap(false, Ordering::AcqRel) {
                tracing::info!(docs = self.index.num_docs(), "search index rebuilt");
            }
        }
        Ok(())
    }

    /// Follows the store until `shutdown`, then commits what it has.
    pub async fn run(mut self, shutdown: impl Future<Output = ()>) {
        let mut feed = self.store.subscribe();
        tokio::pin!(shutdown);
        loop {
            feed.borrow_and_update();
            let before = self.position;
            match self.run_once().await {
                // Waiting is only right after a step that found nothing to do: the
                // step that ends a rebuild reads no changes, yet may have marked
                // some as seen above.
                Ok(_) if self.position != before => continue,
                Ok(_) => {}
                Err(error) => {
                    tracing::error!(%error, "search indexing step failed; retrying in a second");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            }
            let commit_at = self.dirty_since.map(|since| since + COMMIT_EVERY);
            let wait_commit = async {
                match commit_at {
                    Some(at) => tokio::time::sleep_until(at.into()).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = feed.changed() => {}
                () = wait_commit => {
                    if let Err(error) = self.commit().await {
                        tracing::error!(%error, "search index commit failed");
                    }
                }
                () = &mut shutdown => break,
            }
        }
        // Everything committed before the stop goes into the final commit.
        loop {
            let before = self.position;
            match self.run_once().await {
                Ok(_) if self.position != before => {}
                Ok(_) => break,
                Err(error) => {
                    tracing::error!(%error, "search indexing failed while stopping");
                    break;
                }
            }
        }
        if let Err(error) = self.commit().await {
            tracing::error!(%error, "final search index commit failed");
        }
    }

    /// Runs until every change committed so far is searchable (for `reindex`),
    /// reporting progress.
    pub async fn catch_up(&mut self, mut progress: impl FnMut(u64, u64)) -> anyhow::Result<()> {
        let target = self.store.last_change();
        while self.rebuilding() || self.position.applied < target {
            let n = self.run_once().await?;
            progress(self.index.num_docs() + self.uncommitted as u64, n as u64);
        }
        self.commit().await
    }
}

fn new_writer(index: &tantivy::Index) -> tantivy::Result<IndexWriter> {
    index.writer_with_num_threads(1, WRITER_MEMORY)
}

/// Where the indexer is: the last applied change, and the rebuild cursor if any.
#[derive(Clone, Copy, PartialEq, Eq)]
struct Position {
    applied: u64,
    rebuild: Option<(u64, u64)>,
}

/// Reads the next step of work from the store and applies it to the writer; returns
/// how many events it indexed and the position after them. Blocking.
fn apply_step(
    store: &Store,
    writer: &IndexWriter,
    fields: &schema::Fields,
    fresh: &Fresh,
    position: Position,
) -> anyhow::Result<(usize, Position)> {
    let (seqs, next) = match position.rebuild {
        Some((next_seq, target)) => {
            let seqs = store.seqs_from_blocking(next_seq, STEP)?;
            let next = match seqs.last() {
                Some(last) => Position {
                    applied: position.applied,
                    rebuild: Some((last + 1, target)),
                },
                None => Position {
                    applied: target,
                    rebuild: None,
                },
            };
            (seqs, next)
        }
        None => {
            let changes = store.changes_after_blocking(position.applied, STEP)?;
            let applied = changes.last().map_or(position.applied, |(id, _)| *id);
            let unique: BTreeSet<u64> = changes.into_iter().map(|(_, seq)| seq).collect();
            (
                unique.into_iter().collect::<Vec<_>>(),
                Position {
                    applied,
                    rebuild: None,
                },
            )
        }
    };
    let reader = store.seq_reader_blocking()?;
    for seq in &seqs {
        writer.delete_term(Term::from_field_u64(fields.seq, *seq));
        if let Some(doc) = build_document(&reader, fields, fresh, *seq)? {
            writer.add_document(doc)?;
        }
    }
    Ok((seqs.len(), next))
}

fn build_document(
    reader: &SeqReader,
    fields: &schema::Fields,
    fresh: &Fresh,
    seq: u64,
) -> anyhow::Result<Option<TantivyDocument>> {
    let Some(record) = reader.record(seq)? else {
        return Ok(None); // deleted since (retention): its document stays deleted
    };
    let payload = match fresh.take(&record) {
        Some(parts) => parts,
        None => Arc::new(document::payload_of(
            record.encoding,
            &reader.body(seq, &record)?,
        )),
    };
    Ok(Some(document::build(fields, seq, &record, &payload)))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::domain::{Delivery, DeliveryId, EventFields, EventType, PayloadEncoding};
    use crate::store::StoreOptions;

    fn ping(n: u32) -> Delivery {
        Delivery {
            id: DeliveryId::parse(&format!("ping-{n}")).unwrap(),
            event: EventType::parse("ping").unwrap(),
            hook_id: None,
            headers: Vec::new(),
            encoding: PayloadEncoding::Json,
            body: format!(r#"{{"zen":"ping number {n}","hook_id":1}}"#).into(),
            fields: EventFields::default(),
            content_key: None,
            received_at_ms: timestamp::now_ms(),
            test: false,
        }
    }

    /// A change committed after the rebuild's target was taken but before the
    /// indexer runs is seen (by the change feed) during the rebuild, and must still
    /// be applied once the rebuild ends, with nothing else arriving to wake it.
    #[tokio::test]
    async fn a_change_made_during_a_rebuild_is_indexed_after_it() {
        let dir = tempfile::tempdir().unwrap();
        let options = StoreOptions::plain(1 << 20);
        let (store, _writer) = Store::open(dir.path(), &options).unwrap();
        for n in 0..3 {
            store.ingest(ping(n)).await.unwrap();
        }
        let (index, checkpoint, _) = SearchIndex::open(dir.path()).unwrap();
        assert_eq!(checkpoint, None, "a new index is built from the store");
        let indexer = Indexer::new(store.clone(), index.clone(), checkpoint).unwrap();
        store.ingest(ping(3)).await.unwrap();

        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let running = tokio::spawn(indexer.run(async {
            let _ = stopped.await;
        }));
        let deadline = Instant::now() + Duration::from_secs(20);
        while index.rebuilding() || index.lag(&store) > 0 {
            assert!(
                Instant::now() < deadline,
                "the index stayed {} change(s) behind",
                index.lag(&store)
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(index.num_docs(), 4);
        let _ = stop.send(());
        running.await.unwrap();
    }
}
