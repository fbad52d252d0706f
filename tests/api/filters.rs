//! Ingest filters: an authentic delivery that the allow/deny rules turn away is
//! answered `ignored`, stores nothing (events, search, counters), is counted per rule
//! (`/metrics`, statistics) and listed in the ignored log; verification comes first.

use std::time::{Duration, Instant};

use hookvault::domain::IngestFilter;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{Delivery, TestApp, fixture, fixtures, new_id};

fn filtered(allow: &str, deny: &str) -> impl FnOnce(&mut hookvault::config::Config) {
    let filter = IngestFilter::from_lists(allow, deny).expect("valid rules");
    move |config| config.ingest_filter = filter
}

/// The ignored log once it counts `count` deliveries (entries land just after the answer).
async fn ignored_log(app: &TestApp, count: u64) -> Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (status, body) = app.get_json("/api/webhooks/ignored?limit=1000").await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let total: u64 = body["data"]["byReason"]
            .as_object()
            .unwrap()
            .values()
            .map(|v| v.as_u64().unwrap())
            .sum();
        if total >= count {
            return body["data"].clone();
        }
        assert!(Instant::now() < deadline, "ignored log stayed at {body}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits until search has indexed everything stored; returns its total for `query`.
async fn searched(app: &TestApp, stored: u64, query: &str) -> u64 {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (status, all) = app.get_json("/api/webhooks/search?q=").await;
        assert_eq!(status, StatusCode::OK, "{all}");
        if all["data"]["total"] == stored && all["data"]["indexLag"] == 0 {
            break;
        }
        assert!(Instant::now() < deadline, "index never caught up: {all}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (status, body) = app
        .get_json(&format!("/api/webhooks/search?q={query}"))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["data"]["total"].as_u64().unwrap()
}

#[tokio::test]
async fn denied_status_and_check_suite_are_ignored_counted_and_never_stored() {
    let app = TestApp::spawn_with(filtered("", "event:status,event:check_suite")).await;
    let corpus: Vec<_> = fixtures()
        .into_iter()
        .filter(|f| ["status", "check_suite", "push"].contains(&f.event.as_str()))
        .collect();
    let (mut kept, mut ignored) = (0u64, 0u64);
    let mut ignored_ids = Vec::new();
    for f in &corpus {
        let id = new_id();
        let (status, body) = app.post_signed(&f.event, &id, &f.bytes).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["data"]["deliveryId"], id.as_str());
        if f.event == "push" {
            assert_eq!(body["data"]["status"], "stored", "{body}");
            kept += 1;
        } else {
            assert_eq!(body["success"], true);
            assert_eq!(body["data"]["status"], "ignored", "{body}");
            assert_eq!(body["data"]["rule"], format!("deny event:{}", f.event));
            assert!(body["data"].get("id").is_none(), "{body}");
            ignored += 1;
            ignored_ids.push(id);
        }
    }
    let by_status = corpus.iter().filter(|f| f.event == "status").count() as u64;
    assert!(by_status > 0 && ignored > by_status && kept > 0);
    app.settle().await;

    // Nothing of them in the store: not listed, not found by id, not counted.
    assert_eq!(app.count("").await, kept);
    assert_eq!(app.count("event=status").await, 0);
    assert_eq!(app.count("event=check_suite").await, 0);
    for id in &ignored_ids {
        let (status, _) = app.get_json(&format!("/api/webhooks/events/{id}")).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
    }
    // Nor in search, once everything stored is indexed.
    assert_eq!(searched(&app, kept, "event:status").await, 0);
    assert_eq!(searched(&app, kept, "event:check_suite").await, 0);

    // Counted per rule: the ignored log, statistics and /metrics agree.
    let log = ignored_log(&app, ignored).await;
    assert_eq!(log["byReason"]["deny event:status"], by_status);
    assert_eq!(
        log["byReason"]["deny event:check_suite"],
        ignored - by_status
    );
    let entries = log["entries"].as_array().unwrap();
    assert_eq!(entries.len() as u64, ignored);
    let newest = &entries[0];
    assert_eq!(newest["deliveryId"], ignored_ids.last().unwrap().as_str());
    assert_eq!(newest["status"], 200);
    assert!(newest["reason"].as_str().unwrap().contains("ingest filter"));
    assert!(newest["bodySha256"].is_string());
    assert!(newest.get("payload").is_none() && newest.get("body").is_none());

    let (status, stats) = app.get_json("/api/webhooks/statistics").await;
    assert_eq!(status, StatusCode::OK, "{stats}");
    assert_eq!(stats["data"]["summary"]["ignoredEvents"], ignored);
    assert_eq!(stats["data"]["summary"]["totalEvents"], kept);
    assert_eq!(
        stats["data"]["ignoredByRule"]["deny event:status"],
        by_status
    );
    let by_event = stats["data"]["byEvent"].as_array().unwrap();
    assert!(
        by_event.iter().all(|line| line["event"] == "push"),
        "{stats}"
    );

    let metrics = app.metrics().await;
    assert!(
        metrics.contains(&format!(
            "hookvault_deliveries_ignored_total{{rule=\"deny event:status\"}} {by_status}"
        )),
        "{metrics}"
    );
    assert!(metrics.contains(&format!(
        "hookvault_deliveries_ignored_total{{rule=\"deny event:check_suite\"}} {}",
        ignored - by_status
    )));
}

#[tokio::test]
async fn allow_rules_keep_only_what_they_match() {
    let app = TestApp::spawn_with(filtered(
        "organization:octo-org,repository:codertocat/hello-*",
        "action:requested",
    ))
    .await;
    let mut expected_kept = 0;
    let mut seen_reasons = std::collections::BTreeSet::new();
    for f in fixtures() {
        let repository = f.repository().unwrap_or("");
        let organization = f.json["organization"]["login"]
            .as_str()
            .or_else(|| f.json["repository"]["owner"]["login"].as_str())
            .unwrap_or("");
        let allowed = organization.eq_ignore_ascii_case("octo-org")
            || repository
                .to_ascii_lowercase()
                .starts_with("codertocat/hello-")
            || f.event == "ping";
        let denied = f.action() == Some("requested");
        let (status, body) = app.post_signed(&f.event, &new_id(), &f.bytes).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let answer = body["data"]["status"].as_str().unwrap();
        if allowed && !denied {
            assert_ne!(answer, "ignored", "{}: {body}", f.path.display());
            expected_kept += 1;
        } else {
            assert_eq!(answer, "ignored", "{}: {body}", f.path.display());
            seen_reasons.insert(body["data"]["rule"].as_str().unwrap().to_owned());
        }
    }
    assert!(expected_kept > 0);
    assert_eq!(
        seen_reasons.into_iter().collect::<Vec<_>>(),
        ["deny action:requested", "not allowed"]
    );
    app.settle().await;
    let (_, body) = app.get_json("/api/webhooks/events?limit=1000").await;
    let listed = body["data"].as_array().unwrap();
    // Content duplicates among the fixtures are stored too (status duplicate).
    assert_eq!(listed.len(), expected_kept, "{body}");
    assert!(listed.iter().all(|e| e["action"] != "requested"));
}

#[tokio::test]
async fn verification_comes_before_the_filter() {
    let app = TestApp::spawn_with(filtered("", "event:status")).await;
    let body = fixture("status", 0).bytes;
    let (status, answer) = app
        .post(Delivery::new("status", &new_id(), &body).without("X-Hub-Signature-256"))
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{answer}");
    assert_eq!(answer["error"]["code"], "signature_missing");
    let bad = Delivery::new("status", &new_id(), &body)
        .with("X-Hub-Signature-256", &format!("sha256={}", "0".repeat(64)));
    let (status, _) = app.post(bad).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    // Then one authentic delivery: only it is ignored, and the refusals are rejections.
    let (status, answer) = app.post_signed("status", &new_id(), &body).await;
    assert_eq!(answer["data"]["status"], "ignored", "{answer}");
    assert_eq!(status, StatusCode::OK);
    let log = ignored_log(&app, 1).await;
    assert_eq!(log["entries"].as_array().unwrap().len(), 1);
    let (_, rejected) = app.get_json("/api/webhooks/rejected").await;
    assert_eq!(rejected["data"]["entries"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn the_filter_is_read_and_replaced_through_the_api() {
    let app = TestApp::spawn_with(filtered("", "event:status")).await;
    let (status, body) = app.get_json("/api/filters").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"], json!({"allow": [], "deny": ["event:status"]}));

    let put = |value: Value| app.client.put(app.url("/api/filters")).json(&value).send();
    for bad in [
        json!({"deny": ["status"]}),
        json!({"deny": ["sender:mona"]}),
        json!({"allow": ["repository:[x"]}),
        json!({"deny": "event:push"}),
        json!({"deny": [], "other": 1}),
        json!([[], []]),
    ] {
        let response = put(bad.clone()).await.unwrap();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{bad}");
    }
    // Still the old filter after the refusals.
    let (_, body) = app.get_json("/api/filters").await;
    assert_eq!(body["data"]["deny"], json!(["event:status"]));

    let response = put(json!({"deny": ["event:push"]})).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["data"], json!({"allow": [], "deny": ["event:push"]}));
    let (_, answer) = app
        .post_signed("push", &new_id(), &fixture("push", 0).bytes)
        .await;
    assert_eq!(answer["data"]["status"], "ignored");
    let (_, answer) = app
        .post_signed("status", &new_id(), &fixture("status", 0).bytes)
        .await;
    assert_eq!(answer["data"]["status"], "stored");
}

#[tokio::test]
async fn bad_filter_settings_stop_startup_naming_the_setting() {
    use clap::Parser;
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().to_str().unwrap();
    for (flag, value, setting) in [
        ("--ingest-deny", "event", "HOOKVAULT_INGEST_DENY"),
        ("--ingest-allow", "colour:red", "HOOKVAULT_INGEST_ALLOW"),
        ("--ingest-deny", "repository:[a", "HOOKVAULT_INGEST_DENY"),
    ] {
        let cli = hookvault::config::Cli::try_parse_from([
            "hookvault",
            "--data-dir",
            data_dir,
            "--secret",
            "s",
            flag,
            value,
        ])
        .unwrap();
        let error = hookvault::config::Config::offline(cli.settings).unwrap_err();
        let line = error.to_string();
        assert!(line.contains(setting), "{line}");
        assert!(line.contains(value), "{line}");
    }
}
