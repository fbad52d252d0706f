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
use tokio::process::{Child, ChildStdin, Command};
use tokio::sync::mpsc;

use crate::helpers::{Delivery, TestApp, fixture, new_id};

const TOKEN: &str = "test-token-0123456789";

fn clients_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/clients")
}

/// A client process and its output lines. It runs until this is dropped: its
/// standard input closes (and `kill_on_drop` ends a frozen one).
pub(crate) struct Client {
    _child: Child,
    _stdin: Option<ChildStdin>,
    lines: mpsc::UnboundedReceiver<String>,
    seen: Vec<String>,
}

fn missing(what: &str) -> Option<Client> {
    crate::skips::skip(&format!("{what} is not installed"));
    None
}

fn spawn(mut command: Command) -> Client {
    command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true);
    let mut child = command.spawn().expect("client starts");
    let stdin = child.stdin.take();
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
        _stdin: stdin,
        lines,
        seen: Vec::new(),
    }
}

pub(crate) fn node(app: &TestApp, script: &str, args: &[&str]) -> Option<Client> {
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
    pub(crate) async fn expect(&mut self, needle: &str) -> String {
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
    pub(crate) async fn read_for(&mut self, period: Duration) -> Vec<String> {
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

    /// Reads until `done` holds for what has been seen (20 s at most).
    pub(crate) async fn read_until(&mut self, what: &str, done: impl Fn(&Self) -> bool) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        while !done(self) {
            match tokio::time::timeout_at(deadline, self.lines.recv()).await {
                Ok(Some(line)) => self.seen.push(line),
                _ => panic!("never saw {what}; got {:#?}", self.seen),
            }
        }
    }

    /// The ids of the `event` reports so far.
    fn event_ids(&self) -> Vec<u64> {
        self.reports("event")
            .iter()
            .map(|e| e["id"].as_u64().unwrap())
            .collect()
    }

    pub(crate) fn reports(&self, kind: &str) -> Vec<Value> {
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
    // A last subscribed push: messages reach a socket in order, so anything the
    // unsubscribed push brought would be in before it.
    push["repository"]["full_name"] = json!("myorg/myrepo");
    push["ref"] = json!("refs/heads/last");
    app.post_signed("push", &new_id(), &serde_json::to_vec(&push).unwrap())
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
    client.expect("refs/heads/last").await;
    assert!(
        !client.seen.iter().any(|l| l.contains("not-subscribed")),
        "only subscribed repositories: {:#?}",
        client.seen
    );
    let kinds: Vec<Value> = client.reports("webhook-event");
    assert_eq!(
        kinds,
        vec![json!("workflow_job"), json!("push"), json!("push")],
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
    // Events come in store order: once the last one (wanted) is in, any the filter
    // should have kept out would have come before it.
    let last = wanted.last().unwrap().clone();
    client
        .read_until("the last wanted event", |c| {
            c.reports("event").iter().any(|e| e["deliveryId"] == last)
        })
        .await;
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
    let replay = |id: String| {
        let app = &app;
        async move {
            let path = format!("/api/webhooks/replay/{id}");
            let (status, _) = app.post_json(&path, json!({})).await;
            assert_eq!(status, StatusCode::OK);
        }
    };
    replay(wanted[0].clone()).await;
    replay(other).await;
    app.settle().await;
    // Then a replay of the other wanted event: updates follow the change log, so the
    // other repository's would have come before this one.
    replay(wanted[1].clone()).await;
    let (first, second) = (events[0]["id"].clone(), events[1]["id"].clone());
    client
        .read_until("the second wanted update", |c| {
            c.reports("event-updated").iter().any(|u| u["id"] == second)
        })
        .await;
    let updated = client.reports("event-updated");
    let ids: Vec<&Value> = updated.iter().map(|u| &u["id"]).collect();
    assert_eq!(ids, [&first, &second], "{updated:?}");
    assert!(
        updated.iter().all(|u| u["status"] == "processed"),
        "{updated:?}"
    );
}

/// Deliveries keep coming in waves while the client drops, is away, catches up
/// from the store and goes live again, and for a while after: the hand-over from
/// catch-up to live happens under traffic.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resuming_subscriber_loses_nothing_and_gets_nothing_twice() {
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

    let app = TestApp::spawn_with(|c| c.dedup_ttl = Duration::ZERO).await;
    // Away for 1.5 s: the catch-up takes several reads from the store.
    let Some(mut client) = node(&app, "client.mjs", &["resume", "20", "1500"]) else {
        return;
    };
    client.expect("\"ready\"").await;
    let body = fixture("ping", 0).bytes;
    let (posted, stop) = (AtomicU64::new(0), AtomicBool::new(false));
    let poster = async {
        while !stop.load(Ordering::SeqCst) {
            let wave = (0..32).map(|_| app.post_unapplied(Delivery::new("ping", &new_id(), &body)));
            for (status, answer) in futures::future::join_all(wave).await {
                assert_eq!(status, StatusCode::OK, "{answer}");
            }
            posted.fetch_add(32, Ordering::SeqCst);
        }
    };
    let reader = async {
        client.expect("\"dropped\"").await;
        let resumed = client.expect("\"resumed\"").await;
        assert!(resumed.contains("\"ok\":true"), "{resumed}");
        // Live again with deliveries posted after the resume: three more waves.
        let after = posted.load(Ordering::SeqCst) + 96;
        client
            .read_until("events posted after the resume", |c| {
                c.event_ids().last().is_some_and(|id| *id > after)
            })
            .await;
        stop.store(true, Ordering::SeqCst);
    };
    tokio::join!(poster, reader);
    // Every id was acknowledged before the poster stopped: the last is the total.
    let total = posted.load(Ordering::SeqCst);
    client
        .read_until("the last event", |c| c.event_ids().contains(&total))
        .await;
    let ids = client.event_ids();
    let expected: Vec<u64> = (1..=total).collect();
    assert!(
        ids == expected,
        "every event once, in order, across the reconnect ({total} posted); got {} ids, first wrong at {:?}",
        ids.len(),
        ids.iter().zip(&expected).position(|(a, b)| a != b)
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

/// A value of `/metrics` (0 when absent).
fn metric(text: &str, name_and_labels: &str) -> u64 {
    text.lines()
        .find_map(|l| {
            l.strip_prefix(name_and_labels)?
                .strip_prefix(' ')?
                .parse()
                .ok()
        })
        .unwrap_or(0)
}

const DROPPED: &str = "hookvault_socketio_dropped_clients";
const SKIPPED: &str = "hookvault_socketio_skipped_broadcasts";
const ON_MAIN: &str = "hookvault_socketio_connections{namespace=\"/\"}";

/// Ack latencies of `n` deliveries of `body` (a push), 16 at a time, sorted: each
/// from the request to its answer, which comes once the log has the delivery.
async fn ack_latencies(app: &TestApp, body: &[u8], n: usize) -> Vec<Duration> {
    let mut latencies: Vec<Duration> = futures::stream::iter(0..n)
        .map(|_| async {
            let started = std::time::Instant::now();
            let delivery = Delivery::new("push", &new_id(), body);
            let (status, answer) = app.post_unapplied(delivery).await;
            assert_eq!(status, StatusCode::OK, "{answer}");
            started.elapsed()
        })
        .buffer_unordered(16)
        .collect()
        .await;
    latencies.sort();
    latencies
}

/// Acks with a frozen client subscribed are measured against acks without it, in
/// rounds taken in turn so that whatever else the machine does falls on both; a
/// reading client stays subscribed throughout, so the fan-out has work in both.
/// Each frozen client is cut off, and counted once however many messages found its
/// buffer full.
#[tokio::test]
async fn a_stuck_client_is_dropped_and_never_delays_acks() {
    const ROUNDS: u64 = 3;
    let app = TestApp::spawn_with(|c| c.dedup_ttl = Duration::ZERO).await;
    let Some(mut reading) = node(&app, "seed.mjs", &[]) else {
        return;
    };
    reading.expect("\"ready\"").await;
    let body = retargeted("push", 4, "myorg/myrepo");
    let (mut without, mut with) = (Vec::new(), Vec::new());
    for round in 1..=ROUNDS {
        without.extend(ack_latencies(&app, &body, 300).await);
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
        // Until its buffer is full: then it is cut off, for real (no longer on `/`),
        // and counted once. Every ack while it is there is measured.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        loop {
            with.extend(ack_latencies(&app, &body, 50).await);
            let metrics = app.metrics().await;
            if metric(&metrics, DROPPED) == round && metric(&metrics, ON_MAIN) == 1 {
                break;
            }
            assert!(
                metric(&metrics, DROPPED) <= round,
                "more clients cut off than were stuck: {metrics}"
            );
            assert!(
                tokio::time::Instant::now() < deadline,
                "stuck client {round} was never cut off: {metrics}"
            );
        }
        // Dropping `stuck` kills it (SIGKILL ends a stopped process too).
    }
    without.sort();
    with.sort();
    let median = |sorted: &[Duration]| sorted[sorted.len() / 2];
    let ratio = median(&with).as_secs_f64() / median(&without).as_secs_f64();
    println!(
        "ack p50 with a stuck client {:?}, without {:?}: {ratio:.2}x",
        median(&with),
        median(&without)
    );
    // Generous: acks that waited on the stuck client would take many times as long
    // (or never come).
    assert!(
        ratio < 2.0,
        "acks took {ratio:.2}x as long with a stuck client ({:?} against {:?})",
        median(&with),
        median(&without)
    );

    // More deliveries for the repository find them gone and count nothing more; the
    // reading client was never cut off.
    ack_latencies(&app, &body, 200).await;
    app.settle().await;
    let metrics = app.metrics().await;
    assert_eq!(metric(&metrics, DROPPED), ROUNDS, "{metrics}");
    assert_eq!(metric(&metrics, ON_MAIN), 1, "{metrics}");
}

/// A storm that outruns the fan-out: security alerts with 17 MiB bodies, posted six
/// at a time, while the fan-out queue holds 32 MiB of bodies (the thread takes one,
/// and builds its message from the whole payload, while more wait). Some live
/// messages are skipped; the count of skipped ones is exact (every other one reaches
/// the connected client), and the same in `/metrics` and `/monitoring`; every
/// delivery is stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_messages_a_storm_outruns_are_skipped_and_counted() {
    let app = TestApp::spawn_with(|c| c.dedup_ttl = Duration::ZERO).await;
    let Some(mut client) = node(&app, "client.mjs", &["alerts"]) else {
        return;
    };
    client.expect("\"connected\"").await;
    // 17 MiB of short strings: ingest reads past them, the fan-out thread builds
    // each of them into the whole payload's value before it makes the message.
    let mut alert = fixture("dependabot_alert", 0).json;
    alert["padding"] = json!(vec!["x".repeat(60); (17 << 20) / 63]);
    let body = serde_json::to_vec(&alert).unwrap();
    let mut posted = 0;
    while metric(&app.metrics().await, SKIPPED) == 0 {
        // Each burst offers more bodies than the queue may hold: one or two do.
        assert!(
            posted < 60,
            "{posted} alerts in bursts of 6 never filled the queue"
        );
        let burst = (0..6).map(|_| {
            let delivery = Delivery::new("dependabot_alert", &new_id(), &body);
            app.post_unapplied(delivery)
        });
        for (status, answer) in futures::future::join_all(burst).await {
            assert_eq!(status, StatusCode::OK, "{answer}");
        }
        posted += 6;
    }
    // The fan-out drains: every alert either reached the client or was skipped.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let skipped = loop {
        let skipped = metric(&app.metrics().await, SKIPPED);
        if client.reports("alert").len() as u64 + skipped >= posted {
            break skipped;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{posted} alerts, {skipped} skipped, {} received",
            client.reports("alert").len()
        );
        client.read_for(Duration::from_millis(100)).await;
    };
    // One more, small, into the now empty queue: once it is in, every message
    // queued before it has been sent.
    let last = new_id();
    app.post_signed(
        "dependabot_alert",
        &last,
        &fixture("dependabot_alert", 0).bytes,
    )
    .await;
    client
        .read_until("the last alert", |c| {
            c.reports("alert").iter().any(|a| a["deliveryId"] == last)
        })
        .await;
    let received: Vec<Value> = client.reports("alert");
    let distinct: std::collections::HashSet<String> = received
        .iter()
        .map(|a| a["deliveryId"].to_string())
        .collect();
    assert_eq!(distinct.len(), received.len(), "no alert twice");
    println!("{posted} large alerts: {skipped} live messages skipped");
    let metrics = app.metrics().await;
    assert!(skipped >= 1);
    assert_eq!(
        metric(&metrics, SKIPPED),
        skipped,
        "the last one was not skipped"
    );
    assert_eq!(
        received.len() as u64,
        posted + 1 - skipped,
        "each alert was sent or counted as skipped, exactly once"
    );
    assert_eq!(metric(&metrics, DROPPED), 0, "the client kept up");
    let Some(mut monitor) = node(&app, "client.mjs", &["monitoring"]) else {
        return;
    };
    let update = monitor.expect_reports("update", 1).await[0].clone();
    assert_eq!(update["skippedBroadcasts"], skipped, "{update}");
    app.applied().await;
    assert_eq!(app.count("").await, posted + 1, "every delivery stored");
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

/// SIGTERM ends the process promptly whatever Socket.IO clients did.
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
