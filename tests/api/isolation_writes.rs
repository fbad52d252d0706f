//! What a `write` token limited to `octo-org` may change: replay and test events
//! within `octo-org` only (another organization's event is as unknown, 404; a test
//! event elsewhere is 403), retries of its own failures, not the removal of every
//! test event; and what an `admin` token limited to it exports.

use std::collections::BTreeSet;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::bearer::call;
use crate::helpers::TestApp;
use crate::isolation::{get, ids, mixed_load, token};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_token_changes_only_its_organizations_events() {
    let app = TestApp::spawn().await;
    let sent = mixed_load(&app, 5).await;
    let write = token(&app, "octo-writer", "write", &["octo-org"]).await;
    let replayable = |octo: bool| {
        sent.iter()
            .find(|(_, s)| s.octo == octo && s.repository.is_some())
            .map(|(id, _)| format!("/api/webhooks/replay/{id}"))
            .unwrap()
    };
    let (status, answer) = call(&app, Method::POST, &replayable(true), &write, None).await;
    assert!(
        status == StatusCode::OK || status == StatusCode::CONFLICT,
        "{answer}"
    );
    let (status, _) = call(&app, Method::POST, &replayable(false), &write, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let test = |repository: &str| json!({"eventType": "push", "repository": repository});
    let path = "/api/webhooks/test";
    let (status, answer) = call(&app, Method::POST, path, &write, Some(test("Octo-Org/app"))).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    for repository in ["other-org/app", "hookvault/test"] {
        let body = Some(test(repository));
        let (status, answer) = call(&app, Method::POST, path, &write, body).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{repository}: {answer}");
    }
    let retry = "/api/webhooks/retry-failed";
    let (status, answer) = call(&app, Method::POST, retry, &write, None).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let (status, _) = call(&app, Method::DELETE, path, &write, None).await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "removing every test event concerns everyone"
    );

    // An admin token limited to octo-org exports only its events.
    let admin = token(&app, "octo-admin", "admin", &["octo-org"]).await;
    let response = app.client.get(app.url("/api/export")).bearer_auth(&admin);
    let response = response.send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let exported: BTreeSet<String> = response
        .text()
        .await
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap()["deliveryId"].to_string())
        .map(|quoted| quoted.trim_matches('"').to_owned())
        .collect();
    let (_, listed) = get(&app, "/api/webhooks/events?limit=1000", &admin).await;
    assert_eq!(exported, ids(&listed["data"], "deliveryId"));
    assert!(
        exported
            .iter()
            .all(|id| sent.get(id).is_none_or(|s| s.octo))
    );
    let (status, _) = get(&app, "/api/tokens", &admin).await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "tokens concern the whole instance"
    );
}
