//! Retention removes exactly the expired events (and their search documents) while
//! counters for past hours, the delivery-id memory and `verify` stay intact.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::helpers::{TestApp, delivery};
use crate::process::command;

#[tokio::test]
async fn expired_events_are_retired_and_everything_else_stays() {
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let now = hookvault::domain::timestamp::now_ms();
    let mut old_ids = Vec::new();
    {
        let (store, writer) = crate::helpers::open_store(dir.path());
        for (n, age_days) in [3, 3, 2, 0, 0].into_iter().enumerate() {
            let word = if age_days > 0 {
                "ancientword"
            } else {
                "freshword"
            };
            let body = json!({"ref": "refs/heads/main", "after": format!("{n:040}"),
                "commits": [{"message": format!("{word} number {n}")}],
                "repository": {"full_name": "octo/kept"}});
            let mut d = delivery("push", &serde_json::to_vec(&body).unwrap());
            d.received_at_ms = now - age_days * 86_400_000 - 60_000;
            if age_days > 0 {
                old_ids.push(d.id.to_string());
            }
            store.ingest(d).await.unwrap();
        }
        drop(store);
        writer.join();
    }

    let app = TestApp::spawn_in(
        dir.clone(),
        |c| {
            c.retention_days = Some(1);
            c.retention_interval = Duration::from_millis(50);
        },
        vec![],
    )
    .await;
    let deadline = Instant::now() + Duration::from_secs(20);
    while app.count("").await != 2 {
        assert!(Instant::now() < deadline, "expired events were not retired");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for id in &old_ids {
        let (status, _) = app.get_json(&format!("/api/webhooks/events/{id}")).await;
        assert_eq!(status, reqwest::StatusCode::NOT_FOUND);
    }
    // Search documents follow: none for the retired events, both fresh ones found.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (_, old) = app.get_json("/api/webhooks/search?q=ancientword").await;
        let (_, fresh) = app.get_json("/api/webhooks/search?q=freshword").await;
        if old["data"]["total"] == 0 && fresh["data"]["total"] == 2 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "search still has retired events: {old}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Counters for past hours stay.
    let (_, stats) = app.get_json("/api/webhooks/statistics?hours=200").await;
    assert_eq!(stats["data"]["summary"]["totalEvents"], 5);
    // A late redelivery of a retired delivery is still a duplicate.
    let (_, answer) = app
        .post_signed("push", &old_ids[0], br#"{"ref":"x"}"#)
        .await;
    assert_eq!(answer["data"]["status"], "duplicate");

    let mut app = app;
    app.stop().await;
    let verify = command(dir.path())
        .env("GITHUB_WEBHOOK_SECRET", "s")
        .arg("verify")
        .output()
        .unwrap();
    assert!(
        verify.status.success(),
        "{}",
        String::from_utf8_lossy(&verify.stdout)
    );
    let compact = command(dir.path())
        .env("GITHUB_WEBHOOK_SECRET", "s")
        .arg("compact")
        .output()
        .unwrap();
    assert!(compact.status.success());
    assert!(String::from_utf8_lossy(&compact.stderr).contains("bytes after"));
}

#[tokio::test]
async fn the_size_cap_retires_the_oldest_events_until_payloads_fit() {
    use rand::Rng;
    let app = TestApp::spawn_with(|c| {
        c.dedup_ttl = Duration::ZERO;
        c.max_payload_bytes = Some(60_000);
        c.retention_interval = Duration::from_millis(50);
    })
    .await;
    let mut ids = Vec::new();
    for n in 0..10 {
        // ~20 KB of random hex: compresses to about half.
        let noise: String = (0..20_000)
            .map(|_| char::from_digit(rand::rng().random_range(0..16), 16).unwrap())
            .collect();
        let body = json!({"zen": noise, "n": n});
        let id = crate::helpers::new_id();
        app.post_signed("ping", &id, &serde_json::to_vec(&body).unwrap())
            .await;
        ids.push(id);
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    let kept = loop {
        let kept = app.count("").await;
        if kept < 10 {
            tokio::time::sleep(Duration::from_millis(300)).await;
            if app.count("").await == kept {
                break kept;
            }
        }
        assert!(Instant::now() < deadline, "nothing was retired");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    // About 10 KB each after compression: five or six fit in 60 KB.
    assert!((4..=7).contains(&kept), "kept {kept}");
    let listed = app.listed_ids("limit=100").await;
    let newest: Vec<String> = ids.iter().rev().take(kept as usize).cloned().collect();
    assert_eq!(listed, newest, "the newest events are the ones kept");
}
