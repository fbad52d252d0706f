//! Streaming to NATS JetStream against real `nats-server -js` processes: every stored
//! delivery in the stream exactly once, with its raw body and headers; nothing lost
//! or doubled across a NATS outage, a SIGKILL of hookvault, or the loss of one node
//! of a three-node cluster.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::time::{Duration, Instant};

use futures::StreamExt;
use hookvault::config::NatsConfig;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{Delivery, SECRET, TestApp, fixtures, new_id};
use crate::nats::{self, NatsServer, header};
use crate::process::{Binary, command};

fn streaming_to(url: &str) -> impl FnOnce(&mut hookvault::config::Config) {
    let nats = NatsConfig::new(url);
    move |config| config.nats = Some(nats)
}

/// Waits until health says the sink has published everything and is fine.
async fn caught_up(app: &TestApp) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (_, health) = app.get_json("/api/webhooks/health").await;
        let stream = &health["data"]["stream"];
        if stream["lag"] == 0 && stream["lastError"].is_null() {
            return stream.clone();
        }
        assert!(
            Instant::now() < deadline,
            "the sink did not catch up: {stream}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn every_stored_delivery_is_in_the_stream_once_with_its_body_and_headers() {
    let Some(server) = NatsServer::start().await else {
        return;
    };
    // A live subscriber on one event type, as a consumer of the subjects would be.
    let client = async_nats::connect(server.url()).await.unwrap();
    let mut jobs = client
        .subscribe("hookvault.events.workflow_job.>")
        .await
        .unwrap();
    client.flush().await.unwrap();

    // The default dedup window: fixtures that share their entity ids come back as
    // content duplicates, which are stored but not published.
    let app = TestApp::spawn_with(streaming_to(&server.url())).await;
    let all = fixtures();
    let answers: Vec<(String, usize, Value)> = futures::stream::iter(all.iter().enumerate())
        .map(|(i, fixture)| {
            let app = &app;
            async move {
                let id = new_id();
                let (status, body) = app.post_signed(&fixture.event, &id, &fixture.bytes).await;
                assert_eq!(status, StatusCode::OK, "{body}");
                (id, i, body["data"].clone())
            }
        })
        .buffered(8)
        .collect()
        .await;
    // Another hook's copy of a stored workflow_job (a content duplicate), GitHub's
    // redelivery of the second fixture (same id), and a synthesized test event.
    let (job_id, job, _) = answers
        .iter()
        .find(|(_, i, data)| all[*i].event == "workflow_job" && data["status"] == "stored")
        .unwrap();
    let (copy, body) = app
        .post_signed("workflow_job", &new_id(), &all[*job].bytes)
        .await;
    assert_eq!(copy, StatusCode::OK);
    assert_eq!(
        body["data"]["status"], "duplicate",
        "a copy of {job_id}: {body}"
    );
    let (redelivered, body) = app
        .post_signed(&all[1].event, &answers[1].0, &all[1].bytes)
        .await;
    assert_eq!(
        (redelivered, body["data"]["status"].as_str()),
        (StatusCode::OK, Some("duplicate"))
    );
    let (tested, body) = app
        .post_json(
            "/api/webhooks/test",
            json!({"eventType": "workflow_job", "repository": "octo-org/test", "action": "completed"}),
        )
        .await;
    assert!(tested.is_success(), "{body}");

    let stored: HashMap<&str, (usize, u64)> = answers
        .iter()
        .filter(|(_, _, data)| data["status"] == "stored")
        .map(|(id, i, data)| (id.as_str(), (*i, data["id"].as_u64().unwrap())))
        .collect();
    assert!(
        stored.len() < all.len(),
        "some fixtures are content duplicates of others"
    );
    nats::wait_for_messages(&server.url(), stored.len() as u64).await;
    let status = caught_up(&app).await;
    assert_eq!(status["published"], stored.len() as u64, "{status}");

    let messages = nats::messages(&server.url()).await;
    let mut seen = HashSet::new();
    let mut last_seq = 0;
    for message in &messages {
        let id = header(message, "Nats-Msg-Id").unwrap();
        assert!(seen.insert(id.to_owned()), "{id} is in the stream twice");
        let Some(&(i, seq)) = stored.get(id) else {
            panic!("{id} was not stored as an event of its own, yet published");
        };
        let fixture = &all[i];
        assert_eq!(message.payload.as_ref(), fixture.bytes.as_slice(), "{id}");
        assert_eq!(
            header(message, "X-GitHub-Event"),
            Some(fixture.event.as_str())
        );
        assert_eq!(header(message, "X-GitHub-Delivery"), Some(id));
        assert_eq!(header(message, "X-GitHub-Hook-ID"), Some("292430182"));
        assert_eq!(header(message, "Content-Type"), Some("application/json"));
        let published_seq: u64 = header(message, "Hookvault-Seq").unwrap().parse().unwrap();
        assert_eq!(published_seq, seq, "{id}");
        assert!(published_seq > last_seq, "published in seq order");
        last_seq = published_seq;
        assert_eq!(
            message.subject.as_str(),
            hookvault::stream::subject(&fixture.event, fixture.repository())
        );
    }
    assert_eq!(seen.len(), stored.len());

    // The subscriber on workflow_job subjects got those events, and only those.
    let expected_jobs = stored
        .values()
        .filter(|(i, _)| all[*i].event == "workflow_job")
        .count();
    assert!(expected_jobs > 0);
    let text = app.metrics().await;
    assert!(
        text.contains(&format!(
            "hookvault_stream_published_total {}",
            stored.len()
        )),
        "{text}"
    );
    assert!(text.contains("hookvault_stream_lag 0"), "{text}");

    // Then one more workflow_job, stored and published: the subscriber gets messages
    // in order, so anything else it was sent (the test event) comes before it.
    let last = new_id();
    let mut payload = all[*job].json.clone();
    payload["workflow_job"]["id"] = json!(u32::MAX);
    let (_, body) = app
        .post_signed(
            "workflow_job",
            &last,
            &serde_json::to_vec(&payload).unwrap(),
        )
        .await;
    assert_eq!(body["data"]["status"], "stored", "{body}");
    let mut got = Vec::new();
    loop {
        let message = tokio::time::timeout(Duration::from_secs(60), jobs.next())
            .await
            .expect("workflow_job messages arrive")
            .unwrap();
        let headers = message.headers.as_ref().unwrap();
        if headers.get("X-GitHub-Delivery").map(|v| v.as_str()) == Some(last.as_str()) {
            break;
        }
        got.push(message);
    }
    assert_eq!(
        got.len(),
        expected_jobs,
        "no more than the stored workflow_job events (the test event is not published)"
    );
    for message in &got {
        let headers = message.headers.as_ref().unwrap();
        assert_eq!(
            headers.get("X-GitHub-Event").map(|v| v.as_str()),
            Some("workflow_job")
        );
        assert!(
            message
                .subject
                .starts_with("hookvault.events.workflow_job.")
        );
    }
}

