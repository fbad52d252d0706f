//! What a `read` token limited to `octo-org` reads of the mixed load
//! ([`crate::isolation`]): only `octo-org`'s events from every endpoint, 404 (not
//! 403) for another organization's event, statistics that are sums over its
//! repositories, and 403 for what concerns the whole instance and for every write.

use std::collections::BTreeSet;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::bearer::call;
use crate::helpers::{TestApp, fixture, new_id};
use crate::isolation::{get, ids, indexed, is_octo_repository, mixed_load, token};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_token_for_one_organization_gets_only_its_events_everywhere() {
    let app = TestApp::spawn().await;
    let sent = mixed_load(&app, 1).await;
    let read = token(&app, "octo-reader", "read", &["octo-org"]).await;
    let octo: BTreeSet<String> = sent
        .iter()
        .filter(|(_, s)| s.octo)
        .map(|(id, _)| id.clone())
        .collect();

    // The events list and its paging.
    let (status, page) = get(&app, "/api/webhooks/events?limit=1000", &read).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(ids(&page["data"], "deliveryId"), octo);
    assert_eq!(page["pagination"]["total"], octo.len());
    let (_, pushes) = get(
        &app,
        "/api/webhooks/events?limit=7&offset=7&event=push",
        &read,
    )
    .await;
    let octo_pushes = sent.values().filter(|s| s.octo && s.event == "push");
    assert_eq!(pushes["pagination"]["total"], octo_pushes.count());
    assert!(
        ids(&pushes["data"], "repository")
            .iter()
            .all(|r| is_octo_repository(r))
    );

    // Detail (with its headers) and raw body: its own, and 404 for the others.
    for (id, s) in &sent {
        for path in [
            format!("/api/webhooks/events/{id}"),
            format!("/api/webhooks/events/{id}/raw"),
        ] {
            let response = app.client.get(app.url(&path)).bearer_auth(&read);
            let status = response.send().await.unwrap().status();
            let expected = if s.octo {
                StatusCode::OK
            } else {
                StatusCode::NOT_FOUND
            };
            assert_eq!(status, expected, "{path} {s:?}");
        }
    }

    // Repositories: its own, all of them.
    let (_, repositories) = get(&app, "/api/repositories?limit=1000", &read).await;
    let expected: BTreeSet<String> = sent
        .values()
        .filter(|s| s.octo)
        .filter_map(|s| s.repository.clone())
        .collect();
    assert_eq!(ids(&repositories["data"], "repository"), expected);
    let other = sent
        .values()
        .find_map(|s| s.repository.clone().filter(|r| !is_octo_repository(r)))
        .unwrap();
    let (status, _) = get(&app, &format!("/api/repositories/{other}"), &read).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let mine = expected.iter().next().unwrap();
    let (status, _) = get(&app, &format!("/api/repositories/{mine}"), &read).await;
    assert_eq!(status, StatusCode::OK);

    // Statistics: from the per-repository counters, totals are the sums over them:
    // every one of its events with a repository that is not a content duplicate.
    let (status, stats) = get(&app, "/api/webhooks/statistics", &read).await;
    assert_eq!(status, StatusCode::OK, "{stats}");
    let data = &stats["data"];
    let by_repository = data["byRepository"].as_array().unwrap();
    assert!(
        ids(&data["byRepository"], "repository")
            .iter()
            .all(|r| is_octo_repository(r))
    );
    let sum: i64 = by_repository
        .iter()
        .map(|r| r["total"].as_i64().unwrap())
        .sum();
    assert_eq!(data["summary"]["totalEvents"], sum, "{data}");
    let hours = data["hourly"].as_array().unwrap();
    assert_eq!(
        hours
            .iter()
            .map(|h| h["total"].as_i64().unwrap())
            .sum::<i64>(),
        sum
    );
    let events = page["data"].as_array().unwrap();
    let counted = events
        .iter()
        .filter(|e| e["repository"].is_string() && e["status"] != "duplicate");
    assert_eq!(sum as usize, counted.count());

    let (status, failed) = get(&app, "/api/webhooks/failed?limit=1000", &read).await;
    assert_eq!(status, StatusCode::OK);
    assert!(ids(&failed["data"], "deliveryId").is_subset(&octo));

    // Search, with no query: exactly its events.
    indexed(&app, &read).await;
    let (_, all) = get(&app, "/api/webhooks/search?limit=100", &read).await;
    assert_eq!(
        all["data"]["total"],
        octo.len(),
        "{}",
        all["data"]["facets"]
    );

    // What concerns the whole instance, and every write, is refused.
    for path in [
        "/api/webhooks/rejected",
        "/api/webhooks/ignored",
        "/metrics",
        "/api/tokens",
        "/api/export",
    ] {
        let (status, _) = get(&app, path, &read).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{path}");
    }
    let octo_id = octo.iter().next().unwrap();
    let test_event = json!({"eventType": "push", "repository": "octo-org/app"});
    for (method, path, body) in [
        (
            Method::POST,
            format!("/api/webhooks/replay/{octo_id}"),
            None,
        ),
        (Method::POST, "/api/webhooks/retry-failed".into(), None),
        (Method::POST, "/api/webhooks/test".into(), Some(test_event)),
        (Method::DELETE, "/api/webhooks/test".into(), None),
    ] {
        let (status, answer) = call(&app, method.clone(), &path, &read, body).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{method} {path}: {answer}");
    }
}

