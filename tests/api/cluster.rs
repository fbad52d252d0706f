//! Cluster mode: three hookvault nodes on one replicated JetStream log, on a real
//! three-server NATS cluster on loopback ports. Every node holds every delivery,
//! whichever node acknowledged it; all nodes decide alike (the same seqs, the same
//! duplicates), so their exports are identical.

use std::collections::{BTreeSet, HashSet};
use std::time::{Duration, Instant};

use futures::StreamExt;
use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{Delivery, TestApp, fixtures, new_id};
use crate::nats::{self, NatsServer};
use hookvault::config::{Config, NatsConfig, NatsMode};

/// The settings of a cluster node on `nats`.
pub fn node_of(nats: &[NatsServer]) -> impl FnOnce(&mut Config) + use<> {
    let mut settings = NatsConfig::new(&nats::urls(nats));
    settings.mode = NatsMode::Cluster;
    settings.stream = "HOOKVAULT_LOG".into();
    settings.replicas = 3;
    move |c| c.nats = Some(settings)
}

async fn three_nodes(nats: &[NatsServer]) -> Vec<TestApp> {
    let mut nodes = Vec::new();
    for _ in 0..3 {
        nodes.push(TestApp::spawn_with(node_of(nats)).await);
    }
    nodes
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
    let nodes = three_nodes(&nats).await;
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
    let first = summary(&nodes[0]).await;
    // The fixtures hold content duplicates: stored, and counted apart.
    let counted = first["total"].as_u64().unwrap() + first["duplicates"].as_u64().unwrap();
    assert_eq!(counted, total, "{first}");
    let exported = export(&nodes[0]).await;
    assert_eq!(exported.lines().count() as u64, total);
    for node in &nodes[1..] {
        assert_eq!(summary(node).await, first);
        assert!(
            export(node).await == exported,
            "{} exports otherwise",
            node.address
        );
    }
}

#[tokio::test]
async fn racing_copies_on_different_nodes_give_one_event_on_each() {
    let Some(nats) = nats::cluster().await else {
        return;
    };
    let nodes = three_nodes(&nats).await;
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
    let first = export(&nodes[0]).await;
    for node in &nodes[1..] {
        assert!(export(node).await == first);
    }
}
