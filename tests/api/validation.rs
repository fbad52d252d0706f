//! The five validation steps: each failure has its own status and code, and stores
//! nothing.

use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{Delivery, SECRET, TestApp, fixture, new_id};
use hookvault::config::Secret;
use hookvault::ingest::Signature;

async fn assert_rejected(app: &TestApp, delivery: Delivery, status: StatusCode, code: &str) {
    let (got, body) = app.post(delivery).await;
    assert_eq!(got, status, "{body}");
    assert_eq!(body["success"], false);
    assert_eq!(body["error"]["code"], code, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty())
    );
    assert_eq!(
        app.count("").await,
        0,
        "a rejected delivery stored something"
    );
}

fn valid() -> Delivery {
    Delivery::new("push", &new_id(), &fixture("push", 0).bytes)
}

#[tokio::test]
async fn missing_or_malformed_github_headers_are_400() {
    let app = TestApp::spawn().await;
    let bad = StatusCode::BAD_REQUEST;
    assert_rejected(
        &app,
        valid().without("X-GitHub-Event"),
        bad,
        "missing_header",
    )
    .await;
    assert_rejected(
        &app,
        valid().without("X-GitHub-Delivery"),
        bad,
        "missing_header",
    )
    .await;
    assert_rejected(
        &app,
        valid().with("X-GitHub-Event", "Push Event"),
        bad,
        "invalid_header",
    )
    .await;
    assert_rejected(
        &app,
        valid().with("X-GitHub-Delivery", "../x"),
        bad,
        "invalid_header",
    )
    .await;
    assert_rejected(
        &app,
        valid().without("User-Agent"),
        bad,
        "invalid_user_agent",
    )
    .await;
    assert_rejected(
        &app,
        valid().with("User-Agent", "curl/8.0"),
        bad,
        "invalid_user_agent",
    )
    .await;
}

#[tokio::test]
async fn the_user_agent_check_can_be_turned_off() {
    let app = TestApp::spawn_with(|c| c.check_user_agent = false).await;
    let (status, body) = app
        .post(valid().with("User-Agent", "nginx-rewrite/1"))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(app.count("").await, 1);
}

#[tokio::test]
async fn bad_signatures_are_401() {
    let app = TestApp::spawn().await;
    let unauthorized = StatusCode::UNAUTHORIZED;
    assert_rejected(
        &app,
        valid().without("X-Hub-Signature-256"),
        unauthorized,
        "signature_missing",
    )
    .await;
    assert_rejected(
        &app,
        valid().with("X-Hub-Signature-256", "sha256=nothex"),
        unauthorized,
        "signature_malformed",
    )
    .await;
    assert_rejected(
        &app,
        valid().with("X-Hub-Signature-256", "sha1=0123"),
        unauthorized,
        "signature_malformed",
    )
    .await;
    let wrong_secret = Signature::compute(b"not the secret", &fixture("push", 0).bytes).to_header();
    assert_rejected(
        &app,
        valid().with("X-Hub-Signature-256", &wrong_secret),
        unauthorized,
        "signature_mismatch",
    )
    .await;
    // A body altered after signing.
    let mut altered = valid();
    altered.body.push(b' ');
    assert_rejected(&app, altered, unauthorized, "signature_mismatch").await;
}

#[tokio::test]
async fn any_of_several_secrets_is_accepted_for_rotation() {
    let app = TestApp::spawn_with(|c| {
        c.secrets = vec![Secret::new("the-new-one"), Secret::new(SECRET)];
        c.dedup_ttl = std::time::Duration::ZERO; // the same body is posted twice
    })
    .await;
    let (status, body) = app.post(valid()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let body_bytes = fixture("push", 0).bytes;
    let new_sig = Signature::compute(b"the-new-one", &body_bytes).to_header();
    let (status, body) = app
        .post(valid().with("X-Hub-Signature-256", &new_sig))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(app.count("").await, 2);
}

#[tokio::test]
async fn unsupported_content_types_are_415() {
    let app = TestApp::spawn().await;
    let unsupported = StatusCode::UNSUPPORTED_MEDIA_TYPE;
    assert_rejected(
        &app,
        valid().with("Content-Type", "text/plain"),
        unsupported,
        "unsupported_content_type",
    )
    .await;
    assert_rejected(
        &app,
        valid().without("Content-Type"),
        unsupported,
        "unsupported_content_type",
    )
    .await;
}

#[tokio::test]
async fn payloads_that_are_not_json_objects_are_400() {
    let app = TestApp::spawn().await;
    let bad = StatusCode::BAD_REQUEST;
    assert_rejected(&app, valid().body(b"{\"zen\": "), bad, "invalid_json").await;
    assert_rejected(&app, valid().body(b"{\"zen\": 1} {}"), bad, "invalid_json").await;
    // Nested deeper than serde_json parses, under a key no check reads (ingest skips
    // such parts without building them, and must still refuse what cannot be read).
    let deep = format!(
        "{{\"zen\": 1, \"x\": {}{}}}",
        "[".repeat(200),
        "]".repeat(200)
    );
    assert_rejected(&app, valid().body(deep.as_bytes()), bad, "invalid_json").await;
    assert_rejected(&app, valid().body(b"[1, 2, 3]"), bad, "payload_not_object").await;
    assert_rejected(
        &app,
        valid().body(b"\"a string\""),
        bad,
        "payload_not_object",
    )
    .await;
    let form = valid().with("Content-Type", "application/x-www-form-urlencoded");
    assert_rejected(
        &app,
        form.clone().body(b"other=1"),
        bad,
        "form_without_payload",
    )
    .await;
    assert_rejected(&app, form.body(b"payload=not-json"), bad, "invalid_json").await;
}

#[tokio::test]
async fn form_encoded_deliveries_are_stored_exactly_as_received() {
    let app = TestApp::spawn().await;
    let json = fixture("issues", 0).bytes;
    let form_body: String = form_urlencoded::Serializer::new(String::new())
        .append_pair("payload", std::str::from_utf8(&json).unwrap())
        .finish();
    let id = new_id();
    let delivery = Delivery::new("issues", &id, form_body.as_bytes())
        .with("Content-Type", "application/x-www-form-urlencoded");
    let (status, body) = app.post(delivery).await;
    assert_eq!(status, StatusCode::OK, "{body}");

    let (_, detail) = app.get_json(&format!("/api/webhooks/events/{id}")).await;
    let expected: Value = serde_json::from_slice(&json).unwrap();
    assert_eq!(detail["data"]["payload"], expected);
    assert_eq!(
        detail["data"]["contentType"],
        "application/x-www-form-urlencoded"
    );
    let raw = app
        .client
        .get(app.url(&format!("/api/webhooks/events/{id}/raw")))
        .send()
        .await
        .unwrap();
    assert_eq!(raw.bytes().await.unwrap().as_ref(), form_body.as_bytes());
}

#[tokio::test]
async fn a_bodiless_ping_with_a_valid_signature_is_400_not_stored() {
    let app = TestApp::spawn().await;
    assert_rejected(
        &app,
        valid().body(b""),
        StatusCode::BAD_REQUEST,
        "invalid_json",
    )
    .await;
}
