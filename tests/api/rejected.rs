//! The rejected-delivery log: every refusal at the ingest endpoint is
//! listed with what was known (headers, size, body hash, reason) and never the body,
//! the signature or a secret; counts per reason; old entries roll off.

use std::time::Duration;

use hookvault::store::REJECTED_KEPT;
use reqwest::StatusCode;
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::helpers::{Delivery, SECRET, TestApp, fixture, new_id, sign};

/// The log once it holds `count` entries (entries are written without making the
/// refused client wait, so they land a moment after the answer).
async fn log_with(app: &TestApp, count: usize, limit: usize) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let (status, body) = app
            .get_json(&format!("/api/webhooks/rejected?limit={limit}"))
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let total: u64 = body["data"]["byReason"]
            .as_object()
            .unwrap()
            .values()
            .map(|v| v.as_u64().unwrap())
            .sum();
        if total as usize >= count {
            return body["data"].clone();
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "log stayed at {body}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_signature_mismatch_is_listed_with_what_is_known_and_nothing_secret() {
    let app = TestApp::spawn().await;
    let body = fixture("push", 1).bytes;
    let wrong_signature = format!(
        "sha256={}",
        hex::encode(Sha256::digest(b"signed with some other secret"))
    );
    let id = new_id();
    let (status, _) = app
        .post(Delivery::new("push", &id, &body).with("X-Hub-Signature-256", &wrong_signature))
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    // An accepted delivery is not a rejection.
    let (status, _) = app
        .post(Delivery::new("ping", &new_id(), &fixture("ping", 1).bytes))
        .await;
    assert_eq!(status, StatusCode::OK);

    let log = log_with(&app, 1, 100).await;
    let entries = log["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 1, "{log}");
    let entry = &entries[0];
    assert_eq!(entry["code"], "signature_mismatch");
    assert_eq!(entry["status"], 401);
    assert_eq!(entry["event"], "push");
    assert_eq!(entry["deliveryId"], id.as_str());
    assert_eq!(entry["source"], "127.0.0.1");
    assert_eq!(entry["signatureSent"], true);
    assert_eq!(entry["bodyBytes"], body.len() as u64);
    assert_eq!(entry["bodySha256"], hex::encode(Sha256::digest(&body)));
    assert!(
        entry["userAgent"]
            .as_str()
            .unwrap()
            .starts_with("GitHub-Hookshot/")
    );
    assert!(entry["reason"].as_str().unwrap().contains("secret"));
    assert_eq!(log["byReason"]["signature_mismatch"], 1);

    let text = log.to_string();
    let expected = sign(&body);
    for secret_or_content in [
        SECRET,
        &wrong_signature[7..],
        &expected[7..],
        "\"pusher\"", // from the body
    ] {
        assert!(
            !text.contains(secret_or_content),
            "{secret_or_content:?} leaked: {text}"
        );
    }
}

#[tokio::test]
async fn refusals_before_the_body_is_read_say_so_and_counts_are_kept_per_reason() {
    let app = TestApp::spawn().await;
    let body = fixture("issues", 1).bytes;
    let (status, _) = app
        .post(Delivery::new("issues", &new_id(), &body).without("X-GitHub-Event"))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = app
        .post(Delivery::new("issues", &new_id(), &body).without("X-Hub-Signature-256"))
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = app
        .post(Delivery::new("issues", &new_id(), &body).with("Content-Type", "text/plain"))
        .await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);

    let log = log_with(&app, 3, 100).await;
    let entries = log["entries"].as_array().unwrap();
    let codes: Vec<&str> = entries
        .iter()
        .map(|e| e["code"].as_str().unwrap())
        .collect();
    // Newest first.
    assert_eq!(
        codes,
        [
            "unsupported_content_type",
            "signature_missing",
            "missing_header"
        ]
    );
    let missing_header = &entries[2];
    assert_eq!(missing_header["event"], Value::Null);
    assert_eq!(
        missing_header["bodySha256"],
        Value::Null,
        "the body was never read"
    );
    assert_eq!(
        missing_header["bodyBytes"],
        body.len() as u64,
        "declared length"
    );
    assert_eq!(entries[1]["signatureSent"], false);
    assert_eq!(entries[0]["contentType"], "text/plain");
    for code in [
        "missing_header",
        "signature_missing",
        "unsupported_content_type",
    ] {
        assert_eq!(log["byReason"][code], 1, "{code}");
    }
}

#[tokio::test]
async fn old_entries_roll_off_and_counts_survive_a_restart() {
    let app = TestApp::spawn().await;
    let extra = 15;
    let body = br#"{"zen":"x"}"#;
    for _ in 0..(REJECTED_KEPT as usize + extra) {
        let delivery =
            Delivery::new("ping", &new_id(), body).with("X-Hub-Signature-256", "sha256=00");
        assert_eq!(app.post(delivery).await.0, StatusCode::UNAUTHORIZED);
    }
    let total = REJECTED_KEPT as usize + extra;
    let log = log_with(&app, total, REJECTED_KEPT as usize).await;
    assert_eq!(
        log["entries"].as_array().unwrap().len(),
        REJECTED_KEPT as usize
    );
    assert_eq!(log["byReason"]["signature_malformed"], total as u64);

    let app = app.restart().await;
    let (_, after) = app
        .get_json(&format!("/api/webhooks/rejected?limit={REJECTED_KEPT}"))
        .await;
    assert_eq!(
        after["data"]["entries"].as_array().unwrap().len(),
        REJECTED_KEPT as usize
    );
    assert_eq!(
        after["data"]["byReason"]["signature_malformed"],
        total as u64
    );
    let (status, _) = app.get_json("/api/webhooks/rejected?limit=0").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}
