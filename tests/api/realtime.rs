//! Socket.IO with the official clients: the documented JavaScript (`socket.io-client`) and
//! Python (`python-socketio`) examples run against hookvault; `/webhooks` filters and
//! lossless resume; `/monitoring` updates; access control; the served browser client.
//!
//! The clients are installed by `.ci/run`. Outside CI a missing client skips its
//! test, named on standard output when the run ends; under CI (`CI` set) it fails.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use futures::StreamExt;
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::mpsc;

use crate::helpers::{Delivery, TestApp, fixture, new_id};

const TOKEN: &str = "test-token-0123456789";

fn clients_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/clients")
}

/// A client process and its output lines.
struct Client {
    _child: Child,
    lines: mpsc::UnboundedReceiver<String>,
    seen: Vec<String>,
}

fn missing(what: &str) -> Option<Client> {
    crate::skips::skip(&format!("{what} is not installed"));
    None
}

fn spawn(mut command: Command) -> Client {
    command
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true);
    let mut child = command.spawn().expect("client starts");
    let stdout = child.stdout.take().unwrap();
    let (tx, lines) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut reader = BufReader::new(stdout).lines();
        while let Ok(Some(line)) = reader.next_line().await {
            let _ = tx.send(line);
        }
    });
    Client {
        _child: child,
        lines,
        seen: Vec::new(),
    }
}

fn node(app: &TestApp, script: &str, args: &[&str]) -> Option<Client> {
    node_at(&app.address, script, args)
}

fn node_at(address: &str, script: &str, args: &[&str]) -> Option<Client> {
    let dir = clients_dir().join("js");
    if !dir.join("node_modules/socket.io-client").exists() {
        return missing("socket.io-client (npm ci --prefix tests/clients/js)");
    }
    let mut command = Command::new("node");
    command
        .arg(dir.join(script))
        .args(args)
        .env("HOOKVAULT_URL", address);
    Some(spawn(command))
}

fn python(app: &TestApp, script: &str) -> Option<Client> {
    let probe = std::process::Command::new("python3")
        .args(["-c", "import socketio, requests"])
        .output();
    if !probe.is_ok_and(|o| o.status.success()) {
        return missing("python-socketio (pip install -r tests/clients/python/requirements.txt)");
    }
    let mut command = Command::new("python3");
    command
        .arg(clients_dir().join("python").join(script))
        .env("HOOKVAULT_URL", &app.address);
    Some(spawn(command))
}

impl Client {
    /// Waits for a line containing `needle`; returns it.
    async fn expect(&mut self, needle: &str) -> String {
        if let Some(line) = self.seen.iter().find(|l| l.contains(needle)) {
            return line.clone();
        }
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            match tokio::time::timeout_at(deadline, self.lines.recv()).await {
                Ok(Some(line)) => {
                    self.seen.push(line.clone());
                    if line.contains(needle) {
                        return line;
                    }
                }
                _ => panic!("no line with {needle:?}; got {:#?}", self.seen),
            }
        }
    }

    /// Every line that arrives within `period`. For periodic messages (`/monitoring`
    /// updates), where waiting for a quiet moment as `drain` does may never end.
    async fn read_for(&mut self, period: Duration) -> Vec<String> {
        let until = tokio::time::Instant::now() + period;
        while let Ok(Some(line)) = tokio::time::timeout_at(until, self.lines.recv()).await {
            self.seen.push(line);
        }
        self.seen.clone()
    }

    /// Reads until `count` reports of `kind` have arrived (20 s at most), so a slow
    /// machine makes the test slower, not red.
    async fn expect_reports(&mut self, kind: &str, count: usize) -> Vec<Value> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        while self.reports(kind).len() < count {
            match tokio::time::timeout_at(deadline, self.lines.recv()).await {
                Ok(Some(line)) => self.seen.push(line),
                _ => panic!(
                    "{count} {kind} reports expected, got {}: {:#?}",
                    self.reports(kind).len(),
                    self.seen
                ),
            }
        }
        self.reports(kind)
    }

    /// Lines until none arrives for `idle`.
    async fn drain(&mut self, idle: Duration) -> Vec<String> {
        while let Ok(Some(line)) = tokio::time::timeout(idle, self.lines.recv()).await {
            self.seen.push(line);
        }
        self.seen.clone()
    }

    fn reports(&self, kind: &str) -> Vec<Value> {
        self.seen
            .iter()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|v| v["kind"] == kind)
            .map(|v| v["data"].clone())
            .collect()
    }
}

