//! Statistics latency against the number of stored events: the endpoint reads
//! materialized counters, so 10k and 1M events should cost the same.
//!
//! ```text
//! cargo bench --bench statistics [-- --events 1000000]
//! ```
//! Stores synthetic deliveries (fixtures with fresh ids, spread over the last 24 hours
//! and 40 repositories) straight into the store, processes them, and times
//! `Store::statistics(24 h)` and the Actions insights of 24 h at each checkpoint
//! (10k, 100k, then every million). Job deliveries are made a fleet's (see
//! `common::fleet_job`): 40 repositories × 4 job names × 3 label sets.

#[path = "common/mod.rs"]
mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use hookvault::domain::timestamp;
use hookvault::process::{Processor, RetryPolicy};
use hookvault::store::{Store, StoreOptions};

async fn time_statistics(store: &Store, now_ms: i64) -> (f64, f64) {
    let mut samples = Vec::new();
    for _ in 0..200 {
        let started = Instant::now();
        let stats = store.statistics(now_ms, 24).await.unwrap();
        samples.push(started.elapsed());
        assert!(stats.summary.total > 0);
    }
    samples.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    (ms(samples[100]), ms(samples[197]))
}

/// The Actions insights of the last 24 h: what `GET /api/actions/insights` does, the
/// store's read of the window's hourly rows and the answer built from them.
async fn time_insights(store: &Store, now_ms: i64) -> (f64, f64, usize) {
    let mut samples = Vec::new();
    let mut groups = 0;
    for _ in 0..200 {
        let started = Instant::now();
        let cells = store.actions_insights(now_ms, 24).await.unwrap();
        let answer = hookvault::api::actions_insights(cells, 24, None, None, None);
        samples.push(started.elapsed());
        groups = answer["groups"].as_array().map_or(0, Vec::len);
        assert!(answer["totals"]["count"].as_i64().unwrap() > 0);
    }
    samples.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    (ms(samples[100]), ms(samples[197]), groups)
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let target: u64 = args
        .iter()
        .position(|a| a == "--events")
        .and_then(|i| args.get(i + 1))
        .map_or(1_000_000, |v| v.parse().unwrap());
    let dir = tempfile::tempdir().unwrap();
    let options = StoreOptions::plain(common::cache_bytes());
    let (store, writer) = Store::open(dir.path(), &options).unwrap();
    let policy = RetryPolicy {
        max_retries: 0,
        base: Duration::from_secs(1),
        cap: Duration::from_secs(1),
    };
    let processor = Processor::new(store.clone(), vec![], policy);
    let corpus = Arc::new(common::corpus());
    let now_ms = timestamp::now_ms();
    let mut checkpoints = vec![10_000u64, 100_000];
    checkpoints.extend((1..).map(|m| m * 1_000_000).take_while(|c| *c <= target));
    checkpoints.retain(|c| *c <= target);

    let mut stored = 0u64;
    let started = Instant::now();
    println!(
        "| stored events | statistics p50 | statistics p99 | actions insights p50 | p99 (groups) | ingest+process rate |"
    );
    println!("| --- | --- | --- | --- | --- | --- |");
    for checkpoint in checkpoints {
        while stored < checkpoint {
            let chunk = (checkpoint - stored).min(2_000);
            common::fill(&store, &corpus, stored, stored + chunk, now_ms).await;
            stored += chunk;
            while processor.run_once().await.unwrap() > 0 {}
        }
        let rate = stored as f64 / started.elapsed().as_secs_f64();
        let (p50, p99) = time_statistics(&store, now_ms).await;
        let (a50, a99, groups) = time_insights(&store, now_ms).await;
        println!(
            "| {stored} | {p50:.3} ms | {p99:.3} ms | {a50:.3} ms | {a99:.3} ms ({groups}) | {rate:.0}/s |"
        );
    }
    drop((processor, store));
    writer.join();
}
