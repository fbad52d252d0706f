//! `hookvault relay` as a real child process between a real server and a real local
//! receiver that records every request and dedups nothing: killed and restarted, cut
//! off from the server, and facing a local URL that fails for a while, it delivers
//! every event exactly once, in sequence order, with GitHub's bytes and headers.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use bytes::Bytes;
use hookvault::config::Secret;
use hookvault::forward::outgoing;
use serde_json::{Value, json};

use crate::helpers::{Fixture, SECRET, TestApp, fixture, fixtures, new_id};

const TOKEN: &str = "relay-test-token-5b1f";
/// The local app's own secret, which the relay signs with (`--secret`).
const LOCAL_SECRET: &str = "the local app's secret";
const PATIENCE: Duration = Duration::from_secs(90);

/// One request the local receiver got, and what it answered.
#[derive(Debug, Clone)]
struct Received {
    headers: HeaderMap,
    body: Bytes,
    answered: StatusCode,
}

impl Received {
    fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .map(|v| v.to_str().unwrap())
            .unwrap_or_else(|| panic!("no {name} header in {:?}", self.headers))
    }

    fn seq(&self) -> u64 {
        self.header(outgoing::SEQ_HEADER).parse().unwrap()
    }

    fn attempt(&self) -> u32 {
        self.header(outgoing::ATTEMPT_HEADER).parse().unwrap()
    }
}

/// The local URL: records every request; answers 500 while `failing`.
#[derive(Clone, Default)]
struct Receiver {
    log: Arc<Mutex<Vec<Received>>>,
    failing: Arc<AtomicBool>,
}

