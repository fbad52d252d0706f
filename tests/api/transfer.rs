//! Export → import into an empty data dir → the same events, statistics and search
//! results; bad lines are reported by number and skipped; a second import adds
//! nothing.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use crate::helpers::{Delivery, TestApp, fixtures, new_id};
use crate::process::command;

/// Every event as the events API lists it, minus what processing again may change.
async fn events(app: &TestApp) -> Vec<Value> {
    let mut all = Vec::new();
    let mut offset = 0;
    loop {
        let (_, page) = app
            .get_json(&format!("/api/webhooks/events?limit=1000&offset={offset}"))
            .await;
        let data = page["data"].as_array().unwrap().clone();
        if data.is_empty() {
            return all;
        }
        offset += data.len();
        for mut event in data {
            let object = event.as_object_mut().unwrap();
            for volatile in [
                "id",
                "processingTimeMs",
                "processedAt",
                "nextAttemptAt",
                "attempts",
            ] {
                object.remove(volatile);
            }
            all.push(event);
        }
    }
}

async fn search_ids(app: &TestApp, q: &str) -> BTreeSet<String> {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let (_, body) = app
            .get_json(&format!("/api/webhooks/search?limit=100&{q}"))
            .await;
        if body["data"]["indexLag"] == 0 && body["data"]["rebuilding"] == false {
            return body["data"]["hits"]
                .as_array()
                .unwrap()
                .iter()
                .map(|h| h["deliveryId"].as_str().unwrap().to_owned())
                .collect();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "index never caught up: lag {} rebuilding {}",
            body["data"]["indexLag"],
            body["data"]["rebuilding"]
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn run(args: &[&str], data_dir: &std::path::Path) -> (bool, String) {
    let output = command(data_dir)
        .env("GITHUB_WEBHOOK_SECRET", "s")
        .args(args)
        .output()
        .unwrap();
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[tokio::test]
async fn export_then_import_gives_the_same_events_statistics_and_search() {
    let tweak = |c: &mut hookvault::config::Config| {
        c.dedup_ttl = Duration::ZERO;
        c.max_retries = 0;
    };
    let mut source = TestApp::spawn_with(tweak).await;
    let corpus = fixtures();
    for fixture in &corpus {
        source
            .post_signed(&fixture.event, &new_id(), &fixture.bytes)
            .await;
    }
    source
        .post_signed(
            "issues",
            &new_id(),
            br#"{"action":"opened","note":"fails its check"}"#,
        )
        .await;
    let form = Delivery::new("ping", &new_id(), b"payload=%7B%22zen%22%3A%22form%22%7D")
        .with("Content-Type", "application/x-www-form-urlencoded");
    source.post(form).await;
    source.settle().await;

    let queries = [
        "q=spelling",
        "q=event:push",
        "q=conclusion:failure",
        "q=&sort=oldest",
    ];
    let before_events = events(&source).await;
    let (_, before_stats) = source.get_json("/api/webhooks/statistics?hours=2").await;
    let mut before_search = Vec::new();
    for q in queries {
        before_search.push(search_ids(&source, q).await);
    }
    let raw_id = before_events
        .iter()
        .find(|e| e["event"] == "check_run")
        .unwrap()["deliveryId"]
        .as_str()
        .unwrap()
        .to_owned();
    let raw_before = source
        .client
        .get(source.url(&format!("/api/webhooks/events/{raw_id}/raw")))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    source.stop().await;

    let file = source.data_dir.path().join("export.ndjson");
    let (ok, stderr) = run(
        &["export", "--output", file.to_str().unwrap()],
        source.data_dir.path(),
    );
    assert!(ok, "{stderr}");
    assert!(
        stderr.contains(&format!("export: {} deliveries written", corpus.len() + 2)),
        "{stderr}"
    );
    let (ok, _) = run(
        &["export", "--event", "push", "--output", "/dev/null"],
        source.data_dir.path(),
    );
    assert!(ok);

    // Two bad lines at the end: reported by number, skipped whole.
    let mut text = std::fs::read_to_string(&file).unwrap();
    let good_lines = text.lines().count();
    text.push_str("{not json\n");
    text.push_str(
        &text
            .lines()
            .next()
            .unwrap()
            .replace("\"payload\":{", "\"payload\":[{")
            .replace("}}", "}]}"),
    );
    text.push('\n');
    std::fs::write(&file, text).unwrap();

    let target = Arc::new(tempfile::tempdir().unwrap());
    let (ok, stderr) = run(&["import", file.to_str().unwrap()], target.path());
    assert!(ok, "{stderr}");
    assert!(
        stderr.contains(&format!("{good_lines} imported, 0 duplicates, 2 skipped")),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!("line {} skipped", good_lines + 1)),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!("line {} skipped", good_lines + 2)),
        "{stderr}"
    );
    let (ok, stderr) = run(&["import", file.to_str().unwrap()], target.path());
    assert!(
        ok && stderr.contains(&format!("0 imported, {good_lines} duplicates")),
        "{stderr}"
    );

    let copy = TestApp::spawn_in(target, tweak, vec![]).await;
    copy.settle().await;
    assert_eq!(events(&copy).await, before_events);
    let (_, after_stats) = copy.get_json("/api/webhooks/statistics?hours=2").await;
    for key in [
        "totalEvents",
        "processedEvents",
        "failedEvents",
        "pendingEvents",
        "successRate",
    ] {
        assert_eq!(
            after_stats["data"]["summary"][key], before_stats["data"]["summary"][key],
            "{key}"
        );
    }
    let totals = |stats: &Value| -> Vec<(String, i64)> {
        stats["data"]["byEvent"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                (
                    e["event"].as_str().unwrap().to_owned(),
                    e["total"].as_i64().unwrap(),
                )
            })
            .collect()
    };
    assert_eq!(totals(&after_stats), totals(&before_stats));
    for (q, want) in queries.iter().zip(&before_search) {
        assert_eq!(&search_ids(&copy, q).await, want, "{q}");
    }
    let raw_after = copy
        .client
        .get(copy.url(&format!("/api/webhooks/events/{raw_id}/raw")))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(
        raw_after, raw_before,
        "bodies are byte-identical after the round trip"
    );
}