/// A queued, a running and a completed job of `owner/ci`, timed now.
async fn post_jobs(app: &TestApp, owner: &str, id: u64) {
    use hookvault::domain::timestamp::{now_ms, to_rfc3339};
    let now = now_ms();
    for (offset, action, runner) in [
        (0, "queued", None),
        (1, "in_progress", Some("r1")),
        (2, "completed", Some("r2")),
    ] {
        let mut p = fixture("workflow_job", 2).json;
        p["action"] = json!(action);
        p["repository"]["full_name"] = json!(format!("{owner}/ci"));
        p["repository"]["owner"]["login"] = json!(owner);
        let j = &mut p["workflow_job"];
        j["id"] = json!(id + offset);
        j["run_id"] = json!(id);
        j["status"] = json!(action);
        j["conclusion"] = json!((action == "completed").then_some("success"));
        j["created_at"] = json!(to_rfc3339(now - 120_000));
        j["started_at"] = json!(to_rfc3339(now - 60_000));
        j["completed_at"] = json!((action == "completed").then(|| to_rfc3339(now)));
        j["runner_name"] = json!(runner);
        j["runner_group_name"] = json!(runner.map(|_| "Default"));
        let body = serde_json::to_vec(&p).unwrap();
        let (status, answer) = app.post_signed("workflow_job", &new_id(), &body).await;
        assert_eq!(status, StatusCode::OK, "{answer}");
    }
}

/// Every `repository` value anywhere in `value`.
fn repositories_in(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (key, v) in map {
                match (key.as_str(), v) {
                    ("repository", Value::String(name)) => out.push(name.clone()),
                    _ => repositories_in(v, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| repositories_in(v, out)),
        _ => {}
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_actions_views_show_a_limited_token_only_its_jobs() {
    let app = TestApp::spawn().await;
    for (owner, id) in [("octo-org", 9000), ("other-org", 9100), ("Octo-Org", 9200)] {
        post_jobs(&app, owner, id).await;
    }
    app.settle().await;
    let read = token(&app, "octo-actions", "read", &["octo-org"]).await;
    for path in [
        "/api/actions/queue",
        "/api/actions/runners",
        "/api/actions/insights?hours=2160",
    ] {
        let (status, body) = get(&app, path, &read).await;
        assert_eq!(status, StatusCode::OK, "{path}: {body}");
        let mut seen = Vec::new();
        repositories_in(&body["data"], &mut seen);
        let (_, everything) = app.get_json(path).await;
        let mut all = Vec::new();
        repositories_in(&everything["data"], &mut all);
        let mine: Vec<&String> = all.iter().filter(|r| is_octo_repository(r)).collect();
        assert!(
            mine.len() < all.len(),
            "{path}: other jobs to hide: {all:?}"
        );
        assert_eq!(seen.iter().collect::<Vec<_>>(), mine, "{path}");
    }
}