impl Receiver {
    async fn spawn() -> (Self, String) {
        let receiver = Self::default();
        let app = axum::Router::new()
            .route("/hook", axum::routing::post(record))
            .with_state(receiver.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (receiver, url)
    }

    fn all(&self) -> Vec<Received> {
        self.log.lock().unwrap().clone()
    }

    fn accepted(&self) -> Vec<Received> {
        self.all()
            .into_iter()
            .filter(|r| r.answered.is_success())
            .collect()
    }
}

async fn record(State(receiver): State<Receiver>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let answered = if receiver.failing.load(Ordering::SeqCst) {
        StatusCode::INTERNAL_SERVER_ERROR
    } else {
        StatusCode::OK
    };
    receiver.log.lock().unwrap().push(Received {
        headers,
        body,
        answered,
    });
    answered
}

/// The relay as a child process, its log collected by a thread.
struct Relay {
    child: Child,
    log: Arc<Mutex<Vec<String>>>,
}

impl Relay {
    fn start(from: &str, to: &str, state: &Path, extra: &[&str]) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_hookvault"))
            .arg("relay")
            .args(["--from", from, "--to", to, "--state"])
            .arg(state)
            .args(extra)
            .env_remove("GITHUB_WEBHOOK_SECRET")
            .env_remove("HOOKVAULT_API_TOKEN")
            .env_remove("HOOKVAULT_LISTEN")
            .env_remove("PORT")
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the relay starts");
        let log = Arc::new(Mutex::new(Vec::new()));
        let pipe = child.stderr.take().unwrap();
        let lines = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                lines.lock().unwrap().push(line);
            }
        });
        Self { child, log }
    }

    fn logged(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }

    /// SIGKILL: no chance to finish anything.
    fn kill(mut self) -> String {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
        self.logged()
    }

    /// SIGTERM: the relay finishes what is in flight and exits 0.
    async fn terminate(mut self) {
        let pid = self.child.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        let status = self.exit_status().await;
        assert!(status.success(), "{status}: {}", self.logged());
    }

    async fn exit_status(&mut self) -> ExitStatus {
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "the relay did not stop: {}",
                self.logged()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Waits for `done`, with the relay's log in the failure message.
async fn eventually(what: &str, relay: &Relay, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + PATIENCE;
    while !done() {
        assert!(
            Instant::now() < deadline,
            "timed out waiting until {what}; the relay logged:\n{}",
            relay.logged()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The last sequence id the relay recorded as delivered.
fn recorded_seq(state: &Path) -> Option<u64> {
    let bytes = std::fs::read(state).ok()?;
    serde_json::from_slice::<Value>(&bytes).ok()?["seq"].as_u64()
}

/// Every stored event as (seq, delivery id, status), oldest first.
async fn stored(app: &TestApp, token: Option<&str>) -> Vec<(u64, String, String)> {
    let mut request = app.client.get(app.url("/api/webhooks/events?limit=1000"));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let page: Value = request.send().await.unwrap().json().await.unwrap();
    let mut events: Vec<(u64, String, String)> = page["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["id"].as_u64().unwrap(),
                e["deliveryId"].as_str().unwrap().to_owned(),
                e["status"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    events.sort();
    events
}

/// Posts real GitHub payloads; returns (delivery id, body) of each.
async fn post(app: &TestApp, examples: &[Fixture]) -> Vec<(String, Vec<u8>)> {
    let mut posted = Vec::new();
    for fixture in examples {
        let id = new_id();
        let (status, body) = app.post_signed(&fixture.event, &id, &fixture.bytes).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        posted.push((id, fixture.bytes.clone()));
    }
    posted
}

fn sha256_signature(secret: &str, body: &[u8]) -> String {
    format!("sha256={}", outgoing::sign(secret.as_bytes(), body).0)
}

#[tokio::test]
async fn relay_delivers_every_event_once_in_order_across_a_kill_a_server_restart_and_local_failures()
 {
    let mut app = TestApp::spawn_with(|c| c.api_token = Some(Secret::new(TOKEN))).await;
    let (receiver, to) = Receiver::spawn().await;
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("relay.state");
    // Examples of many event types, in a stable order.
    let mut examples = fixtures().into_iter().step_by(19);
    let mut take = |n: usize| examples.by_ref().take(n).collect::<Vec<_>>();
    let mut posted = post(&app, &take(4)).await;
    // The same workflow job through two hooks: the second is a content duplicate,
    // relayed too (it is what GitHub sent).
    let job = fixture("workflow_job", 0);
    posted.extend(post(&app, std::slice::from_ref(&job)).await);
    let duplicate = post(&app, std::slice::from_ref(&job)).await;
    posted.extend(duplicate);
    let newest = stored(&app, Some(TOKEN)).await.last().unwrap().0;

    let relay_args = ["--token", TOKEN, "--secret", LOCAL_SECRET, "--since", "0"];
    let relay = Relay::start(&app.address, &to, &state, &relay_args);
    eventually(
        "the first deliveries arrived and were recorded",
        &relay,
        || receiver.accepted().len() == posted.len() && recorded_seq(&state) == Some(newest),
    )
    .await;

    // Killed while idle, then events arrive while it is down.
    let first_log = relay.kill();
    posted.extend(post(&app, &take(3)).await);
    let relay = Relay::start(&app.address, &to, &state, &relay_args);
    eventually("the relay caught up after its restart", &relay, || {
        receiver.accepted().len() == posted.len()
    })
    .await;

    // The server goes away and comes back on the same port; events arrive meanwhile.
    app.stop().await;
    eventually("the relay noticed the server was gone", &relay, || {
        relay.logged().contains("the stream ended")
    })
    .await;
    app.start_again_on_same_port().await;
    posted.extend(post(&app, &take(3)).await);
    eventually("the relay resubscribed and caught up", &relay, || {
        receiver.accepted().len() == posted.len()
    })
    .await;

    // The local URL fails for a while.
    receiver.failing.store(true, Ordering::SeqCst);
    let failed_before = receiver.all().len() - receiver.accepted().len();
    posted.extend(post(&app, &take(3)).await);
    eventually("the local URL refused three attempts", &relay, || {
        receiver.all().len() - receiver.accepted().len() >= failed_before + 3
    })
    .await;
    receiver.failing.store(false, Ordering::SeqCst);
    eventually(
        "everything was delivered once the local URL was back",
        &relay,
        || receiver.accepted().len() == posted.len(),
    )
    .await;
    let log = format!("{first_log}\n{}", relay.kill());

    // Exactly once, in sequence order: the accepted requests are the stored events.
    let events = stored(&app, Some(TOKEN)).await;
    assert_eq!(events.len(), posted.len());
    assert!(events.iter().any(|(_, _, status)| status == "duplicate"));
    let accepted = receiver.accepted();
    let delivered: Vec<(u64, String)> = accepted
        .iter()
        .map(|r| (r.seq(), r.header("x-github-delivery").to_owned()))
        .collect();
    let expected: Vec<(u64, String)> = events.iter().map(|(s, d, _)| (*s, d.clone())).collect();
    assert_eq!(delivered, expected, "each stored event once, in seq order");

    // As GitHub sent it, signed with the local app's secret.
    for request in &accepted {
        let id = request.header("x-github-delivery");
        let (_, body) = posted.iter().find(|(d, _)| d == id).unwrap();
        assert_eq!(&request.body[..], &body[..], "the exact bytes of {id}");
        assert_eq!(request.header("content-type"), "application/json");
        assert_eq!(request.header("user-agent"), "GitHub-Hookshot/044aadd");
        assert_eq!(request.header("x-github-hook-id"), "292430182");
        assert!(!request.header("x-github-event").is_empty());
        assert_eq!(
            request.header("x-hub-signature-256"),
            sha256_signature(LOCAL_SECRET, body),
            "the local app verifies {id}"
        );
    }
    // The refused attempts were tries of the next event, numbered, never skipped.
    let all = receiver.all();
    let refused: Vec<&Received> = all.iter().filter(|r| !r.answered.is_success()).collect();
    assert!(refused.len() >= 3);
    let retried = refused[0].seq();
    assert!(refused.iter().all(|r| r.seq() == retried));
    let attempts: Vec<u32> = refused.iter().map(|r| r.attempt()).collect();
    assert_eq!(attempts, (1..=refused.len() as u32).collect::<Vec<_>>());
    let finally = accepted.iter().find(|r| r.seq() == retried).unwrap();
    assert_eq!(finally.attempt(), refused.len() as u32 + 1);

    assert!(!log.contains(TOKEN), "the token is never logged");
    assert!(!log.contains(LOCAL_SECRET), "the secret is never logged");
    assert!(log.contains("delivered"), "{log}");
}

#[tokio::test]
async fn relay_starts_from_now_and_passes_githubs_signatures_and_test_events_on() {
    let app = TestApp::spawn().await;
    let (receiver, to) = Receiver::spawn().await;
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("nested").join("relay.state");
    let all = fixtures();
    post(&app, &all[..1]).await;

    // No state file and no --since: what was stored before is not sent.
    let relay = Relay::start(&app.address, &to, &state, &[]);
    eventually("the relay saved where it starts", &relay, || {
        recorded_seq(&state) == Some(1)
    })
    .await;
    eventually("the relay subscribed", &relay, || {
        relay.logged().contains("subscribed")
    })
    .await;
    let posted = post(&app, &all[1..2]).await;
    let (status, test_event) = app
        .post_json(
            "/api/webhooks/test",
            json!({"eventType": "workflow_job", "repository": "octo-org/hello", "action": "queued"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{test_event}");
    eventually("both events arrived", &relay, || {
        receiver.accepted().len() == 2
    })
    .await;
    relay.terminate().await;

    let received = receiver.accepted();
    assert_eq!(received[0].seq(), 2);
    assert_eq!(&received[0].body[..], &posted[0].1[..]);
    assert_eq!(
        received[0].header("x-hub-signature-256"),
        sha256_signature(SECRET, &posted[0].1),
        "GitHub's signature, passed through, verifies with the webhook's secret"
    );
    // The synthesized test event, for exercising a local app without GitHub.
    assert_eq!(received[1].seq(), 3);
    assert_eq!(received[1].header("x-github-event"), "workflow_job");
    assert_eq!(received[1].header("content-type"), "application/json");
    let payload: Value = serde_json::from_slice(&received[1].body).unwrap();
    assert_eq!(payload["action"], "queued");
}

#[tokio::test]
async fn relay_with_a_wrong_token_stops_with_a_clear_error_and_delivers_nothing() {
    let app = TestApp::spawn_with(|c| c.api_token = Some(Secret::new(TOKEN))).await;
    let (receiver, to) = Receiver::spawn().await;
    let dir = tempfile::tempdir().unwrap();
    let state: PathBuf = dir.path().join("relay.state");
    post(&app, &fixtures()[..1]).await;

    for args in [
        vec!["--token", "not-the-token", "--since", "0"],
        // Without --since the first question goes to the REST API.
        vec!["--token", "not-the-token"],
    ] {
        let mut relay = Relay::start(&app.address, &to, &state, &args);
        let status = relay.exit_status().await;
        let log = relay.logged();
        assert_eq!(status.code(), Some(2), "{log}");
        assert!(log.contains("refused the relay"), "{log}");
        assert!(log.contains("API token"), "says what is wrong: {log}");
        assert!(!log.contains("not-the-token"), "the token is never logged");
        let _ = std::fs::remove_file(&state);
    }
    assert!(receiver.all().is_empty());
}
