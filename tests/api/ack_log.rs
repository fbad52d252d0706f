//! The acknowledgement log: an acknowledged delivery is readable at once, a crash
//! between the log and the store's durable commit loses nothing (the log's tail is
//! applied again), a torn tail is cut off, corruption before it stops startup, and
//! health and metrics show how far the store lags behind the log.

use std::collections::HashSet;
use std::io::Write;
use std::sync::Arc;

use reqwest::StatusCode;

use crate::helpers::{Delivery, SECRET, TestApp, fixtures, new_id};
use crate::process::{Binary, command};

/// A delivery is answered once the log has it, not once the store has applied it,
/// and it is readable from then on: the store writer is held in its first commit's
/// observer (a warm-up delivery's) until the reads are done, so they come while the
/// deliveries are only in the log, however slow the machine.
#[tokio::test]
async fn the_ack_does_not_wait_for_the_store_and_the_tail_is_readable() {
    use hookvault::store::{IngestOutcome, Store, StoreOptions};
    use std::sync::{Condvar, Mutex};
    use std::time::Duration;

    // (the writer is held, it may go on)
    let gate = Arc::new((Mutex::new((false, false)), Condvar::new()));
    let dir = tempfile::tempdir().unwrap();
    let options = StoreOptions {
        cache_bytes: 1 << 20,
        dedup_ttl: Duration::from_secs(60),
        on_commit: Some(Arc::new({
            let gate = gate.clone();
            move |_, _| {
                let (state, changed) = &*gate;
                let mut state = state.lock().unwrap();
                state.0 = true;
                changed.notify_all();
                while !state.1 {
                    state = changed.wait(state).unwrap();
                }
            }
        })),
        on_append: None,
        log_segment_bytes: hookvault::log::SEGMENT_BYTES,
        cluster: false,
    };
    let (store, writer) = Store::open(dir.path(), &options).unwrap();
    let warm_up = crate::helpers::delivery("ping", &crate::helpers::fixture("ping", 0).bytes);
    store.ingest(warm_up).await.unwrap();
    while !gate.0.lock().unwrap().0 {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let push = crate::helpers::fixture("push", 0).bytes;
    let first = crate::helpers::delivery("push", &push);
    let first_id = first.id.to_string();
    let IngestOutcome::Stored { seq } = store.ingest(first).await.unwrap() else {
        panic!("a new delivery is stored")
    };
    // The same content under another id: a content duplicate of one still unapplied.
    let copy = crate::helpers::delivery("push", &push);
    assert!(copy.content_key.is_some());
    let copy_id = copy.id.to_string();
    let copied = store.ingest(copy).await.unwrap();
    assert!(
        store.log_progress().lag() >= 2,
        "the store had applied them already: nothing was read from the tail"
    );
    assert!(
        matches!(
            copied,
            IngestOutcome::Duplicate { reason: hookvault::store::DuplicateReason::Content { of: Some(ref of) }, .. } if *of == first_id
        ),
        "{copied:?}"
    );
    let found = store
        .get(first_id.clone())
        .await
        .unwrap()
        .expect("found by delivery id");
    assert_eq!(found.seq, seq);
    assert_eq!(found.body, push);
    assert_eq!(
        store
            .get_seq(seq)
            .await
            .unwrap()
            .unwrap()
            .record
            .origin
            .delivery_id,
        first_id
    );
    let duplicate = store
        .get(copy_id)
        .await
        .unwrap()
        .expect("the duplicate too");
    assert_eq!(duplicate.record.status, hookvault::store::Status::Duplicate);
    assert_eq!(duplicate.duplicate_of.as_deref(), Some(first_id.as_str()));
    assert_eq!(duplicate.body, push);
    // Once applied, the same answers come from redb.
    gate.0.lock().unwrap().1 = true;
    gate.1.notify_all();
    store.applied(seq + 1).await.unwrap();
    assert_eq!(store.log_progress().lag(), 0);
    let applied = store.get(first_id).await.unwrap().unwrap();
    assert_eq!((applied.seq, applied.body), (found.seq, found.body));
    drop(store);
    writer.join();
}

/// Each delivery's 200 comes only once a reader can find it.
#[tokio::test]
async fn every_acknowledged_delivery_is_readable_at_once() {
    let app = Arc::new(TestApp::spawn().await);
    let corpus: Arc<Vec<(String, Vec<u8>)>> =
        Arc::new(fixtures().into_iter().map(|f| (f.event, f.bytes)).collect());
    let workers = (0..32).map(|worker| {
        let (app, corpus) = (app.clone(), corpus.clone());
        tokio::spawn(async move {
            let mut missing = Vec::new();
            for i in 0..1000 / 32 + usize::from(worker < 1000 % 32) {
                let (event, body) = &corpus[(worker * 31 + i) % corpus.len()];
                let id = new_id();
                // Read back at once, before the store has applied it (mostly).
                let delivery = Delivery::new(event, &id, body);
                let (status, answer) = app.post_unapplied(delivery).await;
                assert_eq!(status, StatusCode::OK, "{answer}");
                let raw = app
                    .client
                    .get(app.url(&format!("/api/webhooks/events/{id}/raw")))
                    .send()
                    .await
                    .unwrap();
                let found = raw.status();
                if found != StatusCode::OK || raw.bytes().await.unwrap() != body.as_slice() {
                    missing.push(id);
                }
            }
            missing
        })
    });
    let mut missing = Vec::new();
    for worker in workers {
        missing.extend(worker.await.unwrap());
    }
    assert!(
        missing.is_empty(),
        "{} not found after their 200: {missing:?}",
        missing.len()
    );
    let (_, health) = app.get_json("/api/webhooks/health").await;
    assert!(
        health["data"]["log"]["bytes"].as_u64().unwrap() > 0,
        "{health}"
    );
    let metrics = app.metrics().await;
    assert!(metrics.contains("hookvault_log_bytes "), "{metrics}");
    assert!(metrics.contains("hookvault_log_applier_lag "), "{metrics}");
}

/// The binary on `dir`, with the test secret.
fn start_in(dir: &std::path::Path) -> Binary {
    let mut cmd = command(dir);
    cmd.env("GITHUB_WEBHOOK_SECRET", SECRET);
    Binary::start(cmd)
}

async fn post(client: &reqwest::Client, address: &str, event: &str, body: &[u8]) -> String {
    let id = new_id();
    let delivery = Delivery::new(event, &id, body);
    let mut request = client.post(format!("{address}/api/webhooks/github"));
    for (name, value) in &delivery.headers {
        request = request.header(name.as_str(), value.as_str());
    }
    let response = request.body(delivery.body).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    id
}

async fn found(client: &reqwest::Client, address: &str, ids: &[String]) -> usize {
    let mut found = 0;
    for id in ids {
        let response = client
            .get(format!("{address}/api/webhooks/events/{id}"))
            .send()
            .await
            .unwrap();
        found += usize::from(response.status() == StatusCode::OK);
    }
    found
}

/// SIGKILL right after the acknowledgements, inside the store's second between
/// durable commits: the restart applies the log's tail, and says so.
#[tokio::test]
async fn a_crash_before_the_durable_commit_is_repaired_from_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let start = || start_in(dir.path());
    let client = crate::helpers::client();
    let corpus = fixtures();
    let mut binary = start();
    let mut ids = Vec::new();
    for fixture in corpus.iter().take(40) {
        ids.push(post(&client, &binary.address, &fixture.event, &fixture.bytes).await);
    }
    binary.child.kill().unwrap();
    binary.child.wait().unwrap();

    let mut binary = start();
    let logged = binary.logged();
    assert!(
        logged.contains("applied the acknowledgement log's tail"),
        "nothing was left to apply: the test did not crash between the commits\n{logged}"
    );
    assert_eq!(found(&client, &binary.address, &ids).await, ids.len());
    binary.child.kill().unwrap();
    binary.child.wait().unwrap();
    let output = command(dir.path()).arg("verify").output().unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stdout)
    );
}

