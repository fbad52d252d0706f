//! `verify` finds no difference after random workloads (ingest, both kinds of
//! duplicate, failures, automatic retries, replays, bulk retries), and finds the one
//! counter that was tampered with.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use hookvault::ingest::Payload;
use hookvault::process::{Processor, RetryPolicy, Stage};
use hookvault::store::{EventRecord, Store, StoreOptions};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::helpers::{delivery, fixtures};
use crate::process::command;

struct Switch(AtomicBool);

impl Stage for Switch {
    fn process(&self, _: &EventRecord, _: &Payload) -> Result<(), String> {
        if self.0.load(Ordering::SeqCst) {
            Err("target down".into())
        } else {
            Ok(())
        }
    }
}

/// Runs `steps` random operations against a store in `dir`.
async fn random_workload(dir: &std::path::Path, seed: u64, steps: usize) {
    let mut rng = StdRng::seed_from_u64(seed);
    let corpus = fixtures();
    let options = StoreOptions {
        cache_bytes: 4 << 20,
        dedup_ttl: Duration::from_secs(60),
        on_commit: None,
        on_append: None,
        log_segment_bytes: hookvault::log::SEGMENT_BYTES,
        cluster: false,
    };
    let (store, writer) = Store::open(dir, &options).unwrap();
    let switch = Arc::new(Switch(AtomicBool::new(false)));
    let policy = RetryPolicy {
        max_retries: 2,
        base: Duration::from_millis(1),
        cap: Duration::from_millis(4),
    };
    let processor = Processor::new(store.clone(), vec![switch.clone()], policy);
    let mut ids: Vec<String> = Vec::new();

    for _ in 0..steps {
        match rng.random_range(0..10) {
            // A new delivery; the same fixture twice is a content duplicate.
            0..=3 => {
                let fixture = &corpus[rng.random_range(0..corpus.len())];
                let d = delivery(&fixture.event, &fixture.bytes);
                ids.push(d.id.to_string());
                store.ingest(d).await.unwrap();
            }
            // A broken payload of a known type: fails its structure check.
            4 => {
                let d = delivery(
                    "issues",
                    format!(r#"{{"n":{}}}"#, rng.random::<u32>()).as_bytes(),
                );
                ids.push(d.id.to_string());
                store.ingest(d).await.unwrap();
            }
            // A redelivery of a known id.
            5 if !ids.is_empty() => {
                let id = &ids[rng.random_range(0..ids.len())];
                if let Some(stored) = store.get(id.clone()).await.unwrap() {
                    let mut d = delivery(&stored.record.origin.event, &stored.body);
                    d.id = hookvault::domain::DeliveryId::parse(id).unwrap();
                    store.ingest(d).await.unwrap();
                }
            }
            6 => {
                processor.run_once().await.unwrap();
            }
            7 if !ids.is_empty() => {
                processor
                    .replay(&ids[rng.random_range(0..ids.len())])
                    .await
                    .unwrap();
            }
            8 => {
                processor
                    .retry_failed(&hookvault::domain::Visibility::All)
                    .await
                    .unwrap();
            }
            _ => {
                switch.0.fetch_xor(true, Ordering::SeqCst);
            }
        }
        if rng.random_bool(0.05) {
            tokio::time::sleep(Duration::from_millis(3)).await; // let retries fall due
        }
    }
    processor.run_once().await.unwrap();
    let differences = store.verify().await.unwrap();
    assert!(differences.is_empty(), "seed {seed}: {differences:#?}");
    drop((processor, store));
    writer.join();
}

#[tokio::test]
async fn random_workloads_leave_counters_exactly_consistent() {
    for seed in 1..=6 {
        let dir = tempfile::tempdir().unwrap();
        random_workload(dir.path(), seed, 150).await;
    }
}

#[tokio::test]
async fn the_verify_command_passes_then_catches_a_tampered_counter() {
    let dir = tempfile::tempdir().unwrap();
    random_workload(dir.path(), 42, 80).await;

    let output = command(dir.path())
        .env("GITHUB_WEBHOOK_SECRET", "s")
        .arg("verify")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains("matches"), "{stdout}");

    // Nudge one hourly counter behind hookvault's back.
    {
        let db = redb::Database::create(dir.path().join("hookvault.redb")).unwrap();
        let table: redb::TableDefinition<(i64, &str, &str), i64> =
            redb::TableDefinition::new("hourly_v1");
        let txn = db.begin_write().unwrap();
        {
            use redb::ReadableTable;
            let mut hourly = txn.open_table(table).unwrap();
            let (key, value) = {
                let (k, v) = hourly.first().unwrap().unwrap();
                let (hour, event, metric) = k.value();
                ((hour, event.to_owned(), metric.to_owned()), v.value())
            };
            hourly
                .insert((key.0, key.1.as_str(), key.2.as_str()), value + 1)
                .unwrap();
        }
        txn.commit().unwrap();
    }
    let output = command(dir.path())
        .env("GITHUB_WEBHOOK_SECRET", "s")
        .arg("verify")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("1 difference"), "{stdout}");
}
