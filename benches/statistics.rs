//! Statistics latency against the number of stored events: the endpoint reads
//! materialized counters, so 10k and 1M events should cost the same.
//!
//! ```text
//! cargo bench --bench statistics [-- --events 1000000]
//! ```
//! Stores synthetic deliveries (fixtures with fresh ids, spread over the last 24 hours
//! and 40 repositories) straight into the store, processes them, and times
//! `Store::statistics(24 h)` at each checkpoint (10k, 100k, then every million).

use std::path::Path;
use std::time::{Duration, Instant};

use hookvault::domain::{Delivery, DeliveryId, EventFields, EventType, PayloadEncoding, timestamp};
use hookvault::process::{Processor, RetryPolicy};
use hookvault::store::{Store, StoreOptions};
use serde_json::Value;

fn corpus() -> Vec<(String, Value)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures");
    let mut all = Vec::new();
    for dir in std::fs::read_dir(root)
        .unwrap()
        .flatten()
        .filter(|d| d.path().is_dir())
    {
        let event = dir.file_name().to_string_lossy().into_owned();
        for file in std::fs::read_dir(dir.path()).unwrap().flatten() {
            let payload: Value =
                serde_json::from_slice(&std::fs::read(file.path()).unwrap()).unwrap();
            all.push((event.clone(), payload));
        }
    }
    all
}

fn delivery(corpus: &[(String, Value)], n: u64, now_ms: i64) -> Delivery {
    let (event, template) = &corpus[n as usize % corpus.len()];
    let mut payload = template.clone();
    if let Some(repo) = payload.get_mut("repository").and_then(Value::as_object_mut) {
        repo.insert(
            "full_name".into(),
            Value::from(format!("org/repo-{}", n % 40)),
        );
    }
    let body = serde_json::to_vec(&payload).unwrap();
    Delivery {
        id: DeliveryId::parse(&format!("bench-{n}")).unwrap(),
        event: EventType::parse(event).unwrap(),
        hook_id: None,
        headers: vec![("x-github-event".into(), event.clone())],
        encoding: PayloadEncoding::Json,
        fields: EventFields::extract(&payload),
        body: body.into(),
        content_key: None,
        received_at_ms: now_ms - (n as i64 * 7_919) % 86_400_000,
        test: false,
    }
}

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

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let target: u64 = args
        .iter()
        .position(|a| a == "--events")
        .and_then(|i| args.get(i + 1))
        .map_or(1_000_000, |v| v.parse().unwrap());
    let dir = tempfile::tempdir().unwrap();
    let options = StoreOptions {
        cache_bytes: 64 << 20,
        dedup_ttl: Duration::ZERO,
    };
    let (store, writer) = Store::open(dir.path(), &options).unwrap();
    let policy = RetryPolicy {
        max_retries: 0,
        base: Duration::from_secs(1),
        cap: Duration::from_secs(1),
    };
    let processor = Processor::new(store.clone(), vec![], policy);
    let corpus = std::sync::Arc::new(corpus());
    let now_ms = timestamp::now_ms();
    let mut checkpoints = vec![10_000u64, 100_000];
    checkpoints.extend((1..).map(|m| m * 1_000_000).take_while(|c| *c <= target));
    checkpoints.retain(|c| *c <= target);

    let mut stored = 0u64;
    let started = Instant::now();
    println!("| stored events | statistics p50 | statistics p99 | ingest+process rate |");
    println!("| --- | --- | --- | --- |");
    for checkpoint in checkpoints {
        while stored < checkpoint {
            let chunk = (checkpoint - stored).min(2_000);
            let tasks: Vec<_> = (stored..stored + chunk)
                .map(|n| {
                    let (store, corpus) = (store.clone(), corpus.clone());
                    tokio::spawn(async move {
                        store.ingest(delivery(&corpus, n, now_ms)).await.unwrap()
                    })
                })
                .collect();
            for task in tasks {
                task.await.unwrap();
            }
            stored += chunk;
            while processor.run_once().await.unwrap() > 0 {}
        }
        let rate = stored as f64 / started.elapsed().as_secs_f64();
        let (p50, p99) = time_statistics(&store, now_ms).await;
        println!("| {stored} | {p50:.3} ms | {p99:.3} ms | {rate:.0}/s |");
    }
    drop((processor, store));
    writer.join();
}