/// A fixture retargeted at another repository.
fn retargeted(event: &str, n: usize, repository: &str) -> Vec<u8> {
    let mut payload = fixture(event, n).json;
    payload["repository"]["full_name"] = json!(repository);
    payload["repository"]["owner"]["login"] = json!(repository.split('/').next().unwrap());
    serde_json::to_vec(&payload).unwrap()
}

#[tokio::test]
async fn the_seed_javascript_example_works_unmodified() {
    let app = TestApp::spawn().await;
    let Some(mut client) = node(&app, "seed.mjs", &[]) else {
        return;
    };
    client.expect("\"ready\"").await;

    // workflow_job example 1: job "linters", completed with "failure".
    app.post_signed(
        "workflow_job",
        &new_id(),
        &retargeted("workflow_job", 1, "myorg/myrepo"),
    )
    .await;
    let mut push = fixture("push", 4).json;
    push["repository"]["full_name"] = json!("myorg/myrepo");
    push["ref"] = json!("refs/heads/seed-test");
    app.post_signed("push", &new_id(), &serde_json::to_vec(&push).unwrap())
        .await;
    push["repository"]["full_name"] = json!("someone/else");
    push["ref"] = json!("refs/heads/not-subscribed");
    app.post_signed("push", &new_id(), &serde_json::to_vec(&push).unwrap())
        .await;
    let alert = fixture("dependabot_alert", 0);
    app.post_signed("dependabot_alert", &new_id(), &alert.bytes)
        .await;

    client.expect("Job linters is completed").await;
    client.expect("Conclusion: failure").await;
    let expected_alert = format!(
        "Security issue in {}: dependabot_alert",
        alert.repository().unwrap()
    );
    client.expect(&expected_alert).await;
    client.expect("refs/heads/seed-test").await;
    client.expect("\"health\"").await;
    client.drain(Duration::from_millis(500)).await;
    assert!(
        !client.seen.iter().any(|l| l.contains("not-subscribed")),
        "only subscribed repositories: {:#?}",
        client.seen
    );
    let kinds: Vec<Value> = client.reports("webhook-event");
    assert_eq!(
        kinds,
        vec![json!("workflow_job"), json!("push")],
        "webhook-event for each subscribed event"
    );
}

#[tokio::test]
async fn the_seed_python_example_works_unmodified() {
    let app = TestApp::spawn().await;
    let Some(mut client) = python(&app, "seed.py") else {
        return;
    };
    client.expect("Success rate: ").await;
    client.expect("\"ready\"").await;
    app.post_signed(
        "workflow_job",
        &new_id(),
        &retargeted("workflow_job", 3, "myorg/myrepo"),
    )
    .await;
    let alert = fixture("code_scanning_alert", 0);
    app.post_signed("code_scanning_alert", &new_id(), &alert.bytes)
        .await;
    client
        .expect("Job Analyze (javascript) is in_progress")
        .await;
    client
        .expect(&format!(
            "SECURITY ALERT: code_scanning_alert in {}",
            alert.repository().unwrap()
        ))
        .await;
}

