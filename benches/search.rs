//! Search at scale: index size per event, indexing rate, and query latency (p50/p99)
//! for a rare term, a broad term, a phrase and a filtered query, snippets included.
//!
//! ```text
//! cargo bench --bench search [-- --events 1000000] [--data-dir DIR] [--queries 100]
//!                             [--only broad]
//! ```
//! With `--data-dir`, the store and index are kept there and a later run with the
//! same directory only queries (to compare two builds on the same index).
//! Also measures what a JSON field over the whole payload would cost on disk.

#[path = "common/mod.rs"]
mod common;

use std::sync::Arc;
use std::time::Instant;

use hookvault::domain::timestamp;
use hookvault::search::{Indexer, SearchIndex, SearchRequest, SortOrder};
use hookvault::store::{Store, StoreOptions};

fn time_query(
    index: &SearchIndex,
    store: &Store,
    request: &SearchRequest,
    runs: usize,
) -> (f64, f64, usize) {
    let mut samples = Vec::new();
    let mut total = 0;
    for _ in 0..runs {
        let started = Instant::now();
        let results = index.search_blocking(store, request).unwrap();
        samples.push(started.elapsed().as_secs_f64() * 1000.0);
        total = results.total;
    }
    let (p50, p99) = common::percentiles(samples);
    (p50, p99, total)
}

/// On-disk size per document of a tantivy index holding only the raw payload as a
/// JSON field, for `count` synthetic events.
fn json_field_cost(corpus: &[(String, serde_json::Value)], count: u64) -> f64 {
    use tantivy::schema::{JsonObjectOptions, Schema, TextFieldIndexing};
    let dir = tempfile::tempdir().unwrap();
    let mut builder = Schema::builder();
    let options = JsonObjectOptions::default().set_indexing_options(TextFieldIndexing::default());
    let payload = builder.add_json_field("payload", options);
    let index = tantivy::Index::create_in_dir(dir.path(), builder.build()).unwrap();
    let mut writer: tantivy::IndexWriter = index.writer_with_num_threads(1, 64 << 20).unwrap();
    for n in 0..count {
        let delivery = common::delivery(corpus, n, 0);
        let value: serde_json::Value = serde_json::from_slice(&delivery.body).unwrap();
        let mut doc = tantivy::TantivyDocument::default();
        doc.add_field_value(payload, &tantivy::schema::OwnedValue::from(value));
        writer.add_document(doc).unwrap();
    }
    writer.commit().unwrap();
    common::dir_size(dir.path()) as f64 / count as f64
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let events: u64 = args
        .iter()
        .position(|a| a == "--events")
        .and_then(|i| args.get(i + 1))
        .map_or(1_000_000, |v| v.parse().unwrap());
    // Fewer runs make a run under callgrind (instruction counts, which a shared
    // machine's noise does not move) take minutes, not hours.
    let runs: usize = args
        .iter()
        .position(|a| a == "--queries")
        .and_then(|i| args.get(i + 1))
        .map_or(100, |v| v.parse().unwrap());
    let kept = args
        .iter()
        .position(|a| a == "--data-dir")
        .and_then(|i| args.get(i + 1))
        .map(std::path::PathBuf::from);
    // `--only broad` runs the queries whose name starts so (to profile one alone).
    let only = args
        .iter()
        .position(|a| a == "--only")
        .and_then(|i| args.get(i + 1))
        .cloned()
        .unwrap_or_default();
    let temp = tempfile::tempdir().unwrap();
    let dir = kept.as_deref().unwrap_or(temp.path());
    let options = StoreOptions::plain(common::cache_bytes());
    let (store, writer) = Store::open(dir, &options).unwrap();
    let corpus = Arc::new(common::corpus());
    let now_ms = timestamp::now_ms();
    let started = Instant::now();
    // A kept directory that already holds a store is only queried.
    let fresh = store.last_change() == 0;
    if fresh {
        common::fill(&store, &corpus, 0, events, now_ms).await;
    }
    let stored_in = started.elapsed().as_secs_f64();
    let raw_bytes: u64 = (0..events.min(20_000))
        .map(|n| common::delivery(&corpus, n, 0).body.len() as u64)
        .sum::<u64>()
        * events
        / events.min(20_000);

    let (index, checkpoint, _) = SearchIndex::open(dir).unwrap();
    let mut indexer = Indexer::new(store.clone(), index.clone(), checkpoint).unwrap();
    let started = Instant::now();
    indexer.catch_up(|_, _| {}).await.unwrap();
    let indexed_in = started.elapsed().as_secs_f64();
    let reindexed = checkpoint.is_none_or(|applied| applied < store.last_change());
    let index_bytes = common::dir_size(&SearchIndex::dir(dir));
    let store_bytes = common::dir_size(dir) - index_bytes;

    println!(
        "events: {events}; raw JSON {:.0} B/event",
        raw_bytes as f64 / events as f64
    );
    let rate = |done: bool, seconds: f64| {
        if done {
            format!("{:.0} events/s", events as f64 / seconds)
        } else {
            "kept".to_owned()
        }
    };
    println!(
        "store: {:.0} B/event ({} stored); index: {:.0} B/event ({} indexed); \
         store+index = {:.2} x raw",
        store_bytes as f64 / events as f64,
        rate(fresh, stored_in),
        index_bytes as f64 / events as f64,
        rate(reindexed, indexed_in),
        (store_bytes + index_bytes) as f64 / raw_bytes as f64,
    );
    let queries = [
        ("rare term", "capacitor AND quota", None),
        ("broad term", "readme", None),
        ("phrase", "\"Update the README with new information\"", None),
        ("filtered", "flux", Some("workflow_job")),
    ];
    println!("| query | q | hits | p50 | p99 |");
    println!("| --- | --- | --- | --- | --- |");
    let (index2, store2) = (index.clone(), store.clone());
    tokio::task::spawn_blocking(move || {
        for (name, q, event) in queries.into_iter().filter(|(n, ..)| n.starts_with(&only)) {
            let request = SearchRequest {
                q: q.into(),
                event: event.map(str::to_owned),
                limit: 20,
                sort: SortOrder::Relevance,
                ..Default::default()
            };
            let (p50, p99, total) = time_query(&index2, &store2, &request, runs);
            println!(
                "| {name} | `{q}`{} | {total} | {p50:.2} ms | {p99:.2} ms |",
                event.map_or(String::new(), |e| format!(" + event={e}"))
            );
        }
    })
    .await
    .unwrap();
    if kept.is_none() {
        println!(
            "a JSON field over the whole payload alone would take {:.0} B/event (20,000 events)",
            json_field_cost(&corpus, events.min(20_000))
        );
    }
    drop((indexer, index, store));
    writer.join();
}
