//! The durability promise: a 2xx is sent only after the delivery is on disk. The
//! kill harness runs the binary under concurrent signed load and SIGKILLs it again
//! and again; the ledger of acknowledgements is then checked against the store.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::helpers::{Delivery, SECRET, fixtures, new_id};
use crate::process::{Binary, command};

/// Kills in the CI run; `survives_many_sigkills` (ignored, run by hand) does more.
const CI_KILLS: usize = 20;
const FULL_KILLS: usize = 60;

#[tokio::test]
async fn every_acknowledged_delivery_survives_repeated_sigkill() {
    kill_harness(CI_KILLS).await;
}

/// The full crash run: `cargo test --test api survives_many_sigkills -- --ignored`.
#[tokio::test]
#[ignore = "about a minute; the CI run kills 20 times"]
async fn survives_many_sigkills() {
    kill_harness(FULL_KILLS).await;
}

/// What the load was told was stored: delivery id → index of the fixture sent.
type Ledger = HashMap<String, usize>;

/// Runs hookvault under concurrent signed load, SIGKILLs it at a random moment,
/// restarts it on the same data dir, `kills` times; then checks the ledger against
/// the store: every acknowledged delivery present with its exact body and headers,
/// no delivery id twice, counters recount exactly (`hookvault verify`), and the
/// search index catches up to the same count.
async fn kill_harness(kills: usize) {
    let dir = tempfile::tempdir().unwrap();
    let start = || {
        let mut cmd = command(dir.path());
        // The default dedup window: content duplicates are acknowledged too, and
        // must be findable like every other acknowledged delivery. Small log
        // segments, so kills also fall while applied segments are deleted.
        cmd.env("GITHUB_WEBHOOK_SECRET", SECRET)
            .env("HOOKVAULT_LOG_SEGMENT_KB", "64");
        Binary::start(cmd)
    };
    let corpus: Arc<Vec<(String, Vec<u8>)>> =
        Arc::new(fixtures().into_iter().map(|f| (f.event, f.bytes)).collect());
    let ledger: Arc<Mutex<Ledger>> = Arc::default();
    let client = crate::helpers::client_builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();

    for round in 0..kills {
        let mut binary = start();
        // Up to past the store's durable commit (every second), so kills fall
        // before, during and after one.
        let lifetime = Duration::from_millis(rand::random_range(50..1500));
        let killed_at = Instant::now() + lifetime;
        let workers: Vec<_> = (0..16)
            .map(|worker| {
                let url = format!("{}/api/webhooks/github", binary.address);
                let (client, ledger, corpus) = (client.clone(), ledger.clone(), corpus.clone());
                tokio::spawn(send_until_refused(url, client, ledger, corpus, worker))
            })
            .collect();
        tokio::time::sleep_until(killed_at.into()).await;
        binary.child.kill().unwrap(); // SIGKILL: mid-write, no chance to flush anything
        binary.child.wait().unwrap();
        for worker in workers {
            worker.await.unwrap();
        }
        eprintln!(
            "kill {}/{kills} after {lifetime:?}: {} deliveries acknowledged so far",
            round + 1,
            ledger.lock().unwrap().len()
        );
    }
    let ledger = ledger.lock().unwrap().clone();
    assert!(
        ledger.len() > kills * 10,
        "too little load: {}",
        ledger.len()
    );
    assert!(
        CONTENT_DUPLICATES.load(std::sync::atomic::Ordering::Relaxed) > 0,
        "the load had no content duplicate to check"
    );

    // The search index follows the store's change log: it catches up after the kills.
    let binary = start();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let found: serde_json::Value = client
            .get(format!("{}/api/webhooks/search?q=&limit=1", binary.address))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let stored: serde_json::Value = client
            .get(format!("{}/api/webhooks/events?limit=1", binary.address))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if found["data"]["total"] == stored["pagination"]["total"] && found["data"]["indexLag"] == 0
        {
            assert!(stored["pagination"]["total"].as_u64().unwrap() >= ledger.len() as u64);
            break;
        }
        assert!(
            Instant::now() < deadline,
            "index stuck: {found} vs {stored}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    binary.terminate();

    // Everything stored, from the export: each acknowledged delivery exactly once,
    // content duplicates included, with the body and headers that were sent.
    let export = dir.path().join("export.ndjson");
    let status = command(dir.path())
        .args(["export", "--output"])
        .arg(&export)
        .status()
        .unwrap();
    assert!(status.success());
    let mut stored: HashMap<String, hookvault::transfer::Line> = HashMap::new();
    for line in std::fs::read_to_string(&export).unwrap().lines() {
        let line: hookvault::transfer::Line = serde_json::from_str(line).unwrap();
        let id = line.delivery_id.clone();
        assert!(
            stored.insert(id.clone(), line).is_none(),
            "{id} stored twice"
        );
    }
    for (id, n) in &ledger {
        let line = stored
            .get(id)
            .unwrap_or_else(|| panic!("acknowledged {id} was lost"));
        let (event, sent) = &corpus[*n];
        let body = match &line.raw_body {
            Some(raw) => raw.clone().into_bytes(),
            None => serde_json::to_vec(&line.payload).unwrap(),
        };
        assert_eq!(&body, sent, "{id} changed");
        let expected = Delivery::new(event, id, sent);
        for (name, value) in &expected.headers {
            assert_eq!(
                line.headers.get(&name.to_ascii_lowercase()),
                Some(value),
                "{id}: header {name}"
            );
        }
    }

    // Applied segments went: the first one is gone.
    let first_left = std::fs::read_dir(dir.path().join("log"))
        .unwrap()
        .filter_map(|e| {
            e.unwrap()
                .file_name()
                .to_str()?
                .strip_suffix(".log")?
                .parse::<u64>()
                .ok()
        })
        .min()
        .unwrap();
    assert!(first_left > 1, "no applied log segment was ever deleted");

    // Counters and index entries recount to what they say.
    let output = command(dir.path()).arg("verify").output().unwrap();
    assert!(
        output.status.success(),
        "verify after {kills} kills: {}",
        String::from_utf8_lossy(&output.stdout)
    );
}

/// Content duplicates acknowledged (another hook's copy, within the dedup window).
static CONTENT_DUPLICATES: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// One load worker: new deliveries, and now and then GitHub's redelivery of one
/// already acknowledged (which must come back `duplicate`), until the process dies.
async fn send_until_refused(
    url: String,
    client: reqwest::Client,
    ledger: Arc<Mutex<Ledger>>,
    corpus: Arc<Vec<(String, Vec<u8>)>>,
    worker: usize,
) {
    let mut i = worker;
    loop {
        let redelivery = if i % 10 == 0 {
            ledger
                .lock()
                .unwrap()
                .iter()
                .next()
                .map(|(id, n)| (id.clone(), *n))
        } else {
            None
        };
        let (id, n) = redelivery
            .clone()
            .unwrap_or_else(|| (new_id(), i % corpus.len()));
        i += 16;
        let (event, body) = &corpus[n];
        let delivery = Delivery::new(event, &id, body);
        let mut request = client.post(&url);
        for (name, value) in &delivery.headers {
            request = request.header(name.as_str(), value.as_str());
        }
        let Ok(response) = request.body(delivery.body).send().await else {
            return; // the process is gone
        };
        assert!(response.status().is_success(), "{}", response.status());
        let Ok(answer) = response.json::<serde_json::Value>().await else {
            return;
        };
        let outcome = answer["data"]["status"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        if redelivery.is_some() {
            assert_eq!(
                outcome, "duplicate",
                "a redelivery of {id} was stored again"
            );
        } else {
            assert!(
                outcome == "stored" || outcome == "duplicate",
                "{id}: {answer}"
            );
            if outcome == "duplicate" {
                CONTENT_DUPLICATES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
            ledger.lock().unwrap().insert(id, n);
        }
    }
}

#[tokio::test]
async fn a_clean_stop_leaves_no_repair_work_and_a_caught_up_index() {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = command(dir.path());
    cmd.env("GITHUB_WEBHOOK_SECRET", SECRET)
        .env("WEBHOOK_DEDUP_TTL", "0");
    let binary = Binary::start(cmd);
    let client = crate::helpers::client();
    for fixture in fixtures().iter().take(40) {
        let delivery = Delivery::new(&fixture.event, &new_id(), &fixture.bytes);
        let mut request = client.post(format!("{}/api/webhooks/github", binary.address));
        for (name, value) in &delivery.headers {
            request = request.header(name.as_str(), value.as_str());
        }
        assert!(
            request
                .body(delivery.body)
                .send()
                .await
                .unwrap()
                .status()
                .is_success()
        );
    }
    let (_, stderr) = binary.terminate(); // SIGTERM; asserts exit code 0
    assert!(stderr.contains("closing the store"), "{stderr}");

    // redb calls the repair callback only when the file was not closed cleanly.
    let repaired = std::rc::Rc::new(std::cell::Cell::new(false));
    let flag = repaired.clone();
    let db = redb::Database::builder()
        .set_repair_callback(move |_| flag.set(true))
        .open(dir.path().join(hookvault::store::DB_FILE))
        .unwrap();
    assert!(!repaired.get(), "a clean stop needs no repair");
    drop(db);

    // The final search commit covers every change the store committed.
    let (store, writer) = crate::helpers::open_store(dir.path());
    let (_, checkpoint, _) = hookvault::search::SearchIndex::open(dir.path()).unwrap();
    assert_eq!(
        checkpoint,
        Some(store.last_change()),
        "index committed up to the last change"
    );
    drop(store);
    writer.join();
}