#[tokio::test]
async fn webhooks_subscribers_get_exactly_what_their_filter_selects() {
    let app = TestApp::spawn_with(|c| c.dedup_ttl = Duration::ZERO).await;
    let filter = r#"{"repository":"octo/filtered","eventType":"issues"}"#;
    let Some(mut client) = node(&app, "client.mjs", &["webhooks", filter]) else {
        return;
    };
    client.expect("\"ready\"").await;

    let mut wanted = Vec::new();
    for (event, n, repository) in [
        ("issues", 0, "octo/filtered"),
        ("issues", 1, "octo/other"),
        ("push", 0, "octo/filtered"),
        ("issues", 2, "octo/filtered"),
        ("issue_comment", 0, "octo/filtered"),
    ] {
        let id = new_id();
        app.post_signed(event, &id, &retargeted(event, n, repository))
            .await;
        if event == "issues" && repository == "octo/filtered" {
            wanted.push(id);
        }
    }
    app.settle().await;
    // Every wanted event first, however long it takes; then a quiet moment for any
    // that should not come.
    client.expect_reports("event", wanted.len()).await;
    client.drain(Duration::from_millis(700)).await;
    let got: Vec<String> = client
        .reports("event")
        .iter()
        .map(|e| e["deliveryId"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(got, wanted);
    // A delivery is stored and processed in one commit: it arrives processed.
    let events = client.reports("event");
    assert!(
        events.iter().all(|e| e["status"] == "processed"),
        "{events:?}"
    );
    assert!(client.reports("event-updated").is_empty());

    // A later status change (a replay) is reported as an update, for matching
    // events only.
    let other = new_id();
    app.post_signed("issues", &other, &retargeted("issues", 1, "octo/other"))
        .await;
    for id in [&wanted[0], &other] {
        let (status, _) = app
            .post_json(&format!("/api/webhooks/replay/{id}"), json!({}))
            .await;
        assert_eq!(status, StatusCode::OK);
    }
    client.expect_reports("event-updated", 1).await;
    client.drain(Duration::from_millis(700)).await;
    let updated = client.reports("event-updated");
    let wanted_id = events[0]["id"].clone();
    assert_eq!(updated.len(), 1, "{updated:?}");
    assert_eq!(updated[0]["id"], wanted_id);
    assert_eq!(updated[0]["status"], "processed");
}

#[tokio::test]
async fn a_resuming_subscriber_loses_nothing_and_gets_nothing_twice() {
    let app = TestApp::spawn_with(|c| c.dedup_ttl = Duration::ZERO).await;
    let Some(mut client) = node(&app, "client.mjs", &["resume", "20"]) else {
        return;
    };
    client.expect("\"ready\"").await;
    let body = fixture("ping", 0).bytes;
    let burst = 150;
    let app_ref = &app;
    let posts = futures::future::join_all((0..burst).map(|_| async {
        app_ref.post_signed("ping", &new_id(), &body).await;
    }));
    // Posted in waves so the burst is still going when the client drops and resumes.
    posts.await;
    client.expect("\"dropped\"").await;
    client.drain(Duration::from_millis(1500)).await;
    let ids: Vec<u64> = client
        .reports("event")
        .iter()
        .map(|e| e["id"].as_u64().unwrap())
        .collect();
    let expected: Vec<u64> = (1..=burst).collect();
    assert_eq!(
        ids, expected,
        "every event once, in order, across the reconnect"
    );
}

#[tokio::test]
async fn monitoring_sends_updates_on_connect_and_on_a_timer() {
    let app = TestApp::spawn_with(|c| c.monitor_interval = Duration::from_millis(200)).await;
    let Some(mut client) = node(&app, "client.mjs", &["monitoring"]) else {
        return;
    };
    client.expect("\"update\"").await;
    let on_connect = client.reports("update")[0].clone();
    assert_eq!(on_connect["totals"]["events"], 0, "{on_connect}");
    // Posted once the client is connected: the timer's updates must show it, and
    // "per minute" is a wall-clock window, which a paused VM can jump past (a CI
    // run saw ~60 s) if the client takes long to start after the post.
    app.post_signed("ping", &new_id(), &fixture("ping", 0).bytes)
        .await;
    app.settle().await;
    // One on connect, then one per interval: waits for the first that counts the
    // delivery, however slow the machine (updates keep coming, so "until quiet"
    // would never end).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let updates = loop {
        let updates = client.expect_reports("update", 1).await;
        if updates.len() >= 3 && updates[updates.len() - 1]["totals"]["events"] == 1 {
            break updates;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no update counted the delivery: {updates:?}"
        );
        client.read_for(Duration::from_millis(100)).await;
    };
    let update = &updates[updates.len() - 1];
    for key in [
        "eventsPerMinute",
        "totals",
        "successRate",
        "avgProcessingTimeMs",
        "pending",
        "failed",
        "indexLag",
        "connectedClients",
        "webhookSubscribers",
        "droppedClients",
        "skippedBroadcasts",
        "uptimeSeconds",
        "memoryBytes",
    ] {
        assert!(update.get(key).is_some(), "{key} in {update}");
    }
    assert_eq!(update["totals"]["events"], 1);
    assert_eq!(update["eventsPerMinute"], 1);
    assert_eq!(update["successRate"], "100.00");
    assert_eq!(update["connectedClients"]["/monitoring"], 1);
    assert_eq!(update["skippedBroadcasts"], 0, "nothing to skip when calm");
}

#[tokio::test]
async fn a_configured_token_guards_the_api_and_socket_io() {
    let app =
        TestApp::spawn_with(|c| c.api_token = Some(hookvault::config::Secret::new(TOKEN))).await;
    // REST: 401 without the token, 200 with it; health and ingest stay open.
    let (status, body) = app.get_json("/api/webhooks/events").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("HOOKVAULT_API_TOKEN")
    );
    let wrong = app
        .client
        .get(app.url("/api/webhooks/events"))
        .bearer_auth("nope")
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    let right = app
        .client
        .get(app.url("/api/webhooks/events"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(right.status(), StatusCode::OK);
    assert_eq!(app.get_json("/api/webhooks/health").await.0, StatusCode::OK);
    let (status, _) = app
        .post(Delivery::new("ping", &new_id(), &fixture("ping", 0).bytes))
        .await;
    assert_eq!(status, StatusCode::OK);

    // Socket.IO: connect_error without the token, connected with it.
    for namespace in ["/", "/webhooks", "/monitoring"] {
        let Some(mut denied) = node(&app, "client.mjs", &["connect", namespace]) else {
            return;
        };
        let line = denied.expect("connect_error").await;
        assert!(line.contains("API token"), "{line}");
        let Some(mut allowed) = node(&app, "client.mjs", &["connect", namespace, TOKEN]) else {
            return;
        };
        allowed.expect("\"connected\"").await;
    }
}

#[tokio::test]
async fn without_a_token_proxied_requests_are_not_local() {
    let app = TestApp::spawn().await;
    assert_eq!(app.get_json("/api/webhooks/events").await.0, StatusCode::OK);
    for (header, value) in [
        ("X-Forwarded-For", "203.0.113.9"),
        ("Forwarded", "for=203.0.113.9"),
    ] {
        let response = app
            .client
            .get(app.url("/api/webhooks/events"))
            .header(header, value)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{header}");
        let body: Value = response.json().await.unwrap();
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("HOOKVAULT_API_TOKEN")
        );
    }
}

#[tokio::test]
async fn the_browser_client_is_served_like_a_node_server_does() {
    let app = TestApp::spawn().await;
    let response = app
        .client
        .get(app.url("/socket.io/socket.io.js"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/javascript")
    );
    let body = response.text().await.unwrap();
    assert!(body.starts_with("/*!\n * Socket.IO v4"), "{}", &body[..60]);
}

#[tokio::test]
async fn a_stuck_client_is_dropped_and_never_delays_acks() {
    let app = TestApp::spawn_with(|c| {
        c.dedup_ttl = Duration::ZERO;
        c.monitor_interval = Duration::from_millis(200);
    })
    .await;
    let Some(mut stuck) = node(&app, "seed.mjs", &[]) else {
        return;
    };
    stuck.expect("\"ready\"").await;
    // Frozen: it stays connected but reads nothing, like a hung browser tab.
    let pid = stuck._child.id().unwrap().to_string();
    std::process::Command::new("kill")
        .args(["-STOP", &pid])
        .status()
        .unwrap();

    let body = retargeted("push", 4, "myorg/myrepo");
    let app_ref = &app;
    // 64 connections at a time: 2,500 connects at once overflow the listen backlog,
    // and the kernel's SYN-cookie fallback may then reset a few of them (seen in CI).
    let statuses: Vec<StatusCode> = futures::stream::iter(0..2500)
        .map(|_| async { app_ref.post_signed("push", &new_id(), &body).await.0 })
        .buffer_unordered(64)
        .collect()
        .await;
    assert!(
        statuses.iter().all(|s| *s == StatusCode::OK),
        "every delivery acknowledged"
    );
    app.settle().await;

    let Some(mut monitor) = node(&app, "client.mjs", &["monitoring"]) else {
        return;
    };
    // Cut off for real: no longer connected to `/`, and counted once, however many
    // messages found its buffer full.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        monitor.read_for(Duration::from_millis(300)).await;
        let last = monitor.reports("update").last().cloned();
        let dropped = last
            .as_ref()
            .map_or(0, |u| u["droppedClients"].as_u64().unwrap());
        let on_main = last
            .as_ref()
            .map_or(1, |u| u["connectedClients"]["/"].as_u64().unwrap());
        if dropped >= 1 && on_main == 0 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the stuck client was never disconnected: {last:?}"
        );
    }
    // More deliveries for its repository find it gone and count nothing more.
    for _ in 0..200 {
        app.post_signed("push", &new_id(), &body).await;
    }
    app.settle().await;
    let metrics = app.metrics().await;
    assert!(
        metrics.contains("hookvault_socketio_dropped_clients 1\n"),
        "dropped once: {}",
        metrics
            .lines()
            .filter(|l| l.contains("socketio"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    std::process::Command::new("kill")
        .args(["-CONT", &pid])
        .status()
        .unwrap();
}

#[tokio::test]
async fn socket_io_locks_out_a_client_that_keeps_guessing_the_token() {
    let app = TestApp::spawn_with(|c| {
        c.api_token = Some(hookvault::config::Secret::new(TOKEN));
        c.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()];
    })
    .await;
    let wrong = hookvault::guard::MAX_FAILURES.to_string();
    let Some(mut client) = node(&app, "client.mjs", &["guess", &wrong, TOKEN]) else {
        return;
    };
    let right = client.expect("\"right\"").await;
    assert!(right.contains("too many wrong API tokens"), "{right}");
    let wrong_answers = client
        .seen
        .iter()
        .filter(|l| l.contains("\"wrong\""))
        .count();
    assert_eq!(wrong_answers, hookvault::guard::MAX_FAILURES as usize);
}

#[tokio::test]
async fn one_socket_may_hold_only_so_many_subscriptions() {
    let app = TestApp::spawn().await;
    let cap = hookvault::realtime::MAX_SUBSCRIPTIONS;
    let asked = (cap + 20).to_string();
    let Some(mut client) = node(&app, "client.mjs", &["subscribe-many", &asked]) else {
        return;
    };
    let line = client.expect("\"subscribed\"").await;
    let report: Value = serde_json::from_str(&line).unwrap();
    assert_eq!(report["data"]["accepted"], cap as u64);
    assert_eq!(report["data"]["errors"], 20);
}

#[tokio::test]
async fn a_client_message_over_64_kib_closes_the_connection() {
    let app = TestApp::spawn().await;
    let limit = hookvault::realtime::MAX_CLIENT_PAYLOAD as usize;
    let Some(mut small) = node(&app, "client.mjs", &["oversize", "1000"]) else {
        return;
    };
    small.expect("\"ack\"").await;
    let Some(mut large) = node(
        &app,
        "client.mjs",
        &["oversize", &(limit + 1024).to_string()],
    ) else {
        return;
    };
    let line = large.expect("\"disconnect\"").await;
    assert!(
        !large.seen.iter().any(|l| l.contains("\"ack\"")),
        "{:?}",
        large.seen
    );
    assert!(line.contains("transport"), "{line}");
}

#[tokio::test]
async fn a_cross_origin_socket_io_handshake_is_refused() {
    let app = TestApp::spawn().await;
    for transport in ["polling", "websocket"] {
        let Some(mut foreign) = node(
            &app,
            "client.mjs",
            &["origin", "https://evil.example", transport],
        ) else {
            return;
        };
        foreign.expect("connect_error").await;
        let Some(mut own) = node(&app, "client.mjs", &["origin", &app.address, transport]) else {
            return;
        };
        own.expect("\"connected\"").await;
    }
    // The engine.io handshake itself, as a browser on another site sends it.
    let response = app
        .client
        .get(app.url("/socket.io/?EIO=4&transport=polling"))
        .header("Origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
}

/// Waits for the binary to exit after SIGTERM; false if it is still running after
/// `within` (then it is killed).
fn terminated_within(binary: &mut crate::process::Binary, within: Duration) -> bool {
    let pid = binary.child.id().to_string();
    std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    let deadline = std::time::Instant::now() + within;
    while std::time::Instant::now() < deadline {
        if let Some(status) = binary.child.try_wait().unwrap() {
            assert!(status.success(), "clean shutdown exits 0, got {status}");
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = binary.child.kill();
    let _ = binary.child.wait();
    false
}

/// Issue #23 §4: SIGTERM ends the process promptly whatever Socket.IO clients did.
/// Before, a client refused by the token that then went away kept the store open
/// until engine.io's ping timeout (~45 s). The bound below is generous (the stop
/// takes well under a second); it only has to be shorter than that timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_exits_promptly_whatever_socket_io_clients_did() {
    for case in ["refused", "connected", "half-open", "refused by origin"] {
        let dir = tempfile::tempdir().unwrap();
        let mut command = crate::process::command(dir.path());
        command.env("HOOKVAULT_API_TOKEN", TOKEN);
        let mut binary = crate::process::Binary::start(command);
        let address = binary.address.clone();
        let mut clients = Vec::new();
        match case {
            "refused" => {
                let Some(mut client) = node_at(
                    &address,
                    "client.mjs",
                    &["connect", "/", "wrong-token-0123456789"],
                ) else {
                    return;
                };
                client.expect("connect_error").await;
                // Gone: the process exits after reporting.
                let _ = client._child.wait().await;
            }
            "connected" | "half-open" => {
                for namespace in ["/", "/webhooks", "/monitoring"] {
                    let Some(mut client) =
                        node_at(&address, "client.mjs", &["stay", namespace, TOKEN])
                    else {
                        return;
                    };
                    client.expect("\"connected\"").await;
                    if case == "half-open" {
                        let pid = client._child.id().unwrap().to_string();
                        std::process::Command::new("kill")
                            .args(["-STOP", &pid])
                            .status()
                            .unwrap();
                    }
                    clients.push(client);
                }
            }
            _ => {
                let Some(mut client) = node_at(
                    &address,
                    "client.mjs",
                    &["origin", "https://evil.example", "polling"],
                ) else {
                    return;
                };
                client.expect("connect_error").await;
            }
        }
        let started = std::time::Instant::now();
        let stopped = terminated_within(&mut binary, Duration::from_secs(15));
        println!("{case}: stopped after {:?}", started.elapsed());
        for client in &clients {
            if let Some(pid) = client._child.id() {
                let _ = std::process::Command::new("kill")
                    .args(["-CONT", &pid.to_string()])
                    .status();
            }
        }
        assert!(
            stopped,
            "SIGTERM with a {case} Socket.IO client did not stop the process"
        );
    }
}
