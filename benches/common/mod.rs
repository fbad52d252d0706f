//! Shared by the benches: synthetic deliveries built from the fixtures, each with a
//! fresh delivery id, one of 40 repositories, a receive time spread over the last day,
//! and varied text, stored straight into a [`Store`].

#![allow(dead_code)]

use std::path::Path;
use std::sync::Arc;

use hookvault::domain::{Delivery, DeliveryId, EventFields, EventType, PayloadEncoding};
use hookvault::store::Store;
use serde_json::Value;

/// Words mixed into titles and messages so texts differ between events.
const WORDS: &[&str] = &[
    "flux",
    "capacitor",
    "gateway",
    "parser",
    "cache",
    "ledger",
    "runner",
    "deploy",
    "quota",
    "token",
    "socket",
    "vault",
    "beacon",
    "shard",
    "lambda",
    "kernel",
    "widget",
    "sprocket",
    "matrix",
    "prism",
];

pub fn corpus() -> Vec<(String, Value)> {
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
    all.sort_by(|a, b| a.0.cmp(&b.0));
    all
}

pub fn delivery(corpus: &[(String, Value)], n: u64, now_ms: i64) -> Delivery {
    let (event, template) = &corpus[(n as usize * 7) % corpus.len()];
    let mut payload = template.clone();
    if let Some(repo) = payload.get_mut("repository").and_then(Value::as_object_mut) {
        repo.insert(
            "full_name".into(),
            Value::from(format!("org/repo-{}", n % 40)),
        );
    }
    let word = |k: u64| WORDS[((n / 3 + k) % WORDS.len() as u64) as usize];
    for pointer in [
        "/issue/title",
        "/pull_request/title",
        "/workflow_job/name",
        "/head_commit/message",
    ] {
        if let Some(Value::String(text)) = payload.pointer_mut(pointer) {
            *text = format!("{text} {} {} #{n}", word(0), word(7));
        }
    }
    let received_at_ms = now_ms - (n as i64 * 7_919) % 86_400_000;
    if event == "workflow_job" {
        fleet_job(&mut payload, n, received_at_ms);
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
        received_at_ms,
        test: false,
    }
}

/// Makes a job delivery one of a fleet's: its own job id, a few job names and label
/// sets per repository, completed (so it counts in the Actions insights) with queue
/// and run times spread over the histogram, one in five failing.
fn fleet_job(payload: &mut Value, n: u64, received_at_ms: i64) {
    const LABELS: [&[&str]; 3] = [
        &["self-hosted", "linux", "x64"],
        &["self-hosted", "linux", "arm64"],
        &["ubuntu-latest"],
    ];
    let at = |ms: i64| Value::from(hookvault::domain::timestamp::to_rfc3339(ms));
    let started = received_at_ms - 1_000 - (n as i64 % 1_800) * 1_000;
    let created = started - (n as i64 % 300) * 1_000;
    payload["action"] = Value::from("completed");
    let job = &mut payload["workflow_job"];
    job["id"] = Value::from(n);
    job["run_id"] = Value::from(n / 4);
    // n / 40, not n: the name must not follow from the repository (n % 40).
    job["name"] = Value::from(format!("job-{}", (n / 40) % 4));
    job["labels"] = Value::from(LABELS[(n % 3) as usize]);
    job["status"] = Value::from("completed");
    job["conclusion"] = Value::from(if n % 5 == 0 { "failure" } else { "success" });
    job["created_at"] = at(created);
    job["started_at"] = at(started);
    job["completed_at"] = at(received_at_ms - 1_000);
}

/// Stores deliveries `from..to`, 2,000 in flight at a time (so they group-commit).
pub async fn fill(
    store: &Store,
    corpus: &Arc<Vec<(String, Value)>>,
    from: u64,
    to: u64,
    now_ms: i64,
) {
    let mut next = from;
    while next < to {
        let chunk = (to - next).min(2_000);
        let tasks: Vec<_> = (next..next + chunk)
            .map(|n| {
                let (store, corpus) = (store.clone(), corpus.clone());
                tokio::spawn(
                    async move { store.ingest(delivery(&corpus, n, now_ms)).await.unwrap() },
                )
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
        next += chunk;
    }
}

pub fn dir_size(path: &Path) -> u64 {
    std::fs::read_dir(path)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| {
                    let p = e.path();
                    if p.is_dir() {
                        dir_size(&p)
                    } else {
                        e.metadata().map_or(0, |m| m.len())
                    }
                })
                .sum()
        })
        .unwrap_or(0)
}

pub fn percentiles(mut samples: Vec<f64>) -> (f64, f64) {
    samples.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let at = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize];
    (at(0.5), at(0.99))
}

/// The redb cache of an in-process store: the server's default, or
/// `HOOKVAULT_CACHE_MB` as the server reads it (to compare cache sizes).
pub fn cache_bytes() -> usize {
    std::env::var("HOOKVAULT_CACHE_MB")
        .ok()
        .map_or(hookvault::config::DEFAULT_CACHE_MB, |mb| {
            mb.parse().expect("HOOKVAULT_CACHE_MB")
        })
        << 20
}
