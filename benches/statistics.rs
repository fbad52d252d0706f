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
//! `common::fleet_job`): 40 repositories × 4 job names × 3 label sets. The insights
//! are timed asked again and again, then each time after one more job was stored.

#[path = "common/mod.rs"]
mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use hookvault::domain::timestamp;
use hookvault::process::{Processor, RetryPolicy};
use hookvault::store::{IngestOutcome, Store, StoreOptions};

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
/// store's read of the window and the answer built from it (JSON text). Returns the
/// whole answer's p50 and p99, the first answer's time, the p50 of the read and of
/// the answer alone, and the groups.
async fn time_insights(store: &Store, now_ms: i64) -> Insights {
    let mut samples = Vec::new();
    let mut reads = Vec::new();
    let mut answers = Vec::new();
    let mut groups = 0;
    for _ in 0..200 {
        let started = Instant::now();
        let cells = store.actions_insights(now_ms, 24).await.unwrap();
        let read = started.elapsed();
        let answer = hookvault::api::actions_insights(cells, 24, &Default::default());
        let total = started.elapsed();
        samples.push(total);
        reads.push(read);
        answers.push(total - read);
        let answer: serde_json::Value = serde_json::from_str(&answer).unwrap();
        groups = answer["groups"].as_array().map_or(0, Vec::len);
        assert!(answer["totals"]["count"].as_i64().unwrap() > 0);
    }
    let first = samples[0];
    for list in [&mut samples, &mut reads, &mut answers] {
        list.sort();
    }
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    Insights {
        p50: ms(samples[100]),
        p99: ms(samples[197]),
        read_p50: ms(reads[100]),
        answer_p50: ms(answers[100]),
        first: ms(first),
        groups,
    }
}

/// The same answer, each time after one more completed job of the fleet was stored
/// and applied (not timed): its group's sums changed, so the answer is written again
/// (the other groups' lines are kept). Deliveries `from..` of the corpus that are
/// job deliveries; returns p50 and p99, and the next unused delivery number.
async fn time_insights_changed(
    store: &Store,
    corpus: &[(String, serde_json::Value)],
    mut next: u64,
    now_ms: i64,
) -> (f64, f64, u64) {
    let mut samples = Vec::new();
    let mut last_count = 0;
    for _ in 0..200 {
        let delivery = loop {
            let delivery = common::delivery(corpus, next, now_ms);
            next += 1;
            // A job of the fleet completing well inside the window.
            if delivery.event.as_str() == "workflow_job"
                && delivery.received_at_ms > now_ms - 20 * 3_600_000
            {
                break delivery;
            }
        };
        if let IngestOutcome::Stored { seq } = store.ingest(delivery).await.unwrap() {
            store.applied(seq).await.unwrap();
        }
        let started = Instant::now();
        let cells = store.actions_insights(now_ms, 24).await.unwrap();
        let answer = hookvault::api::actions_insights(cells, 24, &Default::default());
        samples.push(started.elapsed());
        let answer: serde_json::Value = serde_json::from_str(&answer).unwrap();
        let count = answer["totals"]["count"].as_i64().unwrap();
        assert!(count > last_count, "the answer has the new job");
        last_count = count;
    }
    samples.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    (ms(samples[100]), ms(samples[197]), next)
}

struct Insights {
    p50: f64,
    p99: f64,
    read_p50: f64,
    answer_p50: f64,
    /// The first of the 200: the window summed from the hourly rows if it was not
    /// kept yet (see `store::actions::windows`).
    first: f64,
    groups: usize,
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
    let mut changed = 1u64 << 40;
    let started = Instant::now();
    println!(
        "| stored events | statistics p50 | statistics p99 | actions insights p50 | p99 (groups) | first | read / answer p50 | after a change p50 / p99 | ingest+process rate |"
    );
    println!("| --- | --- | --- | --- | --- | --- | --- | --- | --- |");
    for checkpoint in checkpoints {
        while stored < checkpoint {
            let chunk = (checkpoint - stored).min(2_000);
            common::fill(&store, &corpus, stored, stored + chunk, now_ms).await;
            stored += chunk;
            while processor.run_once().await.unwrap() > 0 {}
        }
        let rate = stored as f64 / started.elapsed().as_secs_f64();
        let (p50, p99) = time_statistics(&store, now_ms).await;
        let a = time_insights(&store, now_ms).await;
        // Job deliveries numbered past every checkpoint's, received in the window.
        let (c50, c99, next) = time_insights_changed(&store, &corpus, changed, now_ms).await;
        changed = next;
        println!(
            "| {stored} | {p50:.3} ms | {p99:.3} ms | {:.3} ms | {:.3} ms ({}) | {:.3} ms | {:.3} / {:.3} ms | {c50:.3} / {c99:.3} ms | {rate:.0}/s |",
            a.p50, a.p99, a.groups, a.first, a.read_p50, a.answer_p50
        );
    }
    drop((processor, store));
    writer.join();
}
