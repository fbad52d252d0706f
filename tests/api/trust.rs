//! What a user relies on without checking: every acknowledged delivery can be read
//! back (also after export and import), counts never go wrong, commands on a stopped
//! instance never create data, and queries never silently mean something else.

use std::sync::Arc;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{Delivery, TestApp, fixture, fixtures, new_id};
use crate::process::command;

/// The body of one delivery exactly as stored.
async fn raw(app: &TestApp, id: &str) -> (StatusCode, Vec<u8>) {
    let response = app
        .client
        .get(app.url(&format!("/api/webhooks/events/{id}/raw")))
        .send()
        .await
        .unwrap();
    (response.status(), response.bytes().await.unwrap().to_vec())
}

fn nested(depth: usize) -> Vec<u8> {
    // `depth` levels counting the outer object.
    format!(
        "{{\"zen\": \"deep\", \"d\": {}1{}}}",
        "[".repeat(depth - 1),
        "]".repeat(depth - 1)
    )
    .into_bytes()
}

#[tokio::test]
async fn json_that_could_not_be_read_back_is_refused_and_stores_nothing() {
    let app = TestApp::spawn().await;
    for body in [
        br#"{"zen":"x","n":1e400}"#.to_vec(),
        br#"{"zen":"x","n":[-1e309]}"#.to_vec(),
        br#"{"zen":"x","s":"\ud800"}"#.to_vec(),
        br#"{"zen":"x","\udc00":1}"#.to_vec(),
        b"{\"zen\":\"x\",\"s\":\"\xff\"}".to_vec(),
        nested(101),
    ] {
        let (status, answer) = app.post_signed("ping", &new_id(), &body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
        assert_eq!(answer["error"]["code"], "invalid_json", "{answer}");
    }
    let form = Delivery::new("ping", &new_id(), b"payload=%7B%7D&x=\xff")
        .with("Content-Type", "application/x-www-form-urlencoded");
    let (status, answer) = app.post(form).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    assert_eq!(answer["error"]["code"], "invalid_form");
    assert_eq!(app.count("").await, 0);
}

fn run(args: &[&str], data_dir: &std::path::Path) -> (bool, String) {
    let output = command(data_dir).args(args).output().unwrap();
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// Every fixture and every JSON edge case hookvault accepts: ingest → GET → export
/// → import → GET gives the same bytes, status and duplicate link.
#[tokio::test]
async fn every_accepted_delivery_reads_back_after_export_and_import() {
    let tweak = |c: &mut hookvault::config::Config| c.max_retries = 0;
    let mut source = TestApp::spawn_with(tweak).await;
    let mut bodies: Vec<(String, Vec<u8>)> =
        fixtures().into_iter().map(|f| (f.event, f.bytes)).collect();
    for edge in [
        br#"{"zen":"x","n":1e300,"m":-0.0,"i":18446744073709551615,"j":-9223372036854775808}"#
            .to_vec(),
        br#"{"zen":"pair \ud83d\ude00 and \u00e9 and \u0000","k":{"\u2028":[]}}"#.to_vec(),
        "{\"zen\":\"raw UTF-8: caf\u{e9} \u{1f600}\"}"
            .as_bytes()
            .to_vec(),
        b"{\n  \"zen\" : \"pretty\" ,\n  \"a\" : [ 1 , 2 ]\n}\n".to_vec(),
        nested(100),
    ] {
        bodies.push(("ping".into(), edge));
    }
    // A second hook's copy of one event: kept as a duplicate of the first.
    bodies.push(("workflow_job".into(), fixture("workflow_job", 0).bytes));
    let mut sent = Vec::new();
    for (event, body) in bodies {
        let id = new_id();
        let (status, answer) = source.post_signed(&event, &id, &body).await;
        assert_eq!(status, StatusCode::OK, "{event}: {answer}");
        sent.push((
            id,
            body,
            answer["data"]["status"].as_str().unwrap().to_owned(),
        ));
    }
    let form = Delivery::new(
        "ping",
        "form-delivery",
        b"payload=%7B%22zen%22%3A%22form%22%7D",
    )
    .with("Content-Type", "application/x-www-form-urlencoded");
    let form_body = b"payload=%7B%22zen%22%3A%22form%22%7D".to_vec();
    source.post(form).await;
    sent.push(("form-delivery".into(), form_body, "stored".into()));
    assert!(
        sent.iter().any(|(_, _, s)| s == "duplicate"),
        "no duplicate sent"
    );
    source.settle().await;

    let mut before = Vec::new();
    for (id, body, _) in &sent {
        let (status, detail) = source.get_json(&format!("/api/webhooks/events/{id}")).await;
        assert_eq!(status, StatusCode::OK, "{id}: {detail}");
        assert_eq!(
            raw(&source, id).await,
            (StatusCode::OK, body.clone()),
            "{id}"
        );
        before.push(detail["data"].clone());
    }
    source.stop().await;

    let file = source.data_dir.path().join("export.ndjson");
    let (ok, stderr) = run(
        &["export", "--output", file.to_str().unwrap()],
        source.data_dir.path(),
    );
    assert!(ok, "{stderr}");
    assert!(
        stderr.contains(&format!("{} deliveries written", sent.len())),
        "{stderr}"
    );
    let target = Arc::new(tempfile::tempdir().unwrap());
    let (ok, stderr) = run(&["import", file.to_str().unwrap()], target.path());
    assert!(ok, "{stderr}");
    assert!(
        stderr.contains(&format!("{} imported, 0 duplicates, 0 skipped", sent.len())),
        "{stderr}"
    );
    let (ok, out) = run(&["verify"], target.path());
    assert!(ok, "{out}");

    let copy = TestApp::spawn_in(target, tweak, vec![]).await;
    copy.settle().await;
    for ((id, body, _), original) in sent.iter().zip(&before) {
        let (status, detail) = copy.get_json(&format!("/api/webhooks/events/{id}")).await;
        assert_eq!(status, StatusCode::OK, "{id}: {detail}");
        assert_eq!(raw(&copy, id).await, (StatusCode::OK, body.clone()), "{id}");
        for key in [
            "status",
            "duplicateOf",
            "payload",
            "event",
            "action",
            "contentDuplicates",
        ] {
            assert_eq!(detail["data"][key], original[key], "{id} {key}");
        }
    }
}

/// A new install sees alerts fixed that it never saw opened: the open count is the
/// number of alerts whose last event opened them, never below zero.
#[tokio::test]
async fn security_alerts_are_counted_by_identity() {
    let app = TestApp::spawn().await;
    let base = fixture("dependabot_alert", 0).json;
    let repository = base["repository"]["full_name"].as_str().unwrap().to_owned();
    let alert = |number: u64, action: &str| {
        let mut payload = base.clone();
        payload["action"] = json!(action);
        payload["alert"]["number"] = json!(number);
        payload["alert"]["state"] = json!(if action == "fixed" { "fixed" } else { "open" });
        serde_json::to_vec(&payload).unwrap()
    };
    let open_alerts = || async {
        app.settle().await;
        let (status, body) = app
            .get_json(&format!("/api/repositories/{repository}"))
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body["data"]["openSecurityAlerts"].as_i64().unwrap_or(0)
    };
    for (number, action, expected) in [
        (1, "fixed", 0), // fixed before it was seen: not -1
        (2, "fixed", 0),
        (3, "created", 1),
        (3, "created", 1), // a second hook's copy: a duplicate, not a second alert
        (4, "reopened", 2),
        (3, "fixed", 1),
        (1, "reopened", 2), // the alert fixed unseen opens again
        (4, "dismissed", 1),
    ] {
        let (status, answer) = app
            .post_signed("dependabot_alert", &new_id(), &alert(number, action))
            .await;
        assert_eq!(status, StatusCode::OK, "{answer}");
        assert_eq!(
            open_alerts().await,
            expected,
            "after alert {number} {action}"
        );
    }
    let mut app = app;
    app.stop().await;
    let (ok, out) = run(&["verify"], app.data_dir.path());
    assert!(ok, "{out}");
}

#[tokio::test]
async fn test_events_read_right_for_their_action_and_can_be_removed() {
    let app = TestApp::spawn().await;
    let (status, closed) = app
        .post_json(
            "/api/webhooks/test",
            json!({"eventType": "pull_request", "repository": "octo/app", "action": "closed"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{closed}");
    assert_eq!(closed["data"]["payload"]["pull_request"]["state"], "closed");
    let (_, queued) = app
        .post_json(
            "/api/webhooks/test",
            json!({"eventType": "workflow_job", "repository": "octo/app", "action": "queued"}),
        )
        .await;
    assert_eq!(
        queued["data"]["payload"]["workflow_job"]["status"],
        "queued"
    );
    assert_eq!(
        queued["data"]["payload"]["workflow_job"]["conclusion"],
        Value::Null
    );
    let (status, merged) = app
        .post_json(
            "/api/webhooks/test",
            json!({"eventType": "pull_request", "action": "merged"}),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::BAD_REQUEST,
        "GitHub sends no 'merged': {merged}"
    );

    // A real delivery stays when the test events go.
    let real = new_id();
    app.post_signed("push", &real, &fixture("push", 0).bytes)
        .await;
    app.settle().await;
    let (_, stats) = app.get_json("/api/webhooks/statistics?hours=1").await;
    assert_eq!(stats["data"]["summary"]["totalEvents"], 3);

    let response = app
        .client
        .delete(app.url("/api/webhooks/test"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let removed: Value = response.json().await.unwrap();
    assert_eq!(removed["data"]["removed"], 2);
    let (_, stats) = app.get_json("/api/webhooks/statistics?hours=1").await;
    assert_eq!(stats["data"]["summary"]["totalEvents"], 1, "{stats}");
    assert_eq!(app.count("").await, 1);
    let (status, _) = app
        .get_json(&format!(
            "/api/webhooks/events/{}",
            closed["data"]["deliveryId"].as_str().unwrap()
        ))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let mut app = app;
    app.stop().await;
    let (ok, out) = run(&["verify"], app.data_dir.path());
    assert!(ok, "{out}");
}

/// Every command on a stopped instance refuses a missing or empty data dir: exit 2,
/// a message naming the directory, and nothing created.
#[tokio::test]
async fn offline_commands_never_create_a_store_or_a_secret() {
    let parent = tempfile::tempdir().unwrap();
    let missing = parent.path().join("no-such-dir");
    let empty = parent.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let export_file = parent.path().join("out.ndjson");
    for dir in [&missing, &empty] {
        for args in [
            vec!["verify"],
            vec!["reindex"],
            vec!["compact"],
            vec!["export", "--output", export_file.to_str().unwrap()],
        ] {
            let output = command(dir).args(&args).output().unwrap();
            let stderr = String::from_utf8_lossy(&output.stderr);
            assert_eq!(
                output.status.code(),
                Some(2),
                "{args:?} on {dir:?}: {stderr}"
            );
            assert!(stderr.contains(dir.to_str().unwrap()), "{args:?}: {stderr}");
            assert!(stderr.contains("--data-dir"), "{args:?}: {stderr}");
        }
    }
    assert!(!missing.exists(), "a command created the missing dir");
    assert_eq!(
        std::fs::read_dir(&empty).unwrap().count(),
        0,
        "a command wrote into it"
    );

    // Import fills a new dir, but makes no secret, and says how to bring it.
    std::fs::write(&export_file, "").unwrap();
    let target = parent.path().join("imported");
    let output = command(&target)
        .args(["import", export_file.to_str().unwrap()])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(!target.join("webhook-secret").exists());
    assert!(
        stderr.contains("no webhook secret") && stderr.contains("GITHUB_WEBHOOK_SECRET"),
        "{stderr}"
    );

    // A running server holds its store: the command says to stop it.
    let app = TestApp::spawn().await;
    app.count("").await; // answered: the store is open
    let output = command(app.data_dir.path()).arg("verify").output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("stop the server first"), "{stderr}");
}

#[tokio::test]
async fn unknown_query_parameters_are_refused_with_the_closest_known_one() {
    let app = TestApp::spawn().await;
    app.post_signed("push", &new_id(), &fixture("push", 0).bytes)
        .await;
    for (path, unknown, hint) in [
        ("/api/webhooks/events?repo=nope", "repo", "repository"),
        (
            "/api/webhooks/events?start_date=2026-01-01",
            "start_date",
            "startDate",
        ),
        ("/api/webhooks/statistics?hour=2", "hour", "hours"),
        ("/api/webhooks/search?query=push", "query", "q"),
        ("/api/webhooks/failed?limt=2", "limt", "limit"),
    ] {
        let (status, body) = app.get_json(path).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path}: {body}");
        assert_eq!(body["error"]["code"], "invalid_parameter");
        let message = body["error"]["message"].as_str().unwrap();
        assert!(
            message.contains(unknown) && message.contains(&format!("did you mean {hint}?")),
            "{path}: {message}"
        );
    }
    let (status, body) = app.get_json("/api/webhooks/events?repository=nope").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["pagination"]["total"], 0);
}

#[tokio::test]
async fn bare_words_find_names_and_dates_take_the_events_api_forms() {
    let app = TestApp::spawn().await;
    let push = fixture("push", 0);
    let id = new_id();
    app.post_signed("push", &id, &push.bytes).await;
    let repository = push.json["repository"]["full_name"]
        .as_str()
        .unwrap()
        .to_owned();
    let (owner, name) = repository.split_once('/').unwrap();
    let sender = push.json["sender"]["login"].as_str().unwrap().to_owned();
    let today = time::OffsetDateTime::now_utc().date();
    let range = format!(
        "received:[{} TO {}]",
        today - time::Duration::days(1),
        today + time::Duration::days(1)
    );
    for q in [
        owner,
        name,
        sender.as_str(),
        "push",
        repository.as_str(),
        range.as_str(),
    ] {
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        loop {
            let url = format!("/api/webhooks/search?q={}", urlencode(q));
            let (status, body) = app.get_json(&url).await;
            assert_eq!(status, StatusCode::OK, "{q}: {body}");
            let hits: Vec<&str> = body["data"]["hits"]
                .as_array()
                .unwrap()
                .iter()
                .filter_map(|h| h["deliveryId"].as_str())
                .collect();
            if hits.contains(&id.as_str()) {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{q} never found it: {body}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

fn urlencode(q: &str) -> String {
    form_urlencoded::byte_serialize(q.as_bytes()).collect()
}