fn segments(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut files: Vec<_> = std::fs::read_dir(dir.join("log"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    files
}

/// A write torn by a crash is cut off; damage before the tail, which may hold
/// acknowledged deliveries, stops startup with a message saying where.
#[tokio::test]
async fn a_torn_tail_is_cut_and_damage_before_it_stops_startup() {
    let dir = tempfile::tempdir().unwrap();
    let start = || start_in(dir.path());
    let client = crate::helpers::client();
    let push = fixtures().into_iter().find(|f| f.event == "push").unwrap();
    let binary = start();
    let first = post(&client, &binary.address, "push", &push.bytes).await;
    binary.terminate();

    let last = segments(dir.path()).pop().unwrap();
    let whole = std::fs::metadata(&last).unwrap().len();
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(&last)
        .unwrap();
    file.write_all(&[200, 1, 0, 0, 7, 7, 7, 7, 9]).unwrap(); // half a frame header
    drop(file);
    let mut binary = start();
    assert!(
        binary.logged().contains("torn_bytes=9"),
        "{}",
        binary.logged()
    );
    assert_eq!(std::fs::metadata(&last).unwrap().len(), whole);
    let second = post(&client, &binary.address, "push", &fixtures()[0].bytes).await;
    assert_eq!(found(&client, &binary.address, &[first, second]).await, 2);
    binary.terminate();

    // An earlier segment whose frame fails its checksum.
    let earlier = dir.path().join("log").join(format!("{:020}.log", 0));
    std::fs::write(
        &earlier,
        [
            4, 0, 0, 0, 1, 2, 3, 4, 0, 0, 0, 0, 0, 0, 0, 0, b'{', b'}', 0, 0,
        ],
    )
    .unwrap();
    let output = command(dir.path())
        .env("GITHUB_WEBHOOK_SECRET", SECRET)
        .args(["--listen", "127.0.0.1:0"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(
        stderr.contains("corrupt") && stderr.contains(earlier.to_str().unwrap()),
        "{stderr}"
    );
}

/// Bytes the log writes stay in the log's own files: the applied segments are not
/// kept forever (checked at the segment level in `hookvault::log`), and a restart
/// after a clean stop has nothing to apply.
#[tokio::test]
async fn a_clean_stop_leaves_nothing_to_apply() {
    let dir = tempfile::tempdir().unwrap();
    let start = || start_in(dir.path());
    let client = crate::helpers::client();
    let binary = start();
    let mut ids = HashSet::new();
    for fixture in fixtures().iter().take(20) {
        ids.insert(post(&client, &binary.address, &fixture.event, &fixture.bytes).await);
    }
    binary.terminate();
    let mut binary = start();
    assert!(
        !binary
            .logged()
            .contains("applied the acknowledgement log's tail"),
        "{}",
        binary.logged()
    );
    let ids: Vec<String> = ids.into_iter().collect();
    assert_eq!(found(&client, &binary.address, &ids).await, ids.len());
    binary.terminate();
}
