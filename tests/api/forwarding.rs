//! Forwarding to targets, against real HTTP receivers (`receiver.rs`) that succeed,
//! fail with 500, time out, close the connection, are down and come back: every
//! matching delivery reaches each target at least once, byte for byte, with GitHub's
//! headers and a signature the target can verify; filters select exactly the
//! matching deliveries; order per repository holds where asked; what a target never
//! takes is kept as failed and re-sent on request.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use futures::StreamExt;
use hmac::{Hmac, Mac};
use hookvault::ingest::Signature;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{Delivery, SECRET, TestApp, fixture, fixtures, new_id};
use crate::receiver::{Answer, Receiver};

const TARGET_SECRET: &str = "the target's own secret";

/// Fast retries, so a test sees many attempts in little time.
fn quick(name: &str, url: &str) -> Value {
    json!({
        "name": name,
        "url": url,
        "start": "beginning",
        "timeoutMs": 500,
        "backoffMs": 10,
        "maxBackoffMs": 100,
    })
}

fn with(mut base: Value, extra: Value) -> Value {
    base.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    base
}

async fn create(app: &TestApp, spec: Value) -> Value {
    let (status, body) = app.post_json("/api/forwarding/targets", spec).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body["data"].clone()
}

async fn target(app: &TestApp, name: &str) -> Value {
    let (status, body) = app
        .get_json(&format!("/api/forwarding/targets/{name}"))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["data"].clone()
}

