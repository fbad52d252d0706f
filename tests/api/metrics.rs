//! `GET /metrics` after a known workload: the numbers are exactly what happened.

use std::time::Duration;

use reqwest::StatusCode;

use crate::helpers::{Delivery, TestApp, fixture, new_id};

/// The value of one sample line, `name{labels} value`.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find(|line| line.starts_with(series) && line[series.len()..].starts_with(' '))
        .and_then(|line| line.rsplit(' ').next())
        .and_then(|value| value.parse().ok())
}

async fn scrape(app: &TestApp) -> String {
    let response = app.client.get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .contains("openmetrics-text")
    );
    response.text().await.unwrap()
}

#[tokio::test]
async fn metrics_count_exactly_what_happened() {
    let app = TestApp::spawn_with(|c| {
        c.dedup_ttl = Duration::ZERO;
        c.max_retries = 0;
    })
    .await;
    let first = new_id();
    app.post_signed("push", &first, &fixture("push", 0).bytes)
        .await;
    app.post_signed("push", &new_id(), &fixture("push", 4).bytes)
        .await;
    app.post_signed("push", &first, &fixture("push", 0).bytes)
        .await; // redelivery
    app.post_signed("issues", &new_id(), br#"{"action":"opened"}"#)
        .await; // fails its check
    let forged = Delivery::new("push", &new_id(), &fixture("push", 0).bytes)
        .with("X-Hub-Signature-256", &format!("sha256={}", "0".repeat(64)));
    assert_eq!(app.post(forged).await.0, StatusCode::UNAUTHORIZED);
    app.settle().await;
    app.get_json("/api/webhooks/events/no-such-id").await;

    // Processing outcomes are counted right after their commit: wait for all three.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let mut text = scrape(&app).await;
    while sample(&text, r#"hookvault_processing_total{outcome="processed"}"#) != Some(2.0)
        || sample(&text, r#"hookvault_processing_total{outcome="failed"}"#) != Some(1.0)
    {
        assert!(
            std::time::Instant::now() < deadline,
            "processing counts never settled:\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
        text = scrape(&app).await;
    }
    let value =
        |series: &str| sample(&text, series).unwrap_or_else(|| panic!("{series} missing:\n{text}"));
    assert_eq!(
        value(r#"hookvault_deliveries_total{event="push",outcome="stored"}"#),
        2.0
    );
    assert_eq!(
        value(r#"hookvault_deliveries_total{event="push",outcome="duplicate"}"#),
        1.0
    );
    assert_eq!(
        value(r#"hookvault_deliveries_total{event="issues",outcome="stored"}"#),
        1.0
    );
    assert_eq!(
        value(r#"hookvault_deliveries_rejected_total{reason="signature_mismatch"}"#),
        1.0
    );
    assert_eq!(
        value(r#"hookvault_processing_total{outcome="processed"}"#),
        2.0
    );
    assert_eq!(
        value(r#"hookvault_processing_total{outcome="failed"}"#),
        1.0
    );
    assert_eq!(value("hookvault_ack_latency_seconds_count"), 4.0);
    assert_eq!(
        value(
            r#"hookvault_http_requests_total{route="/api/webhooks/github",method="POST",status="200"}"#
        ),
        4.0
    );
    assert_eq!(
        value(
            r#"hookvault_http_requests_total{route="/api/webhooks/github",method="POST",status="401"}"#
        ),
        1.0
    );
    assert_eq!(
        value(
            r#"hookvault_http_requests_total{route="/api/webhooks/events/{delivery_id}",method="GET",status="404"}"#
        ),
        1.0,
        "labelled by matched route, not raw path"
    );
    assert!(value("hookvault_commit_batch_size_count") >= 1.0);
    assert!(value("hookvault_store_bytes") > 0.0);
    assert_eq!(
        value(r#"hookvault_socketio_connections{namespace="/"}"#),
        0.0
    );
    assert_eq!(value("hookvault_socketio_skipped_broadcasts"), 0.0);

    // The index catches up to the three stored events.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while sample(&scrape(&app).await, "hookvault_search_index_documents") != Some(3.0) {
        assert!(
            std::time::Instant::now() < deadline,
            "index documents never reached 3"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn metrics_are_protected_like_the_api() {
    let app = TestApp::spawn().await;
    let proxied = app
        .client
        .get(app.url("/metrics"))
        .header("X-Forwarded-For", "203.0.113.1")
        .send()
        .await
        .unwrap();
    assert_eq!(proxied.status(), StatusCode::UNAUTHORIZED);
}

/// The Grafana dashboard shipped in the binary queries only series the server
/// exports (a sample of each, not just its family), so a renamed or dropped metric cannot leave a panel silently empty.
#[tokio::test]
async fn the_shipped_grafana_dashboard_queries_only_exported_metrics() {
    let app = TestApp::spawn().await;
    // Families with labels have no lines until something is counted in them.
    app.post_signed("push", &new_id(), &fixture("push", 0).bytes)
        .await;
    let forged = Delivery::new("push", &new_id(), &fixture("push", 0).bytes)
        .with("X-Hub-Signature-256", &format!("sha256={}", "0".repeat(64)));
    assert_eq!(app.post(forged).await.0, StatusCode::UNAUTHORIZED);
    app.settle().await;
    app.get_json("/api/webhooks/events/no-such-id").await;

    let (status, dashboard) = app
        .get_json("/dashboard/assets/grafana-dashboard.json")
        .await;
    assert_eq!(status, StatusCode::OK);
    let exprs: Vec<String> = dashboard["panels"]
        .as_array()
        .expect("panels")
        .iter()
        .flat_map(|panel| panel["targets"].as_array().cloned().unwrap_or_default())
        .map(|target| target["expr"].as_str().expect("expr").to_owned())
        .collect();
    assert!(exprs.len() >= 10, "{exprs:?}");

    let exported = scrape(&app).await;
    for expr in &exprs {
        let names = metric_names(expr);
        assert!(!names.is_empty(), "{expr} queries no hookvault metric");
        for name in names {
            let sampled = exported.lines().any(|line| {
                line.strip_prefix(name.as_str())
                    .is_some_and(|rest| rest.starts_with(['{', ' ']))
            });
            assert!(
                sampled,
                "the dashboard queries {name}, which /metrics has no sample of:\n{exported}"
            );
        }
    }
}

/// The `hookvault_…` metric names in a PromQL expression.
fn metric_names(expr: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut rest = expr;
    while let Some(at) = rest.find("hookvault_") {
        let name: String = rest[at..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        rest = &rest[at + name.len()..];
        names.push(name);
    }
    names
}
