//! Cluster mode: three hookvault nodes on one replicated JetStream log, on a real
//! three-server NATS cluster on loopback ports. Every node holds every delivery,
//! whichever node acknowledged it; all nodes decide alike (the same seqs, the same
//! duplicates), so their exports are identical.

use std::collections::{BTreeSet, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{Delivery, Fixture, SECRET, TestApp, fixtures, new_id};
use crate::nats::{self, NatsServer};
use crate::process::{Binary, command};
use crate::receiver::{Answer, Receiver};
use hookvault::config::{Config, NatsConfig, NatsMode};
use hookvault::ingest::Payload;
use hookvault::process::Stage;
use hookvault::store::EventRecord;

/// Three cluster nodes on `nats`, each with `tweak` applied to its settings and
/// `stages` added to its processing.
async fn three_nodes(
    nats: &[NatsServer],
    tweak: impl Fn(&mut Config) + Clone,
    stages: Vec<Arc<dyn Stage>>,
) -> Vec<TestApp> {
    let mut settings = NatsConfig::new(&nats::urls(nats));
    settings.mode = NatsMode::Cluster;
    settings.stream = "HOOKVAULT_LOG".into();
    settings.replicas = 3;
    let mut nodes = Vec::new();
    for _ in 0..3 {
        let (settings, tweak) = (settings.clone(), tweak.clone());
        let node = move |c: &mut Config| {
            c.nats = Some(settings);
            tweak(c);
        };
        nodes.push(TestApp::spawn_full(node, stages.clone()).await);
    }
    nodes
}

/// Waits until every node exports the same (each applies the log at its own pace);
/// that export.
async fn same_exports(nodes: &[TestApp]) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let first = export(&nodes[0]).await;
        let mut same = true;
        for node in &nodes[1..] {
            same &= export(node).await == first;
        }
        if same {
            return first;
        }
        assert!(Instant::now() < deadline, "the nodes' exports differ");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until `node` lists `count` events and its index holds them; how long it took.
async fn caught_up(node: &TestApp, count: u64) -> Duration {
    let started = Instant::now();
    let deadline = started + Duration::from_secs(30);
    loop {
        let (_, found) = node.get_json("/api/webhooks/search?q=&limit=1").await;
        if node.count("").await == count
            && found["data"]["total"] == count
            && found["data"]["indexLag"] == 0
        {
            return started.elapsed();
        }
        assert!(
            Instant::now() < deadline,
            "{} holds {} of {count} events; search: {found}",
            node.address,
            node.count("").await
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn export(node: &TestApp) -> String {
    let response = node
        .client
        .get(node.url("/api/export"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    response.text().await.unwrap()
}

async fn summary(node: &TestApp) -> Value {
    let (status, body) = node.get_json("/api/webhooks/statistics").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let summary = &body["data"]["summary"];
    serde_json::json!({
        "total": summary["totalEvents"],
        "duplicates": summary["duplicateEvents"],
        "byEvent": body["data"]["eventTypes"],
    })
}

#[tokio::test]
async fn every_node_holds_every_delivery_whichever_node_took_it() {
    let Some(nats) = nats::cluster().await else {
        return;
    };
    let nodes = three_nodes(&nats, |_| {}, Vec::new()).await;
    let corpus = fixtures();
    let mut posted = BTreeSet::new();
    for (i, fixture) in corpus.iter().enumerate() {
        let node = &nodes[i % 3];
        let id = new_id();
        let (status, answer) = node
            .post_unapplied(Delivery::new(&fixture.event, &id, &fixture.bytes))
            .await;
        assert_eq!(status, StatusCode::OK, "{answer}");
        // Read back at once from the node that acknowledged it.
        let (status, found) = node.get_json(&format!("/api/webhooks/events/{id}")).await;
        assert_eq!(status, StatusCode::OK, "{id} right after its 200: {found}");
        assert_eq!(found["data"]["deliveryId"], id);
        posted.insert(id);
    }
    let total = posted.len() as u64;
    for node in &nodes {
        let took = caught_up(node, total).await;
        eprintln!("{} caught up {took:?} after the last 200", node.address);
        for id in &posted {
            let (status, _) = node.get_json(&format!("/api/webhooks/events/{id}")).await;
            assert_eq!(status, StatusCode::OK, "{id} on {}", node.address);
        }
        // Search finds each delivery by its id on every node.
        let id = posted.first().unwrap();
        let (_, found) = node
            .get_json(&format!("/api/webhooks/search?q=delivery:%22{id}%22"))
            .await;
        assert_eq!(found["data"]["hits"][0]["deliveryId"], *id, "{found}");
    }
    for node in &nodes {
        let (_, health) = node.get_json("/api/webhooks/health").await;
        let cluster = &health["data"]["cluster"];
        assert_eq!(cluster["following"], true, "{health}");
        assert_eq!(cluster["lag"], 0, "{health}");
        assert!(
            cluster["appliedStreamSeq"].as_u64().unwrap() >= total,
            "{health}"
        );
        let metrics = node.metrics().await;
        assert!(
            metrics.contains("hookvault_cluster_apply_lag_messages 0"),
            "{metrics}"
        );
    }
    let first = summary(&nodes[0]).await;
    // The fixtures hold content duplicates: stored, and counted apart.
    let counted = first["total"].as_u64().unwrap() + first["duplicates"].as_u64().unwrap();
    assert_eq!(counted, total, "{first}");
    for node in &nodes[1..] {
        assert_eq!(summary(node).await, first);
    }
    assert_eq!(same_exports(&nodes).await.lines().count() as u64, total);
}

#[tokio::test]
async fn racing_copies_on_different_nodes_give_one_event_on_each() {
    let Some(nats) = nats::cluster().await else {
        return;
    };
    let nodes = three_nodes(&nats, |_| {}, Vec::new()).await;
    let fixture = &fixtures()[0];
    let id = new_id();
    let answers: Vec<(StatusCode, Value)> = futures::stream::iter(0..50)
        .map(|i| nodes[i % 3].post_unapplied(Delivery::new(&fixture.event, &id, &fixture.bytes)))
        .buffer_unordered(50)
        .collect()
        .await;
    let mut stored = 0;
    let seqs: HashSet<String> = answers
        .iter()
        .map(|(status, answer)| {
            assert_eq!(*status, StatusCode::OK, "{answer}");
            match answer["data"]["status"].as_str() {
                Some("stored") => stored += 1,
                Some("duplicate") => {}
                other => panic!("{other:?}: {answer}"),
            }
            answer["data"]["id"].to_string()
        })
        .collect();
    assert_eq!(stored, 1, "one copy stored, the others duplicates");
    assert_eq!(seqs.len(), 1, "every answer names the same event: {seqs:?}");
    for node in &nodes {
        caught_up(node, 1).await;
        let (status, found) = node.get_json(&format!("/api/webhooks/events/{id}")).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(found["data"]["deliveryId"], id);
    }
    same_exports(&nodes).await;
}

const TOKEN: &str = "cluster-test-token";

/// A cluster node as a process of its own, so it can be killed with SIGKILL.
fn node_process(dir: &std::path::Path, nats: &[NatsServer]) -> Binary {
    Binary::start(node_command(dir, nats))
}

fn node_command(dir: &std::path::Path, nats: &[NatsServer]) -> std::process::Command {
    let mut cmd = command(dir);
    cmd.env("GITHUB_WEBHOOK_SECRET", SECRET)
        .env("HOOKVAULT_API_TOKEN", TOKEN)
        .env("HOOKVAULT_NATS_URL", nats::urls(nats))
        .env("HOOKVAULT_NATS_MODE", "cluster");
    cmd
}

/// The delivery ids of a node's export, in seq order, and the export's text.
async fn exported_ids(client: &reqwest::Client, address: &str) -> (Vec<String>, String) {
    let text = client
        .get(format!("{address}/api/export"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let ids = text
        .lines()
        .map(|line| {
            let line: Value = serde_json::from_str(line).unwrap();
            line["deliveryId"].as_str().unwrap().to_owned()
        })
        .collect();
    (ids, text)
}

/// Posts fixtures under new ids to `address` until `stop`; records every id answered
/// 200 in `acknowledged`. Refusals (503 while the log's leader moves) and a node
/// that is gone are expected.
async fn send(
    client: reqwest::Client,
    address: String,
    corpus: Arc<Vec<Fixture>>,
    acknowledged: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
    worker: usize,
) {
    let mut i = worker;
    while !stop.load(Ordering::Relaxed) {
        let fixture = &corpus[i % corpus.len()];
        i += 7;
        let id = new_id();
        let delivery = Delivery::new(&fixture.event, &id, &fixture.bytes);
        let mut request = client.post(format!("{address}/api/webhooks/github"));
        for (name, value) in &delivery.headers {
            request = request.header(name.as_str(), value.as_str());
        }
        match request.body(delivery.body).send().await {
            Ok(response) if response.status() == StatusCode::OK => {
                acknowledged.lock().unwrap().push(id);
            }
            Ok(_) => tokio::time::sleep(Duration::from_millis(20)).await,
            Err(_) => return, // the node is gone
        }
    }
}

#[tokio::test]
async fn losing_a_nats_server_and_a_node_under_load_loses_nothing() {
    let Some(mut nats) = nats::cluster().await else {
        return;
    };
    let dirs: Vec<tempfile::TempDir> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let mut nodes: Vec<Binary> = dirs
        .iter()
        .map(|dir| node_process(dir.path(), &nats))
        .collect();
    let client = crate::helpers::client_builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let acknowledged: Arc<Mutex<Vec<String>>> = Arc::default();
    let corpus = Arc::new(fixtures());
    let stop = Arc::new(AtomicBool::new(false));
    let senders: Vec<_> = (0..32)
        .map(|worker| {
            tokio::spawn(send(
                client.clone(),
                nodes[worker % 3].address.clone(),
                corpus.clone(),
                acknowledged.clone(),
                stop.clone(),
                worker,
            ))
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    nats[0].kill();
    let at_server_loss = acknowledged.lock().unwrap().len();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    nodes[2].child.kill().unwrap(); // SIGKILL
    nodes[2].child.wait().unwrap();
    let at_node_loss = acknowledged.lock().unwrap().len();
    // The load goes on: until 100 more are acknowledged (a NATS cluster on a busy
    // machine may take seconds to choose the stream's new leader), 1.5 s at least.
    let deadline = Instant::now() + Duration::from_secs(60);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    while acknowledged.lock().unwrap().len() < at_node_loss + 100 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    stop.store(true, Ordering::Relaxed);
    for sender in senders {
        sender.await.unwrap();
    }
    let acknowledged: HashSet<String> = acknowledged.lock().unwrap().iter().cloned().collect();
    eprintln!(
        "acknowledged {} deliveries ({at_server_loss} before a NATS server was killed, \
         {at_node_loss} before a node was)",
        acknowledged.len()
    );
    assert!(
        acknowledged.len() > at_node_loss,
        "the load went on after the losses"
    );
    assert!(at_server_loss > 0);

    nodes[2] = node_process(dirs[2].path(), &nats);
    let mut exports = Vec::new();
    for node in &nodes {
        let deadline = Instant::now() + Duration::from_secs(60);
        let (ids, text) = loop {
            let (ids, text) = exported_ids(&client, &node.address).await;
            let held: HashSet<&String> = ids.iter().collect();
            if acknowledged.iter().all(|id| held.contains(id)) {
                break (ids, text);
            }
            let missing = acknowledged.iter().filter(|id| !held.contains(id)).count();
            assert!(
                Instant::now() < deadline,
                "{} misses {missing} acknowledged deliveries",
                node.address
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
        let unique: HashSet<&String> = ids.iter().collect();
        assert_eq!(
            unique.len(),
            ids.len(),
            "no delivery twice on {}",
            node.address
        );
        exports.push(text);
    }
    // Every node decided every message alike, the restarted one too. (All caught up:
    // nothing is being sent, and each holds every acknowledged delivery; the last
    // unacknowledged ones may still arrive, so compare once they agree.)
    let deadline = Instant::now() + Duration::from_secs(30);
    while !(exports[0] == exports[1] && exports[1] == exports[2]) {
        assert!(Instant::now() < deadline, "the nodes' exports differ");
        tokio::time::sleep(Duration::from_millis(200)).await;
        for (node, export) in nodes.iter().zip(exports.iter_mut()) {
            *export = exported_ids(&client, &node.address).await.1;
        }
    }

    // A cluster node's data directory takes deliveries from the cluster's log only.
    let node = nodes.remove(0);
    node.terminate();
    let mut alone = command(dirs[0].path());
    alone
        .env("GITHUB_WEBHOOK_SECRET", SECRET)
        .args(["--listen", "127.0.0.1:0"]);
    refused(alone, "belongs to a cluster node");
    let export = dirs[0].path().join("nodes-own.ndjson");
    std::fs::write(&export, exports[0].as_bytes()).unwrap();
    let mut import = command(dirs[0].path());
    import
        .env("GITHUB_WEBHOOK_SECRET", SECRET)
        .args(["import", export.to_str().unwrap()]);
    refused(import, "belongs to a cluster node");
}

/// Runs `command` and checks that it fails, saying `why`.
fn refused(mut command: std::process::Command, why: &str) {
    let output = command.output().unwrap();
    let said = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{said}");
    assert!(said.contains(why), "{said}");
}

#[tokio::test]
async fn a_single_nodes_data_directory_does_not_start_as_a_cluster_node() {
    let Some(nats) = nats::cluster().await else {
        return;
    };
    let mut single = TestApp::spawn().await;
    let fixture = &fixtures()[0];
    let (status, _) = single
        .post(Delivery::new(&fixture.event, &new_id(), &fixture.bytes))
        .await;
    assert_eq!(status, StatusCode::OK);
    single.stop().await;
    let mut joined = command(single.data_dir.path());
    joined
        .env("GITHUB_WEBHOOK_SECRET", SECRET)
        .env("HOOKVAULT_NATS_URL", nats::urls(&nats))
        .env("HOOKVAULT_NATS_MODE", "cluster")
        .args(["--listen", "127.0.0.1:0"]);
    refused(joined, "not in the cluster's log");
}

/// A processing stage that fails while `broken` is set (a target that is down).
#[derive(Default)]
struct Broken(AtomicBool);

impl Stage for Broken {
    fn process(&self, _record: &EventRecord, _payload: &Payload) -> Result<(), String> {
        match self.0.load(Ordering::SeqCst) {
            true => Err("target down".into()),
            false => Ok(()),
        }
    }
}

/// Waits until every node shows `id` as `done` says; the event as the first shows it.
async fn everywhere(nodes: &[TestApp], id: &str, done: impl Fn(&Value) -> bool) -> Value {
    let mut seen = Vec::new();
    for node in nodes {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let (_, event) = node.get_json(&format!("/api/webhooks/events/{id}")).await;
            if done(&event["data"]) {
                seen.push(event["data"].clone());
                break;
            }
            assert!(Instant::now() < deadline, "{}: {event}", node.address);
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    assert!(seen.windows(2).all(|w| w[0] == w[1]), "{seen:?}");
    seen.swap_remove(0)
}

#[tokio::test]
async fn a_replay_and_a_retry_failed_on_one_node_show_on_every_node() {
    let Some(nats) = nats::cluster().await else {
        return;
    };
    let broken = Arc::new(Broken(AtomicBool::new(true)));
    // Only a replay or a retry-failed processes again.
    let no_retries = |c: &mut Config| c.max_retries = 0;
    let nodes = three_nodes(&nats, no_retries, vec![broken.clone() as Arc<dyn Stage>]).await;
    let corpus = fixtures();
    let mut ids = Vec::new();
    for (i, fixture) in corpus.iter().take(3).enumerate() {
        let id = new_id();
        let (status, _) = nodes[i]
            .post_unapplied(Delivery::new(&fixture.event, &id, &fixture.bytes))
            .await;
        assert_eq!(status, StatusCode::OK);
        everywhere(&nodes, &id, |e| {
            e["status"] == "failed" && e["attempts"] == 1
        })
        .await;
        ids.push(id);
    }
    broken.0.store(false, Ordering::SeqCst);

    let (status, replayed) = nodes[2]
        .post_json(&format!("/api/webhooks/replay/{}", ids[0]), json!({}))
        .await;
    assert_eq!(status, StatusCode::OK, "{replayed}");
    assert_eq!(replayed["data"]["status"], "processed", "{replayed}");
    let shown = everywhere(&nodes, &ids[0], |e| e["status"] == "processed").await;
    assert_eq!(shown["attempts"], 2, "{shown}");

    let (status, report) = nodes[1]
        .post_json("/api/webhooks/retry-failed", json!({}))
        .await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(report["data"]["processed"], 2, "{report}");
    for id in &ids[1..] {
        let shown = everywhere(&nodes, id, |e| e["status"] == "processed").await;
        assert_eq!(shown["attempts"], 2, "{shown}");
    }
    same_exports(&nodes).await;
}

#[tokio::test]
async fn test_events_their_removal_and_retention_reach_every_node() {
    let Some(nats) = nats::cluster().await else {
        return;
    };
    let size_cap = |c: &mut Config| {
        c.max_payload_bytes = Some(60_000);
        c.retention_interval = Duration::from_millis(50);
    };
    let nodes = three_nodes(&nats, size_cap, Vec::new()).await;
    let request = json!({"eventType": "workflow_job", "repository": "test/repo"});
    let (status, made) = nodes[0].post_json("/api/webhooks/test", request).await;
    assert_eq!(status, StatusCode::OK, "{made}");
    assert_eq!(made["data"]["status"], "processed", "{made}");
    let test_id = made["data"]["deliveryId"].as_str().unwrap().to_owned();
    // Processed twice where it was made (stored, then run through the pipeline).
    let attempts = made["data"]["attempts"].clone();
    everywhere(&nodes, &test_id, |e| e["attempts"] == attempts).await;
    let (status, removed) = nodes[1]
        .client
        .delete(nodes[1].url("/api/webhooks/test"))
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .map(|body| (StatusCode::OK, body))
        .unwrap();
    assert_eq!(status, StatusCode::OK);
    assert_eq!(removed["data"]["removed"], 1, "{removed}");
    for node in &nodes {
        let deadline = Instant::now() + Duration::from_secs(20);
        while node
            .get_json(&format!("/api/webhooks/events/{test_id}"))
            .await
            .0
            != StatusCode::NOT_FOUND
        {
            assert!(
                Instant::now() < deadline,
                "{} keeps the test event",
                node.address
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    // The size cap: every node's retention retires the same oldest events.
    for n in 0..10 {
        // ~20 KB of random hex: about 10 KB compressed, so five or six fit.
        let noise: String = (0..20_000)
            .map(|_| char::from_digit(rand::random_range(0..16), 16).unwrap())
            .collect();
        let body = serde_json::to_vec(&json!({"zen": noise, "n": n})).unwrap();
        let (status, _) = nodes[n % 3]
            .post_unapplied(Delivery::new("ping", &new_id(), &body))
            .await;
        assert_eq!(status, StatusCode::OK);
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let mut kept = Vec::new();
        for node in &nodes {
            kept.push(node.listed_ids("limit=100").await);
        }
        if kept[0].len() < 10 && kept.windows(2).all(|w| w[0] == w[1]) {
            break;
        }
        assert!(Instant::now() < deadline, "the nodes keep {kept:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Each node's retention task retires by its own clock; once every retirement is
    // applied everywhere, the nodes hold the same.
    same_exports(&nodes).await;
}

/// A node process's answer to an API request, with the token.
async fn call(
    client: &reqwest::Client,
    method: reqwest::Method,
    url: String,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut request = client.request(method, url).bearer_auth(TOKEN);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// Waits until exactly one of the nodes (those at `addresses`) runs forwarding;
/// which one.
async fn forwarding_node(client: &reqwest::Client, addresses: &[&str]) -> usize {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let mut running = Vec::new();
        for (i, address) in addresses.iter().enumerate() {
            let url = format!("{address}/api/webhooks/health");
            let (_, health) = call(client, reqwest::Method::GET, url, None).await;
            if health["data"]["cluster"]["holdsLease"] == true {
                running.push(i);
            }
        }
        if let [one] = running[..] {
            return one;
        }
        assert!(
            Instant::now() < deadline,
            "nodes {running:?} run forwarding; one should"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until every node at `addresses` answers `path` with what `done` accepts.
async fn on_every_node(
    client: &reqwest::Client,
    addresses: &[&str],
    path: &str,
    done: impl Fn(&Value) -> bool,
) {
    for address in addresses {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let url = format!("{address}{path}");
            let (_, body) = call(client, reqwest::Method::GET, url, None).await;
            if done(&body) {
                break;
            }
            assert!(Instant::now() < deadline, "{address}{path}: {body}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// Posts `count` fixtures under new ids, round-robin to the nodes at `addresses`,
/// the first under `first_id` if given; the ids, each answered 200.
async fn post_round_robin(
    client: &reqwest::Client,
    addresses: &[&str],
    count: usize,
    first_id: Option<String>,
) -> Vec<String> {
    let corpus = fixtures();
    let mut first_id = first_id;
    let mut ids = Vec::new();
    for i in 0..count {
        let fixture = &corpus[i % corpus.len()];
        let id = first_id.take().unwrap_or_else(new_id);
        let delivery = Delivery::new(&fixture.event, &id, &fixture.bytes);
        let address = addresses[i % addresses.len()];
        let mut request = client.post(format!("{address}/api/webhooks/github"));
        for (name, value) in &delivery.headers {
            request = request.header(name.as_str(), value.as_str());
        }
        let response = request.body(delivery.body).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{id} on {address}");
        ids.push(id);
    }
    ids
}

fn times_received(target: &Receiver) -> std::collections::HashMap<String, usize> {
    let mut times = std::collections::HashMap::new();
    for request in target.received() {
        *times.entry(request.delivery_id().to_owned()).or_default() += 1;
    }
    times
}

#[tokio::test]
async fn forwarding_runs_once_per_cluster_and_moves_when_its_node_dies() {
    let Some(nats) = nats::cluster().await else {
        return;
    };
    // The same HOOKVAULT_FORWARD on every node, as docs/cluster.md asks.
    let target = Receiver::start().await;
    let dirs: Vec<tempfile::TempDir> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let mut nodes: Vec<Binary> = dirs
        .iter()
        .map(|dir| {
            let mut cmd = node_command(dir.path(), &nats);
            // Fixtures are posted again under new ids: content duplicates, which
            // are not forwarded, unless content dedup is off.
            cmd.env("HOOKVAULT_FORWARD", &target.url)
                .env("WEBHOOK_DEDUP_TTL", "0");
            Binary::start(cmd)
        })
        .collect();
    let client = crate::helpers::client();
    let addresses: Vec<String> = nodes.iter().map(|n| n.address.clone()).collect();
    let all: Vec<&str> = addresses.iter().map(String::as_str).collect();
    let runner = forwarding_node(&client, &all).await;
    for (i, address) in all.iter().enumerate() {
        let url = format!("{address}/api/forwarding/targets");
        let (_, list) = call(&client, reqwest::Method::GET, url, None).await;
        let targets = list["data"].as_array().unwrap();
        assert_eq!(targets.len(), 1, "{list}");
        assert_eq!(targets[0]["runsHere"], i == runner, "{list}");
    }

    // A target made through the API on another node: on every node, run by one.
    let second = Receiver::start().await;
    let refused = new_id();
    let refused_here = refused.clone();
    second.answer(move |r| match r.delivery_id() == refused_here {
        true => Answer::Status(500),
        false => Answer::Status(200),
    });
    let other = (runner + 1) % 3;
    let spec = json!({
        "name": "second",
        "url": second.url,
        "start": "beginning",
        "maxAttempts": 1,
        "timeoutMs": 2000,
    });
    let url = format!("{}/api/forwarding/targets", all[other]);
    let (status, body) = call(&client, reqwest::Method::POST, url, Some(spec)).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    on_every_node(&client, &all, "/api/forwarding/targets", |list| {
        list["data"].as_array().is_some_and(|t| t.len() == 2)
    })
    .await;

    let first = post_round_robin(&client, &all, 45, Some(refused.clone())).await;
    target
        .wait_until("every delivery at the target", |r| r.len() >= first.len())
        .await;
    second
        .wait_until("every delivery at the second target", |r| {
            r.len() >= first.len()
        })
        .await;
    // Once per cluster: each delivery reached each target once, from one node.
    tokio::time::sleep(Duration::from_millis(500)).await;
    for receiver in [&target, &second] {
        let times = times_received(receiver);
        for id in &first {
            assert_eq!(times.get(id), Some(&1), "{id} at {}", receiver.url);
        }
    }

    // The refused delivery is failed on every node, and a re-send asked of a node
    // that does not run forwarding reaches the one that does.
    let failed_path = "/api/forwarding/targets/second/failed";
    on_every_node(&client, &all, failed_path, |page| {
        page["pagination"]["total"] == 1
    })
    .await;
    second.answer(|_| Answer::Status(200));
    let url = format!("{}/api/forwarding/targets/second/resend", all[other]);
    let (status, body) = call(
        &client,
        reqwest::Method::POST,
        url,
        Some(json!({"all": true})),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    second
        .wait_until("the re-sent delivery", |r| {
            r.iter().filter(|r| r.delivery_id() == refused).count() == 2
        })
        .await;
    on_every_node(&client, &all, failed_path, |page| {
        page["pagination"]["total"] == 0
    })
    .await;

    // The node running forwarding saved its cursors; then it dies.
    let saved = |list: &Value| {
        list["data"].as_array().is_some_and(|targets| {
            targets
                .iter()
                .all(|t| t["savedCursor"] == t["cursor"] && t["backlog"] == 0)
        })
    };
    on_every_node(
        &client,
        &all[runner..=runner],
        "/api/forwarding/targets",
        saved,
    )
    .await;
    nodes[runner].child.kill().unwrap(); // SIGKILL
    nodes[runner].child.wait().unwrap();
    let killed = Instant::now();
    let survivors: Vec<&str> = (0..3).filter(|&i| i != runner).map(|i| all[i]).collect();
    // Deliveries keep coming while no node forwards; they go out once one does.
    let (then, next) = tokio::join!(post_round_robin(&client, &survivors, 30, None), async {
        let next = forwarding_node(&client, &survivors).await;
        eprintln!("forwarding moved {:?} after the kill", killed.elapsed());
        next
    });
    target
        .wait_until("the deliveries after the kill", |r| {
            let got: HashSet<&str> = r.iter().map(|r| r.delivery_id()).collect();
            then.iter().all(|id| got.contains(id.as_str()))
        })
        .await;
    // The next node resumed from the cursor the dead one saved through the log:
    // nothing it had sent comes again.
    let times = times_received(&target);
    for id in &first {
        assert_eq!(
            times.get(id),
            Some(&1),
            "{id} sent again after the handover"
        );
    }
    for id in &then {
        assert_eq!(times.get(id), Some(&1), "{id}");
    }

    // Deleted on one node: gone from every node, and stopped where it ran.
    let deleter = survivors[1 - next];
    let url = format!("{deleter}/api/forwarding/targets/second");
    let (status, body) = call(&client, reqwest::Method::DELETE, url, None).await;
    assert!(status.is_success(), "{status} {body}");
    on_every_node(&client, &survivors, "/api/forwarding/targets", |list| {
        list["data"].as_array().is_some_and(|t| t.len() == 1)
    })
    .await;
    let at_second = second.received().len();
    post_round_robin(&client, &survivors, 6, None).await;
    target
        .wait_until("the last deliveries", |r| {
            r.len() >= first.len() + then.len() + 6
        })
        .await;
    assert_eq!(
        second.received().len(),
        at_second,
        "a deleted target gets nothing"
    );

    // A node that stops cleanly hands the lease back, and the last node takes it.
    let survivor_index = |address: &str| nodes.iter().position(|n| n.address == address);
    let stopping = survivor_index(survivors[next]).unwrap();
    let last = survivors[1 - next].to_owned();
    let (_, said) = nodes.remove(stopping).terminate();
    assert!(said.contains("cluster's lease released"), "{said}");
    forwarding_node(&client, &[&last]).await;
    let more = post_round_robin(&client, &[&last], 3, None).await;
    target
        .wait_until("the deliveries after the clean stop", |r| {
            let got: HashSet<&str> = r.iter().map(|r| r.delivery_id()).collect();
            more.iter().all(|id| got.contains(id.as_str()))
        })
        .await;
}

/// Waits until every node answers `token`'s read of the events with `status`.
async fn token_answered(nodes: &[TestApp], token: &str, status: StatusCode) {
    for node in nodes {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let method = reqwest::Method::GET;
            let (got, _) =
                crate::bearer::call(node, method, "/api/webhooks/events", token, None).await;
            if got == status {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{} answers the token {got}, not {status}",
                node.address
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

#[tokio::test]
async fn a_token_made_or_revoked_on_one_node_holds_on_every_node() {
    let Some(nats) = nats::cluster().await else {
        return;
    };
    const ADMIN: &str = "cluster-admin-token";
    let admin = |c: &mut Config| c.api_token = Some(hookvault::config::Secret::new(ADMIN));
    let nodes = three_nodes(&nats, admin, Vec::new()).await;
    let (status, made) = crate::bearer::call(
        &nodes[0],
        reqwest::Method::POST,
        "/api/tokens",
        ADMIN,
        Some(json!({"name": "reader", "scope": "read"})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{made}");
    let token = made["data"]["token"].as_str().unwrap().to_owned();
    token_answered(&nodes, &token, StatusCode::OK).await;
    let (status, listed) =
        crate::bearer::call(&nodes[2], reqwest::Method::GET, "/api/tokens", ADMIN, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(listed["data"][0]["name"], "reader", "{listed}");

    let (status, body) = crate::bearer::call(
        &nodes[1],
        reqwest::Method::DELETE,
        "/api/tokens/reader",
        ADMIN,
        None,
    )
    .await;
    assert!(status.is_success(), "{status} {body}");
    token_answered(&nodes, &token, StatusCode::UNAUTHORIZED).await;
}

#[tokio::test]
async fn scheduled_backfill_runs_on_the_node_holding_the_lease_only() {
    use crate::github_fake::{FakeGitHub, Hook, TOKEN};
    use hookvault::backfill::hooks::HookRef;
    use hookvault::config::{BackfillConfig, Secret};
    let Some(nats) = nats::cluster().await else {
        return;
    };
    // GitHub failed to deliver two deliveries of the hook (nothing listened).
    let fake = FakeGitHub::start().await;
    fake.set_target("http://127.0.0.1:9/api/webhooks/github");
    let hook = Hook::repo("Codertocat/Hello-World", 303);
    let fixture = fixtures()
        .into_iter()
        .find(|f| f.repository() == Some("Codertocat/Hello-World"))
        .unwrap();
    let mut missed = BTreeSet::new();
    for _ in 0..2 {
        let id = new_id();
        assert_eq!(
            fake.deliver(&hook, &fixture.event, &id, &fixture.bytes)
                .await,
            502
        );
        missed.insert(id);
    }
    // Every node has the same backfill settings, with a schedule (its first run at
    // startup).
    let backfill = BackfillConfig {
        api_url: fake.url.clone(),
        token: Some(Secret::new(TOKEN)),
        hooks: Some(HookRef::parse_list("repo:Codertocat/Hello-World:303").unwrap()),
        interval: Some(Duration::from_secs(3600)),
        pace: Duration::ZERO,
        // The redeliveries go nowhere: the run ends without waiting for them.
        confirm_wait: Duration::ZERO,
        ..BackfillConfig::default()
    };
    let nodes = three_nodes(&nats, move |c| c.backfill = backfill.clone(), Vec::new()).await;
    let ran = || async {
        let mut ran = Vec::new();
        for node in &nodes {
            let (_, status) = node.get_json("/api/backfill").await;
            if !status["data"]["lastRun"].is_null() {
                ran.push(node.address.clone());
            }
        }
        ran
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while ran().await.is_empty() {
        assert!(Instant::now() < deadline, "no node ran backfill at startup");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Time for the others to run too, were they to: one node asks GitHub, not each.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let ran = ran().await;
    assert_eq!(ran.len(), 1, "nodes that ran backfill: {ran:?}");
    let asked: BTreeSet<String> = fake.redelivered().into_iter().collect();
    assert_eq!(asked, missed);
    assert_eq!(fake.redelivered().len(), 2, "each redelivery asked once");
}
