//! Socket.IO for tokens limited to organizations, with the official JavaScript
//! client: `/webhooks` (its `since` replay and the live stream) and `/` (rooms and
//! security alerts) send only the token's events, `/monitoring` is refused, and
//! revoking the token closes its open connections at once.

use std::time::{Duration, Instant};

use hookvault::config::Secret;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::bearer::call;
use crate::helpers::{TestApp, fixture, new_id};
use crate::isolation::{mixed_load, token};
use crate::realtime::node;

fn owner_of(report: &Value) -> String {
    let name = report["repository"]
        .as_str()
        .and_then(|r| r.split('/').next())
        .or(report["organization"].as_str())
        .unwrap_or("");
    name.to_ascii_lowercase()
}

/// Posts fixture 0 of each event type, moved to its owner; answers the delivery ids.
async fn post_all(app: &TestApp, sends: &[(&str, &str)]) -> Vec<String> {
    let mut ids = Vec::new();
    for (event, owner) in sends {
        ids.push(post(app, event, owner).await);
    }
    ids
}

async fn post(app: &TestApp, event: &str, owner: &str) -> String {
    let mut payload = fixture(event, 0).json;
    let name = payload["repository"]["name"].as_str().unwrap().to_owned();
    payload["repository"]["full_name"] = json!(format!("{owner}/{name}"));
    payload["repository"]["owner"]["login"] = json!(owner);
    if payload["organization"].is_object() {
        payload["organization"]["login"] = json!(owner);
    }
    let id = new_id();
    let (status, answer) = app
        .post_signed(event, &id, &serde_json::to_vec(&payload).unwrap())
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scoped_socket_gets_only_its_organizations_events() {
    let app = TestApp::spawn().await;
    let sent = mixed_load(&app, 3).await;
    let read = token(&app, "octo-live", "read", &["octo-org"]).await;
    let rooms = json!([
        "org:octo-org",
        "org:other-org",
        "repo:other-org/Hello-World"
    ])
    .to_string();
    let Some(mut client) = node(&app, "client.mjs", &["scoped", &read, &rooms]) else {
        return;
    };
    client.expect("\"ready\"").await;
    client.expect("\"subscribed\"").await;

    // The `since: 0` replay: exactly the stored events it may see.
    let octo = sent.values().filter(|s| s.octo).count();
    client
        .read_until("the replay", |c| c.reports("event").len() >= octo)
        .await;
    let mut replayed: Vec<String> = client
        .reports("event")
        .iter()
        .map(|e| e["deliveryId"].as_str().unwrap().to_owned())
        .collect();
    replayed.sort();
    let mut expected: Vec<String> = sent
        .iter()
        .filter(|(_, s)| s.octo)
        .map(|(id, _)| id.clone())
        .collect();
    expected.sort();
    assert_eq!(replayed, expected);

    // Live: its own push and security alert arrive; the other organization's do not.
    let others = post_all(
        &app,
        &[("push", "other-org"), ("dependabot_alert", "other-org")],
    )
    .await;
    let mine = post_all(
        &app,
        &[("push", "octo-org"), ("dependabot_alert", "Octo-Org")],
    )
    .await;
    for id in &mine {
        client
            .read_until(id, |c| {
                c.reports("event").iter().any(|e| e["deliveryId"] == *id)
                    && c.reports("live").iter().any(|e| e["deliveryId"] == *id)
            })
            .await;
    }
    client.read_for(Duration::from_millis(500)).await;
    for kind in ["event", "live"] {
        for report in client.reports(kind) {
            assert_eq!(owner_of(&report), "octo-org", "{kind}: {report}");
            let id = report["deliveryId"].as_str().unwrap().to_owned();
            assert!(!others.contains(&id));
        }
    }
    assert!(
        client
            .reports("live")
            .iter()
            .any(|l| l["kind"] == "security-alert"),
        "its own security alert arrives"
    );

    // The instance's live metrics are not split per organization: refused.
    let Some(mut monitoring) = node(&app, "client.mjs", &["connect", "/monitoring", &read]) else {
        return;
    };
    let line = monitoring.expect("connect_error").await;
    assert!(line.contains("limited"), "{line}");
}

const ADMIN: &str = "admin-token-0123456789";

async fn admin_made(app: &TestApp, name: &str, orgs: &[&str]) -> String {
    let body = json!({"name": name, "scope": "read", "organizations": orgs});
    let (status, answer) = call(app, Method::POST, "/api/tokens", ADMIN, Some(body)).await;
    assert_eq!(status, StatusCode::CREATED, "{answer}");
    answer["data"]["token"].as_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoking_a_token_closes_its_open_sockets_at_once() {
    // With an API token, so that a local client presenting a revoked token is not
    // let in as the local admin.
    let app = TestApp::spawn_with(|c| c.api_token = Some(Secret::new(ADMIN))).await;
    let doomed = admin_made(&app, "doomed", &["octo-org"]).await;
    let kept = admin_made(&app, "kept", &[]).await;
    let Some(mut feed) = node(&app, "client.mjs", &["stay", "/webhooks", &doomed]) else {
        return;
    };
    let Some(mut main) = node(&app, "client.mjs", &["stay", "/", &doomed]) else {
        return;
    };
    let Some(mut other) = node(&app, "client.mjs", &["stay", "/webhooks", &kept]) else {
        return;
    };
    for client in [&mut feed, &mut main, &mut other] {
        client.expect("\"connected\"").await;
    }

    let revoked = Instant::now();
    let (status, _) = call(&app, Method::DELETE, "/api/tokens/doomed", ADMIN, None).await;
    assert_eq!(status, StatusCode::OK);
    for client in [&mut feed, &mut main] {
        client.expect("\"disconnect\"").await;
    }
    assert!(
        revoked.elapsed() < Duration::from_secs(5),
        "closed at once, not at a heartbeat: {:?}",
        revoked.elapsed()
    );
    // Another token's socket stays; the revoked one cannot come back.
    other.read_for(Duration::from_millis(300)).await;
    assert!(other.reports("disconnect").is_empty());
    let Some(mut again) = node(&app, "client.mjs", &["connect", "/webhooks", &doomed]) else {
        return;
    };
    again.expect("connect_error").await;
    let (status, _) = call(&app, Method::GET, "/api/webhooks/events", &doomed, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

/// The dashboard with a token limited to `octo-org` (`tests/browser/scoped.mjs`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_shows_a_limited_token_its_own_events() {
    if !crate::dashboard::browser_ready() {
        return;
    }
    let app = TestApp::spawn().await;
    let read = token(&app, "octo-dashboard", "read", &["octo-org"]).await;
    let mine = post_all(&app, &[("push", "octo-org"), ("issues", "Octo-Org")]).await;
    let others = post_all(&app, &[("push", "other-org"), ("issues", "third-org")]).await;
    app.settle().await;
    let env = [
        ("HOOKVAULT_TOKEN", read),
        ("HOOKVAULT_MINE", mine.join(",")),
        ("HOOKVAULT_OTHERS", others.join(",")),
    ];
    crate::dashboard::run_script(&app, "scoped.mjs", "scoped", &env).await;
}