/// Waits until the target's cursor has passed every stored delivery.
async fn caught_up(app: &TestApp, name: &str) -> Value {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let view = target(app, name).await;
        if view["backlog"] == 0 && view["inFlight"] == 0 {
            return view;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "not caught up: {view}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Posts every fixture once, each under a new delivery id; returns (id, fixture index).
async fn post_fixtures(app: &TestApp) -> Vec<(String, usize)> {
    let mut posted = Vec::new();
    for (i, f) in fixtures().iter().enumerate() {
        let id = new_id();
        let (status, body) = app.post(Delivery::new(&f.event, &id, &f.bytes)).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        if body["data"]["status"] == "stored" {
            posted.push((id, i));
        }
    }
    posted
}

fn sha1_hex(secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<sha1::Sha1>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

#[tokio::test]
async fn every_matching_delivery_arrives_as_github_sent_it() {
    let app = TestApp::spawn_with(|c| c.dedup_ttl = Duration::ZERO).await;
    let (signed_again, passed_through) = (Receiver::start().await, Receiver::start().await);
    create(
        &app,
        with(
            quick("all", &signed_again.url),
            json!({"secret": TARGET_SECRET}),
        ),
    )
    .await;
    create(
        &app,
        with(
            quick("some", &passed_through.url),
            json!({"events": ["pull_request", "issues"], "actions": ["opened"], "repositories": ["*/*"]}),
        ),
    )
    .await;
    let posted = post_fixtures(&app).await;
    let corpus = fixtures();
    let by_id: HashMap<&str, usize> = posted.iter().map(|(id, i)| (id.as_str(), *i)).collect();
    caught_up(&app, "all").await;
    caught_up(&app, "some").await;

    let all = signed_again.received();
    let ids: HashSet<&str> = all.iter().map(|r| r.delivery_id()).collect();
    assert_eq!(
        ids.len(),
        posted.len(),
        "every stored delivery reached the target"
    );
    for request in &all {
        let f = &corpus[by_id[request.delivery_id()]];
        assert_eq!(request.body, f.bytes, "the body byte for byte");
        assert_eq!(request.header("x-github-event"), f.event);
        assert_eq!(request.header("x-github-hook-id"), "292430182");
        assert_eq!(request.header("content-type"), "application/json");
        assert_eq!(request.header("user-agent"), "GitHub-Hookshot/044aadd");
        // Signed again with the target's secret, both of GitHub's ways.
        let expected = Signature::compute(TARGET_SECRET.as_bytes(), &f.bytes).to_header();
        assert_eq!(request.header("x-hub-signature-256"), expected);
        let sha1 = format!("sha1={}", sha1_hex(TARGET_SECRET, &f.bytes));
        assert_eq!(request.header("x-hub-signature"), sha1);
        assert!(request.seq() > 0);
        assert_eq!(request.attempt(), 1);
    }

    // The filtered target got exactly the matching ones, with GitHub's signature.
    let matching: HashSet<&str> = posted
        .iter()
        .filter(|(_, i)| {
            let f = &corpus[*i];
            ["pull_request", "issues"].contains(&f.event.as_str())
                && f.action() == Some("opened")
                && f.repository().is_some()
        })
        .map(|(id, _)| id.as_str())
        .collect();
    assert!(!matching.is_empty(), "the fixtures have some to match");
    let some = passed_through.received();
    let got: HashSet<&str> = some.iter().map(|r| r.delivery_id()).collect();
    assert_eq!(got, matching, "exactly the matching deliveries");
    for request in &some {
        let f = &corpus[by_id[request.delivery_id()]];
        let github = Signature::compute(SECRET.as_bytes(), &f.bytes).to_header();
        assert_eq!(
            request.header("x-hub-signature-256"),
            github,
            "GitHub's own"
        );
    }

    let metrics = app.metrics().await;
    let line = format!(
        "hookvault_forward_delivered_total{{target=\"all\"}} {}",
        posted.len()
    );
    assert!(metrics.contains(&line), "{line} in\n{metrics}");
    assert!(metrics.contains("hookvault_forward_backlog{target=\"some\"} 0"));
}

#[tokio::test]
async fn failures_are_retried_until_the_target_takes_the_delivery() {
    let app = TestApp::spawn_with(|c| c.dedup_ttl = Duration::ZERO).await;
    let receiver = Receiver::start().await;
    // Every delivery: a 500, a timeout, a closed connection, then a 200.
    receiver.answer(|request| match request.attempt() {
        1 => Answer::Status(500),
        2 => Answer::Hang,
        3 => Answer::Close,
        _ => Answer::Status(200),
    });
    create(
        &app,
        with(
            quick("flaky", &receiver.url),
            json!({"timeoutMs": 300, "circuitThreshold": 1000}),
        ),
    )
    .await;
    let posted = post_fixtures(&app).await;
    let view = caught_up(&app, "flaky").await;
    assert_eq!(view["failed"], 0, "{view}");
    assert_eq!(view["delivered"], posted.len());
    let received = receiver.received();
    for (id, _) in &posted {
        let attempts: Vec<u32> = received
            .iter()
            .filter(|r| r.delivery_id() == id)
            .map(|r| r.attempt())
            .collect();
        assert_eq!(attempts.len(), 4, "{id}: {attempts:?}");
        assert!(attempts.contains(&4));
    }
    // The attempts are shown: status, error and the start of the answer.
    let recent = view["recentAttempts"].as_array().unwrap();
    assert!(
        recent
            .iter()
            .any(|a| a["status"] == 200 && a["error"].is_null())
    );
    assert!(view["lastError"]["message"].is_string(), "{view}");
    assert!(view["lastSuccessAt"].is_string(), "{view}");
}

#[tokio::test]
async fn a_target_down_for_2000_deliveries_gets_every_one_when_back() {
    let app = TestApp::spawn_with(|c| {
        c.dedup_ttl = Duration::ZERO;
        c.rate_limit = None;
    })
    .await;
    // A port nobody listens on yet: connections are refused.
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let url = format!("http://127.0.0.1:{port}/github-webhook/");
    create(
        &app,
        with(
            quick("down", &url),
            json!({"maxBackoffMs": 200, "concurrency": 8}),
        ),
    )
    .await;
    let corpus = fixtures();
    let ids: Vec<String> = (0..2000).map(|_| new_id()).collect();
    let posted: Vec<StatusCode> = futures::stream::iter(ids.iter().enumerate())
        .map(|(i, id)| {
            let f = &corpus[i % corpus.len()];
            app.post_unapplied(Delivery::new(&f.event, id, &f.bytes))
        })
        .buffer_unordered(16)
        .map(|(status, _)| status)
        .collect()
        .await;
    assert!(posted.iter().all(|s| *s == StatusCode::OK));
    app.applied().await;
    let view = target(&app, "down").await;
    assert_eq!(view["state"], "open", "the circuit opened: {view}");
    assert!(view["backlog"].as_u64().unwrap() >= 1990, "{view}");
    assert_eq!(view["failed"], 0, "an outage marks nothing failed");

    let receiver = Receiver::start_on(port).await;
    let received = receiver
        .wait_until("all 2000", |r| {
            r.iter()
                .map(|r| r.delivery_id())
                .collect::<HashSet<_>>()
                .len()
                >= 2000
        })
        .await;
    let got: HashSet<&str> = received.iter().map(|r| r.delivery_id()).collect();
    let sent: HashSet<&str> = ids.iter().map(String::as_str).collect();
    assert_eq!(got, sent);
    let view = caught_up(&app, "down").await;
    assert_eq!(view["state"], "healthy", "{view}");
    assert_eq!(view["failed"], 0);
}

#[tokio::test]
async fn an_ordered_target_gets_each_repositorys_deliveries_one_at_a_time_in_order() {
    let app = TestApp::spawn_with(|c| {
        c.dedup_ttl = Duration::ZERO;
        c.rate_limit = None;
    })
    .await;
    let receiver = Receiver::start().await;
    // Slow and uneven answers, and a failure now and then: without the order
    // guarantee, later deliveries would overtake earlier ones.
    receiver.answer(|request| {
        std::thread::sleep(Duration::from_millis(request.seq() % 7));
        if request.seq() % 5 == 0 && request.attempt() == 1 {
            Answer::Status(503)
        } else {
            Answer::Status(200)
        }
    });
    create(
        &app,
        with(
            quick("ordered", &receiver.url),
            json!({"ordered": true, "concurrency": 8, "circuitThreshold": 1000}),
        ),
    )
    .await;
    let push = fixture("push", 1);
    let repositories = ["octo-org/a", "octo-org/b", "octo-org/c", "octo-org/d"];
    for i in 0..120 {
        let mut json = push.json.clone();
        json["repository"]["full_name"] = json!(repositories[i % 4]);
        json["ref"] = json!(format!("refs/heads/branch-{i}"));
        let body = serde_json::to_vec(&json).unwrap();
        let (status, _) = app
            .post_unapplied(Delivery::new("push", &new_id(), &body))
            .await;
        assert_eq!(status, StatusCode::OK);
    }
    caught_up(&app, "ordered").await;
    let received = receiver.received();
    let mut taken: HashMap<String, Vec<u64>> = HashMap::new();
    let mut concurrent_per_repository = false;
    for request in &received {
        let json: Value = serde_json::from_slice(&request.body).unwrap();
        let repository = json["repository"]["full_name"].as_str().unwrap().to_owned();
        let seqs = taken.entry(repository).or_default();
        // The previous delivery of the repository must have been answered: a
        // retry of the same seq, or the next seq, never an overtaking one.
        if let Some(last) = seqs.last() {
            concurrent_per_repository |= *last > request.seq();
        }
        if seqs.last() != Some(&request.seq()) {
            seqs.push(request.seq());
        }
    }
    assert!(
        !concurrent_per_repository,
        "a later delivery overtook an earlier one"
    );
    for (repository, seqs) in &taken {
        assert_eq!(seqs.len(), 30, "{repository}");
        assert!(
            seqs.windows(2).all(|w| w[0] < w[1]),
            "{repository}: {seqs:?}"
        );
    }
}

#[tokio::test]
async fn a_delivery_the_target_refuses_is_kept_as_failed_and_re_sent_on_request() {
    let app = TestApp::spawn_with(|c| c.dedup_ttl = Duration::ZERO).await;
    let receiver = Receiver::start().await;
    let push = fixture("push", 1);
    let refused = new_id();
    let refused_id = refused.clone();
    receiver.answer(move |request| {
        if request.delivery_id() == refused_id {
            Answer::Status(422)
        } else {
            Answer::Status(202)
        }
    });
    create(
        &app,
        with(quick("picky", &receiver.url), json!({"maxAttempts": 3})),
    )
    .await;
    let (status, _) = app.post(Delivery::new("push", &refused, &push.bytes)).await;
    assert_eq!(status, StatusCode::OK);
    let posted = post_fixtures(&app).await;
    let view = caught_up(&app, "picky").await;
    // The cursor went past it: the others were not held up.
    assert_eq!(view["failed"], 1, "{view}");
    assert_eq!(view["delivered"], posted.len());
    let (status, page) = app.get_json("/api/forwarding/targets/picky/failed").await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(page["pagination"]["total"], 1);
    let failed = &page["data"][0];
    assert_eq!(failed["deliveryId"], refused.as_str());
    assert_eq!(failed["event"], "push");
    let attempts = failed["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 3);
    assert!(
        attempts
            .iter()
            .all(|a| a["status"] == 422 && a["answer"] == "answer 422")
    );

    // Survives a restart, then the target takes it when re-sent.
    let app = app.restart().await;
    assert_eq!(target(&app, "picky").await["failed"], 1);
    receiver.answer(|_| Answer::Status(200));
    // A time range selects by when the deliveries were received; a selection must be
    // exactly one.
    for (selection, status, queued) in [
        (
            json!({"from": "2000-01-01T00:00:00Z", "to": "2000-01-02T00:00:00Z"}),
            202,
            Some(0),
        ),
        (json!({"from": "yesterday"}), 400, None),
        (json!({"all": true, "seq": 1}), 400, None),
        (json!({}), 400, None),
    ] {
        let (got, body) = app
            .post_json("/api/forwarding/targets/picky/resend", selection.clone())
            .await;
        assert_eq!(got.as_u16(), status, "{selection}: {body}");
        if let Some(queued) = queued {
            assert_eq!(body["data"]["queued"], queued, "{selection}");
        }
    }
    let (status, body) = app
        .post_json(
            "/api/forwarding/targets/picky/resend",
            json!({
                "from": hookvault::domain::timestamp::to_rfc3339(hookvault::domain::timestamp::now_ms() - 3_600_000),
                "to": hookvault::domain::timestamp::to_rfc3339(hookvault::domain::timestamp::now_ms()),
            }),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(body["data"]["queued"], 1);
    let received = receiver
        .wait_until("the re-sent delivery", |r| {
            r.iter()
                .any(|r| r.delivery_id() == refused && r.attempt() == 4)
        })
        .await;
    let taken = received.iter().find(|r| r.attempt() == 4).unwrap();
    assert_eq!(taken.body, push.bytes);
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while target(&app, "picky").await["failed"] != 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the failure was not cleared"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Nothing else was sent twice.
    let mut seen = HashSet::new();
    for request in receiver.received() {
        if request.delivery_id() != refused {
            assert!(seen.insert(request.delivery_id().to_owned()), "sent twice");
        }
    }
    let (status, body) = app
        .post_json(
            "/api/forwarding/targets/picky/resend",
            json!({"deliveryId": refused}),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "no longer failed: {body}");
}

#[tokio::test]
async fn targets_are_managed_through_the_api_and_checked() {
    let app = TestApp::spawn_with(|c| c.forward = vec!["http://127.0.0.1:9/hook".into()]).await;
    let receiver = Receiver::start().await;
    let created = create(
        &app,
        json!({"name": "ci", "url": receiver.url, "secret": "s3cret-value", "events": ["push"]}),
    )
    .await;
    assert_eq!(created["hasSecret"], true);
    assert_eq!(created["source"], "api");
    assert_eq!(created["state"], "healthy");
    assert_eq!(created["concurrency"], 4, "defaults filled in");
    let (_, list) = app.get_json("/api/forwarding/targets").await;
    let text = list.to_string();
    assert!(
        !text.contains("s3cret-value"),
        "secrets are never returned: {text}"
    );
    let names: Vec<&str> = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["127.0.0.1-9-hook", "ci"]);
    assert_eq!(list["data"][0]["source"], "settings");

    for (spec, status, code) in [
        (
            json!({"name": "ci", "url": receiver.url}),
            409,
            "target_exists",
        ),
        (
            json!({"name": "meta", "url": "http://169.254.169.254/latest/meta-data/"}),
            400,
            "invalid_target",
        ),
        (
            json!({"name": "v6meta", "url": "http://[fd00:ec2::254]/"}),
            400,
            "invalid_target",
        ),
        (
            json!({"name": "x", "url": "gopher://a/"}),
            400,
            "invalid_target",
        ),
        (
            json!({"name": "x", "url": "http://a/", "retries": 3}),
            400,
            "invalid_body",
        ),
        (
            json!({"name": "x/y", "url": "http://a/"}),
            400,
            "invalid_target",
        ),
    ] {
        let (got, body) = app.post_json("/api/forwarding/targets", spec.clone()).await;
        assert_eq!(got.as_u16(), status, "{spec}: {body}");
        assert_eq!(body["error"]["code"], code, "{spec}: {body}");
    }
    let (status, body) = app
        .post_json(
            "/api/forwarding/targets",
            json!({"name": "meta", "url": "http://169.254.169.254/", "allowLinkLocal": true}),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::CREATED,
        "allowed when asked for: {body}"
    );

    // Redirects are not followed unless asked for: a 3xx is a failed attempt.
    let redirecting = Receiver::start().await;
    redirecting.answer(|_| Answer::Status(307));
    create(
        &app,
        with(quick("moved", &redirecting.url), json!({"maxAttempts": 1})),
    )
    .await;

    // PUT replaces the settings, keeps the secret and the cursor.
    let push = fixture("push", 1);
    app.post(Delivery::new("push", &new_id(), &push.bytes))
        .await;
    caught_up(&app, "ci").await;
    let cursor = target(&app, "ci").await["cursor"].clone();
    let response = app
        .client
        .put(app.url("/api/forwarding/targets/ci"))
        .json(&json!({"url": receiver.url, "events": ["push", "issues"], "concurrency": 2}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let replaced: Value = response.json().await.unwrap();
    assert_eq!(replaced["data"]["hasSecret"], true);
    assert_eq!(replaced["data"]["concurrency"], 2);
    assert_eq!(replaced["data"]["cursor"], cursor);
    let moved = caught_up(&app, "moved").await;
    assert_eq!(moved["failed"], 1, "{moved}");
    let attempt = &moved["recentAttempts"][0];
    assert_eq!(attempt["status"], 307);
    assert!(
        attempt["error"]
            .as_str()
            .unwrap()
            .contains("redirects are not followed"),
        "{attempt}"
    );
    assert_eq!(redirecting.received().len(), 1, "tried once, not followed");
    let request = &receiver.received()[0];
    let expected = Signature::compute(b"s3cret-value", &push.bytes).to_header();
    assert_eq!(request.header("x-hub-signature-256"), expected);

    // A target from the settings changes only there.
    let settings_target = app.url("/api/forwarding/targets/127.0.0.1-9-hook");
    let response = app.client.delete(&settings_target).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::CONFLICT);
    let response = app
        .client
        .delete(app.url("/api/forwarding/targets/ci"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let (status, _) = app.get_json("/api/forwarding/targets/ci").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // Gone for good: not back after a restart.
    let app = app.restart().await;
    let (_, list) = app.get_json("/api/forwarding/targets").await;
    let names: Vec<&str> = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["127.0.0.1-9-hook", "meta", "moved"]);
}

/// The one-line setup (`HOOKVAULT_FORWARD`) on the real binary, SIGKILLed while it
/// forwards under load with deliveries in flight: after the restart the target takes
/// every acknowledged delivery, and gets again exactly those that were in flight at
/// the kill (sent, not answered). One delivery hangs before the kill, so the durable
/// cursor stays behind it while hundreds after it are taken: a restart from the
/// cursor alone would send all of those again.
#[tokio::test]
async fn a_sigkill_while_forwarding_loses_nothing_and_repeats_only_what_was_in_flight() {
    use crate::process::{Binary, command};
    use crate::receiver::Request;
    use std::sync::{Arc, Mutex};
    use std::time::Instant;

    let receiver = Receiver::start().await;
    let dir = tempfile::tempdir().unwrap();
    let start = || {
        let mut cmd = command(dir.path());
        cmd.env("GITHUB_WEBHOOK_SECRET", SECRET)
            .env("WEBHOOK_DEDUP_TTL", "0")
            .env("HOOKVAULT_FORWARD", &receiver.url);
        Binary::start(cmd)
    };
    let mut binary = start();
    let load = crate::helpers::LoadUntilGone::start(&binary.address, 16);
    receiver
        .wait_until("forwarding under way", |r| r.len() >= 100)
        .await;
    // The next request hangs; the others are taken.
    let hung: Arc<Mutex<Option<u64>>> = Arc::default();
    receiver.answer({
        let hung = hung.clone();
        move |request| {
            let mut hung = hung.lock().unwrap();
            if hung.is_none() {
                *hung = Some(request.seq());
                return Answer::Hang;
            }
            Answer::Status(200)
        }
    });
    let taken_past_hung = |requests: &[Request]| {
        let hung = hung.lock().unwrap().unwrap_or(u64::MAX);
        requests
            .iter()
            .filter(|r| r.seq() > hung && r.taken_at.is_some())
            .count()
    };
    receiver
        .wait_until("200 taken past the hung delivery", |r| {
            taken_past_hung(r) >= 200
        })
        .await;
    // Then every request hangs, and the kill comes once hookvault has read every
    // answer the target wrote (an answer still in a socket buffer is in flight).
    receiver.answer(|_| Answer::Hang);
    tokio::time::sleep(Duration::from_millis(50)).await;
    let client = crate::helpers::client();
    let target_view = |address: String| {
        let client = client.clone();
        async move {
            let list: Value = client
                .get(format!("{address}/api/forwarding/targets"))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            list["data"][0].clone()
        }
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let taken = receiver
            .received()
            .iter()
            .filter(|r| r.taken_at.is_some())
            .count();
        let view = target_view(binary.address.clone()).await;
        if view["delivered"].as_u64() == Some(taken as u64) {
            break;
        }
        assert!(Instant::now() < deadline, "{taken} taken: {view}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let killed_at = Instant::now();
    binary.child.kill().unwrap();
    binary.child.wait().unwrap();
    let acknowledged = load.finish().await;
    let taken_past_hung = taken_past_hung(&receiver.received());
    receiver.answer(|_| Answer::Status(200));

    let restarted = start();
    // Every acknowledged delivery is taken (and those whose answer the kill cut off,
    // which the log kept).
    receiver
        .wait_until("every acknowledged delivery taken", |requests| {
            let taken: HashSet<&str> = requests
                .iter()
                .filter(|r| r.taken_at.is_some())
                .map(|r| r.delivery_id())
                .collect();
            acknowledged.iter().all(|id| taken.contains(id.as_str()))
        })
        .await;
    // And what was stored but not acknowledged (the kill cut the answer off).
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let view = target_view(restarted.address.clone()).await;
        if view["backlog"] == 0 && view["inFlight"] == 0 {
            break;
        }
        assert!(Instant::now() < deadline, "not caught up: {view}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let received = receiver.received();

    // In flight at the kill: received before it and not taken.
    let in_flight: HashSet<u64> = received
        .iter()
        .filter(|r| r.at < killed_at && r.taken_at.is_none())
        .map(Request::seq)
        .collect();
    let before: HashMap<&str, &Request> = received
        .iter()
        .filter(|r| r.at < killed_at)
        .map(|r| (r.delivery_id(), r))
        .collect();
    let mut sent_again = HashSet::new();
    for request in received.iter().filter(|r| r.at >= killed_at) {
        let Some(first) = before.get(request.delivery_id()) else {
            continue;
        };
        assert!(
            !received
                .iter()
                .any(|r| r.seq() == first.seq() && r.at < killed_at && r.taken_at.is_some()),
            "seq {} was sent again, though the target took it before the kill",
            first.seq()
        );
        assert!(
            sent_again.insert(request.seq()),
            "seq {} was sent again twice",
            request.seq()
        );
    }
    assert_eq!(
        sent_again, in_flight,
        "sent again after the restart: exactly what was in flight at the kill"
    );
    eprintln!(
        "killed with {} acknowledged, {} forwarded, {taken_past_hung} taken past the hung one; \
         {} sent again after the restart: {sent_again:?}",
        acknowledged.len(),
        before.len(),
        sent_again.len()
    );
    restarted.terminate();
}