#[tokio::test]
async fn a_nats_outage_only_delays_publishing() {
    let Some(mut server) = NatsServer::start().await else {
        return;
    };
    let app = TestApp::spawn_with(streaming_to(&server.url())).await;
    let first = new_id();
    app.post_signed("ping", &first, br#"{"zen":"before"}"#)
        .await;
    nats::wait_for_messages(&server.url(), 1).await;

    server.kill();
    let posted: Vec<String> = futures::stream::iter(0..1000)
        .map(|i| {
            let app = &app;
            async move {
                let id = new_id();
                let body = format!(r#"{{"zen":"during the outage {i}"}}"#);
                let (status, answer) = app
                    .post_unapplied(Delivery::new("ping", &id, body.as_bytes()))
                    .await;
                assert_eq!(status, StatusCode::OK, "ingest does not wait for NATS");
                assert_eq!(answer["data"]["status"], "stored");
                id
            }
        })
        .buffer_unordered(16)
        .collect()
        .await;
    app.applied().await;
    let (_, health) = app.get_json("/api/webhooks/health").await;
    let stream = &health["data"]["stream"];
    assert_eq!(stream["lag"], 1000, "{stream}");
    assert!(!stream["lastError"].is_null(), "{stream}");
    assert_eq!(stream["connected"], false, "{stream}");

    server.restart().await;
    nats::wait_for_messages(&server.url(), 1001).await;
    caught_up(&app).await;
    let messages = nats::messages(&server.url()).await;
    let ids: Vec<&str> = messages
        .iter()
        .map(|m| header(m, "Nats-Msg-Id").unwrap())
        .collect();
    assert_eq!(ids[0], first);
    let unique: HashSet<&str> = ids.iter().copied().collect();
    assert_eq!(unique.len(), 1001, "none twice");
    assert_eq!(
        unique,
        posted
            .iter()
            .map(String::as_str)
            .chain([first.as_str()])
            .collect()
    );
    let seqs: Vec<u64> = messages
        .iter()
        .map(|m| header(m, "Hookvault-Seq").unwrap().parse().unwrap())
        .collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "in seq order");
}

/// hookvault is SIGKILLed while it publishes under load, then started again on the
/// same data dir: the stream ends up with every stored delivery exactly once.
#[tokio::test]
async fn a_sigkill_while_publishing_loses_and_doubles_nothing() {
    let Some(server) = NatsServer::start().await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let start = || {
        let mut cmd = command(dir.path());
        cmd.env("GITHUB_WEBHOOK_SECRET", SECRET)
            .env("WEBHOOK_DEDUP_TTL", "0")
            .env("HOOKVAULT_NATS_URL", server.url());
        Binary::start(cmd)
    };
    let client = crate::helpers::client();
    let mut binary = start();
    let load = crate::helpers::LoadUntilGone::start(&binary.address, 16);
    // Past the first durable commit of the cursor (saved at least every 1,000
    // messages), and while messages are in flight.
    let deadline = Instant::now() + Duration::from_secs(60);
    while nats::held(&server.url()).await < 1_000 {
        assert!(Instant::now() < deadline, "nothing was published");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let published_before = nats::held(&server.url()).await;
    binary.child.kill().unwrap();
    binary.child.wait().unwrap();
    let stored = load.finish().await;
    assert!(published_before > 0, "it was publishing when killed");
    eprintln!(
        "killed with {} deliveries acknowledged, {published_before} published",
        stored.len()
    );

    // What the store holds: every acknowledged delivery, and possibly a few more
    // whose answer the kill cut off (durable in the log, applied on start).
    let restarted = start();
    let mut in_store = HashSet::new();
    for offset in (0..).step_by(1000) {
        let page: Value = client
            .get(format!(
                "{}/api/webhooks/events?limit=1000&offset={offset}",
                restarted.address
            ))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let events = page["data"].as_array().unwrap();
        in_store.extend(
            events
                .iter()
                .map(|e| e["deliveryId"].as_str().unwrap().to_owned()),
        );
        if events.len() < 1000 {
            break;
        }
    }
    assert!(
        in_store.is_superset(&stored),
        "every acknowledged delivery is stored"
    );
    nats::wait_for_messages(&server.url(), in_store.len() as u64).await;
    let ids: Vec<String> = nats::messages(&server.url())
        .await
        .iter()
        .map(|m| header(m, "Nats-Msg-Id").unwrap().to_owned())
        .collect();
    let unique: HashSet<String> = ids.iter().cloned().collect();
    assert_eq!(unique.len(), ids.len(), "no delivery twice in the stream");
    assert_eq!(unique, in_store, "every stored delivery is in the stream");
    restarted.terminate();
}

/// A three-node cluster with the stream on all three: the node that leads the
/// stream is killed during a load, and nothing is lost or doubled.
#[tokio::test]
async fn losing_one_node_of_a_three_node_cluster_loses_nothing() {
    let Some(mut nodes) = nats::cluster().await else {
        return;
    };
    let mut settings = NatsConfig::new(&nats::urls(&nodes));
    settings.replicas = 3;
    let app = TestApp::spawn_with(move |c| c.nats = Some(settings)).await;
    let send = |range: std::ops::Range<usize>| {
        let app = &app;
        futures::stream::iter(range)
            .map(move |i| async move {
                let id = new_id();
                let body = format!(r#"{{"zen":"cluster {i}"}}"#);
                let (status, _) = app
                    .post_unapplied(Delivery::new("ping", &id, body.as_bytes()))
                    .await;
                assert_eq!(status, StatusCode::OK);
                id
            })
            .buffer_unordered(8)
            .collect::<Vec<String>>()
    };
    let mut posted = send(0..300).await;
    nats::wait_for_messages(&nodes[0].url(), posted.len() as u64).await;

    let js = async_nats::jetstream::new(async_nats::connect(nodes[0].url()).await.unwrap());
    let mut stream = js.get_stream(nats::STREAM).await.unwrap();
    let info = stream.info().await.unwrap();
    assert_eq!(info.config.num_replicas, 3);
    let leader = info
        .cluster
        .as_ref()
        .and_then(|c| c.leader.clone())
        .unwrap();
    let victim = leader.trim_start_matches("hv-").parse::<usize>().unwrap();
    let killing = async {
        tokio::time::sleep(Duration::from_millis(100)).await;
        nodes[victim].kill();
    };
    let (more, ()) = tokio::join!(send(300..900), killing);
    posted.extend(more);

    let survivor = nodes[(victim + 1) % 3].url();
    nats::wait_for_messages(&survivor, posted.len() as u64).await;
    let ids: Vec<String> = nats::messages(&survivor)
        .await
        .iter()
        .map(|m| header(m, "Nats-Msg-Id").unwrap().to_owned())
        .collect();
    let unique: HashSet<String> = ids.iter().cloned().collect();
    assert_eq!(unique.len(), ids.len(), "no delivery twice");
    assert_eq!(unique, posted.into_iter().collect::<HashSet<_>>());
}

/// The consumer docs/streaming.md shows (`examples/consume_jobs.rs`), run as a user
/// would: it reads the `workflow_job` deliveries and nothing else.
#[tokio::test]
async fn the_documented_consumer_reads_the_jobs_and_only_them() {
    // `cargo test` builds the examples next to the test binaries; `cargo test --test
    // api` alone does not.
    let example = std::env::current_exe()
        .unwrap()
        .parent()
        .and_then(Path::parent)
        .unwrap()
        .join("examples/consume_jobs");
    if !example.is_file() {
        crate::skips::skip("examples/consume_jobs is not built (`cargo test` builds it)");
        return;
    }
    let Some(server) = NatsServer::start().await else {
        return;
    };
    let app = TestApp::spawn_with(streaming_to(&server.url())).await;
    let mut jobs = Vec::new();
    for fixture in fixtures() {
        let id = new_id();
        let (status, body) = app.post_signed(&fixture.event, &id, &fixture.bytes).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        if fixture.event == "workflow_job" && body["data"]["status"] == "stored" {
            jobs.push(id);
        }
    }
    assert!(jobs.len() >= 2, "the fixtures hold workflow jobs");
    caught_up(&app).await;

    let output = tokio::process::Command::new(&example)
        .arg(server.url())
        .arg(jobs.len().to_string())
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(Duration::from_secs(30), output)
        .await
        .expect("the consumer read every job")
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let read: Vec<String> = String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(|line| line.split(' ').next().unwrap().to_owned())
        .collect();
    assert_eq!(read, jobs, "every job once, in order, and nothing else");
}

/// The dashboard's Overview shows the stream's lag and connection as health does:
/// up to date and connected, then, with NATS stopped, the deliveries waiting and
/// NATS's complaint (`tests/browser/stream.mjs` in Debian's Chromium).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_overview_shows_the_stream_lag_and_connection() {
    if !crate::dashboard::browser_ready() {
        return;
    }
    let Some(mut server) = NatsServer::start().await else {
        return;
    };
    let app = TestApp::spawn_with(streaming_to(&server.url())).await;
    let all = fixtures();
    let (status, _) = app
        .post_signed(&all[0].event, &new_id(), &all[0].bytes)
        .await;
    assert_eq!(status, StatusCode::OK);
    caught_up(&app).await;
    let expect = |lag: u64, connected: bool| {
        [
            ("EXPECT_LAG", lag.to_string()),
            ("EXPECT_CONNECTED", connected.to_string()),
        ]
    };
    crate::dashboard::run_script(&app, "stream.mjs", "stream", &expect(0, true)).await;

    server.kill();
    let mut stored = 0;
    for fixture in all.iter().skip(1) {
        let (_, body) = app
            .post_signed(&fixture.event, &new_id(), &fixture.bytes)
            .await;
        if body["data"]["status"] == "stored" {
            stored += 1;
        }
        if stored == 5 {
            break;
        }
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (_, health) = app.get_json("/api/webhooks/health").await;
        let stream = &health["data"]["stream"];
        if stream["lag"] == 5 && stream["connected"] == false && !stream["lastError"].is_null() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the sink did not notice: {stream}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    crate::dashboard::run_script(&app, "stream.mjs", "stream", &expect(5, false)).await;
}
