//! The durability promise: a 2xx is sent only after the delivery is on disk. A child
//! process under concurrent signed load is killed with SIGKILL; after a restart every
//! acknowledged delivery is there, byte for byte, and no delivery id appears twice.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::helpers::{Delivery, SECRET, fixtures, new_id};
use crate::process::{Binary, command};

#[tokio::test]
async fn every_acknowledged_delivery_survives_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let start = || {
        let mut cmd = command(dir.path());
        cmd.env("GITHUB_WEBHOOK_SECRET", SECRET)
            .env("WEBHOOK_DEDUP_TTL", "0");
        Binary::start(cmd)
    };
    let mut binary = start();
    let bodies: Arc<Vec<Vec<u8>>> = Arc::new(fixtures().into_iter().map(|f| f.bytes).collect());
    let events: Arc<Vec<String>> = Arc::new(fixtures().into_iter().map(|f| f.event).collect());
    let acked: Arc<Mutex<HashMap<String, usize>>> = Arc::default();
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let deadline = Instant::now() + Duration::from_millis(1500);

    let mut workers = Vec::new();
    for worker in 0..32 {
        let (client, acked, bodies, events) = (
            client.clone(),
            acked.clone(),
            bodies.clone(),
            events.clone(),
        );
        let url = format!("{}/api/webhooks/github", binary.address);
        workers.push(tokio::spawn(async move {
            let mut i = worker;
            // Keeps sending past the kill; requests then fail and are not acknowledged.
            while Instant::now() < deadline + Duration::from_millis(500) {
                let n = i % bodies.len();
                i += 32;
                let id = new_id();
                let delivery = Delivery::new(&events[n], &id, &bodies[n]);
                let mut request = client.post(&url);
                for (name, value) in &delivery.headers {
                    request = request.header(name.as_str(), value.as_str());
                }
                match request.body(delivery.body).send().await {
                    Ok(response) if response.status().is_success() => {
                        acked.lock().unwrap().insert(id, n);
                    }
                    Ok(response) => panic!("unexpected status {}", response.status()),
                    Err(_) => tokio::time::sleep(Duration::from_millis(5)).await,
                }
            }
        }));
    }
    tokio::time::sleep_until(deadline.into()).await;
    binary.child.kill().unwrap(); // SIGKILL: no chance to flush anything
    binary.child.wait().unwrap();
    for worker in workers {
        worker.await.unwrap();
    }
    let acked = acked.lock().unwrap().clone();
    assert!(
        acked.len() > 50,
        "the load got {} acknowledgements before the kill",
        acked.len()
    );

    let binary = start();
    let client = reqwest::Client::new();
    for (id, n) in &acked {
        let response = client
            .get(format!("{}/api/webhooks/events/{id}/raw", binary.address))
            .send()
            .await
            .unwrap();
        assert_eq!(
            response.status(),
            200,
            "acknowledged delivery {id} was lost"
        );
        assert_eq!(
            response.bytes().await.unwrap().as_ref(),
            bodies[*n].as_slice(),
            "{id} changed"
        );
    }

    // No delivery id twice: walk every stored event.
    let mut seen = std::collections::HashSet::new();
    let mut offset = 0;
    loop {
        let page: serde_json::Value = client
            .get(format!(
                "{}/api/webhooks/events?limit=1000&offset={offset}",
                binary.address
            ))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let events = page["data"].as_array().unwrap();
        for event in events {
            assert!(
                seen.insert(event["deliveryId"].as_str().unwrap().to_owned()),
                "stored twice"
            );
        }
        if events.is_empty() {
            assert_eq!(
                page["pagination"]["total"].as_u64().unwrap(),
                seen.len() as u64
            );
            break;
        }
        offset += events.len();
    }
    assert!(seen.len() >= acked.len());
    binary.terminate();
}

#[tokio::test]
async fn a_clean_stop_leaves_no_repair_work_and_a_caught_up_index() {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = command(dir.path());
    cmd.env("GITHUB_WEBHOOK_SECRET", SECRET)
        .env("WEBHOOK_DEDUP_TTL", "0");
    let binary = Binary::start(cmd);
    let client = reqwest::Client::new();
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
