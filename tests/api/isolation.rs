//! Tokens limited to organizations see exactly their own events: a mixed load of the
//! real fixtures, retargeted over four owners (two spellings of `octo-org`), with the
//! events that have no repository (organization hooks) or neither repository nor
//! organization (installations, sponsorships), read back through every endpoint by a
//! `read` token for `octo-org`; what a `write` token may change; search under random
//! queries. Socket.IO is in `isolation_live`.

use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{TestApp, fixtures, new_id};

/// The owners the fixtures are spread over; the first and third are one
/// organization (GitHub names are case-insensitive).
pub(crate) const OWNERS: [&str; 4] = ["octo-org", "other-org", "Octo-Org", "third-org"];

/// A stored delivery of the mixed load.
#[derive(Debug, Clone)]
pub(crate) struct Sent {
    pub event: String,
    pub repository: Option<String>,
    /// Whether a token for `octo-org` may see it, by the documented rule.
    pub octo: bool,
}

/// Fixture `i` moved to `OWNERS[i % 4]`: its repository and organization.
fn retarget(mut payload: Value, owner: &str) -> Value {
    if let Some(repository) = payload.get_mut("repository").filter(|r| r.is_object()) {
        let name = repository["name"]
            .as_str()
            .map(str::to_owned)
            .or_else(|| {
                let full = repository["full_name"].as_str()?;
                Some(full.rsplit('/').next()?.to_owned())
            })
            .unwrap_or_else(|| "repo".into());
        repository["full_name"] = json!(format!("{owner}/{name}"));
        repository["owner"]["login"] = json!(owner);
    }
    if let Some(organization) = payload.get_mut("organization").filter(|o| o.is_object()) {
        organization["login"] = json!(owner);
    }
    payload
}

/// Whether an `octo-org` token may see this payload: its repository's owner, or
/// without a repository its organization, is `octo-org`.
fn octo_sees(payload: &Value) -> bool {
    let is_octo = |name: Option<&str>| name.is_some_and(|n| n.eq_ignore_ascii_case("octo-org"));
    match payload["repository"]["full_name"].as_str() {
        Some(full) => is_octo(full.split('/').next()),
        None => is_octo(payload["organization"]["login"].as_str()),
    }
}

/// Posts every `step`-th fixture, retargeted; answers what was stored, by delivery id.
pub(crate) async fn mixed_load(app: &TestApp, step: usize) -> BTreeMap<String, Sent> {
    let mut sent = BTreeMap::new();
    for (i, fixture) in fixtures().into_iter().enumerate().step_by(step) {
        let payload = retarget(fixture.json, OWNERS[(i / step) % OWNERS.len()]);
        let id = new_id();
        let body = serde_json::to_vec(&payload).unwrap();
        let (status, answer) = app.post_signed(&fixture.event, &id, &body).await;
        assert_eq!(status, StatusCode::OK, "{answer}");
        sent.insert(
            id,
            Sent {
                event: fixture.event,
                repository: payload["repository"]["full_name"]
                    .as_str()
                    .map(str::to_owned),
                octo: octo_sees(&payload),
            },
        );
    }
    app.settle().await;
    let kinds = |f: fn(&Sent) -> bool| sent.values().filter(|s| f(s)).count();
    assert!(kinds(|s| s.octo) > 0 && kinds(|s| !s.octo) > 0);
    assert!(
        kinds(|s| s.repository.is_none()) > 0,
        "events without repository"
    );
    sent
}

pub(crate) async fn call(
    app: &TestApp,
    method: Method,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut request = app.client.request(method, app.url(path)).bearer_auth(token);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.expect("request sent");
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// A token made by a local caller (an admin without a configured API token).
pub(crate) async fn token(app: &TestApp, name: &str, scope: &str, orgs: &[&str]) -> String {
    let body = json!({"name": name, "scope": scope, "organizations": orgs});
    let (status, answer) = app.post_json("/api/tokens", body).await;
    assert_eq!(status, StatusCode::CREATED, "{answer}");
    answer["data"]["token"].as_str().unwrap().to_owned()
}

fn is_octo_repository(name: &str) -> bool {
    name.split('/')
        .next()
        .is_some_and(|o| o.eq_ignore_ascii_case("octo-org"))
}

/// Waits until the search index holds every stored event.
async fn indexed(app: &TestApp, token: &str) {
    for _ in 0..500 {
        let (_, body) = call(app, Method::GET, "/api/webhooks/search", token, None).await;
        if body["data"]["indexLag"] == 0 && body["data"]["rebuilding"] == false {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    panic!("the search index did not catch up");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_token_for_one_organization_gets_only_its_events_everywhere() {
    let app = TestApp::spawn().await;
    let sent = mixed_load(&app, 1).await;
    let read = token(&app, "octo-reader", "read", &["octo-org"]).await;
    let octo: BTreeSet<&String> = sent
        .iter()
        .filter(|(_, s)| s.octo)
        .map(|(id, _)| id)
        .collect();

    // The events list and its paging.
    let (status, page) = call(
        &app,
        Method::GET,
        "/api/webhooks/events?limit=1000",
        &read,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let listed: BTreeSet<&str> = page["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["deliveryId"].as_str().unwrap())
        .collect();
    assert_eq!(listed, octo.iter().map(|s| s.as_str()).collect());
    assert_eq!(page["pagination"]["total"], octo.len());
    let (_, second) = call(
        &app,
        Method::GET,
        "/api/webhooks/events?limit=7&offset=7&event=push",
        &read,
        None,
    )
    .await;
    let pushes = sent
        .values()
        .filter(|s| s.octo && s.event == "push")
        .count();
    assert_eq!(second["pagination"]["total"], pushes, "{second}");
    assert!(
        second["data"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| is_octo_repository(e["repository"].as_str().unwrap()))
    );

    // Detail and raw body: 200 for its own, 404 (not 403) for the others.
    for (id, s) in &sent {
        for path in [
            format!("/api/webhooks/events/{id}"),
            format!("/api/webhooks/events/{id}/raw"),
        ] {
            let response = app
                .client
                .get(app.url(&path))
                .bearer_auth(&read)
                .send()
                .await
                .unwrap();
            let expected = if s.octo {
                StatusCode::OK
            } else {
                StatusCode::NOT_FOUND
            };
            assert_eq!(response.status(), expected, "{path} {s:?}");
        }
    }

    // Repositories: its own, all of them.
    let (_, repositories) = call(
        &app,
        Method::GET,
        "/api/repositories?limit=1000",
        &read,
        None,
    )
    .await;
    let names: BTreeSet<String> = repositories["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["repository"].as_str().unwrap().to_owned())
        .collect();
    let expected: BTreeSet<String> = sent
        .values()
        .filter(|s| s.octo)
        .filter_map(|s| s.repository.clone())
        .collect();
    assert_eq!(names, expected);
    let other = sent
        .values()
        .find_map(|s| s.repository.clone().filter(|r| !is_octo_repository(r)))
        .unwrap();
    let (status, _) = call(
        &app,
        Method::GET,
        &format!("/api/repositories/{other}"),
        &read,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let mine = expected.iter().next().unwrap();
    let (status, _) = call(
        &app,
        Method::GET,
        &format!("/api/repositories/{mine}"),
        &read,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);

    // Statistics: from the per-repository counters, totals are the sums over them.
    let (status, stats) = call(&app, Method::GET, "/api/webhooks/statistics", &read, None).await;
    assert_eq!(status, StatusCode::OK, "{stats}");
    let data = &stats["data"];
    let by_repository = data["byRepository"].as_array().unwrap();
    assert!(
        by_repository
            .iter()
            .all(|r| is_octo_repository(r["repository"].as_str().unwrap()))
    );
    let sum: i64 = by_repository
        .iter()
        .map(|r| r["total"].as_i64().unwrap())
        .sum();
    assert_eq!(data["summary"]["totalEvents"], sum, "{data}");
    let hourly: i64 = data["hourly"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["total"].as_i64().unwrap())
        .sum();
    assert_eq!(hourly, sum);
    // Every one of its events with a repository that is not a content duplicate.
    let counted = page["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["repository"].is_string() && e["status"] != "duplicate")
        .count();
    assert_eq!(sum as usize, counted);

    // Failures, Actions: only its repositories.
    let (status, failed) = call(
        &app,
        Method::GET,
        "/api/webhooks/failed?limit=1000",
        &read,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        failed["data"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| octo.contains(&e["deliveryId"].as_str().unwrap().to_owned()))
    );
    for (owner, id) in [("octo-org", 9000), ("other-org", 9100)] {
        post_jobs(&app, owner, id).await;
    }
    app.settle().await;
    let mut others_hidden = 0;
    for path in [
        "/api/actions/queue",
        "/api/actions/runners",
        "/api/actions/insights?hours=2160",
    ] {
        let (status, body) = call(&app, Method::GET, path, &read, None).await;
        assert_eq!(status, StatusCode::OK, "{path}: {body}");
        let mut repositories = Vec::new();
        collect_repositories(&body["data"], &mut repositories);
        assert!(
            repositories.iter().all(|r| is_octo_repository(r)),
            "{path}: {repositories:?}"
        );
        let (_, everything) = app.get_json(path).await;
        let mut all = Vec::new();
        collect_repositories(&everything["data"], &mut all);
        others_hidden += all.iter().filter(|r| !is_octo_repository(r)).count();
    }
    assert!(
        others_hidden > 0,
        "the Actions views hold other organizations' jobs to hide"
    );

    // Search, with no query: exactly its events (what the events list said).
    indexed(&app, &read).await;
    let (_, all) = call(
        &app,
        Method::GET,
        "/api/webhooks/search?limit=100&offset=0",
        &read,
        None,
    )
    .await;
    // (The events list again: the jobs above added three of its events.)
    let (_, now) = call(
        &app,
        Method::GET,
        "/api/webhooks/events?limit=1",
        &read,
        None,
    )
    .await;
    assert_eq!(now["pagination"]["total"], octo.len() + 3);
    assert_eq!(
        all["data"]["total"], now["pagination"]["total"],
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
        let (status, _) = call(&app, Method::GET, path, &read, None).await;
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
        let mut p = crate::helpers::fixture("workflow_job", 2).json;
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
        let (status, answer) = app
            .post_signed("workflow_job", &new_id(), &serde_json::to_vec(&p).unwrap())
            .await;
        assert_eq!(status, StatusCode::OK, "{answer}");
    }
}

/// Every `repository` value anywhere in `value`.
fn collect_repositories(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (key, v) in map {
                match (key.as_str(), v) {
                    ("repository", Value::String(name)) => out.push(name.clone()),
                    _ => collect_repositories(v, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| collect_repositories(v, out)),
        _ => {}
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_token_changes_only_its_organizations_events() {
    let app = TestApp::spawn().await;
    let sent = mixed_load(&app, 5).await;
    let write = token(&app, "octo-writer", "write", &["octo-org"]).await;
    let replayable = |octo: bool| {
        sent.iter()
            .find(|(_, s)| s.octo == octo && s.repository.is_some())
            .map(|(id, _)| id.clone())
            .unwrap()
    };
    let (status, answer) = call(
        &app,
        Method::POST,
        &format!("/api/webhooks/replay/{}", replayable(true)),
        &write,
        None,
    )
    .await;
    assert!(
        status == StatusCode::OK || status == StatusCode::CONFLICT,
        "{answer}"
    );
    let (status, _) = call(
        &app,
        Method::POST,
        &format!("/api/webhooks/replay/{}", replayable(false)),
        &write,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let (status, answer) = call(
        &app,
        Method::POST,
        "/api/webhooks/test",
        &write,
        Some(json!({"eventType": "push", "repository": "Octo-Org/app"})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    for repository in ["other-org/app", "hookvault/test"] {
        let body = json!({"eventType": "push", "repository": repository});
        let (status, answer) =
            call(&app, Method::POST, "/api/webhooks/test", &write, Some(body)).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{repository}: {answer}");
    }
    let (status, answer) = call(
        &app,
        Method::POST,
        "/api/webhooks/retry-failed",
        &write,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let (status, _) = call(&app, Method::DELETE, "/api/webhooks/test", &write, None).await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "removing every test event concerns everyone"
    );

    // An admin token limited to octo-org exports only its events.
    let admin = token(&app, "octo-admin", "admin", &["octo-org"]).await;
    let response = app
        .client
        .get(app.url("/api/export"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let text = response.text().await.unwrap();
    let exported: BTreeSet<String> = text
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["deliveryId"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    let (_, listed) = call(
        &app,
        Method::GET,
        "/api/webhooks/events?limit=1000",
        &admin,
        None,
    )
    .await;
    let expected: BTreeSet<String> = listed["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["deliveryId"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(exported, expected);
    assert!(
        exported
            .iter()
            .all(|id| sent.get(id).is_none_or(|s| s.octo))
    );
    let (status, _) = call(&app, Method::GET, "/api/tokens", &admin, None).await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "tokens concern the whole instance"
    );
}

/// Words of the fixtures, for random queries.
fn words() -> Vec<String> {
    let mut words = BTreeSet::new();
    for fixture in fixtures().iter().step_by(3) {
        for word in
            String::from_utf8_lossy(&fixture.bytes).split(|c: char| !c.is_ascii_alphanumeric())
        {
            if (3..12).contains(&word.len()) {
                words.insert(word.to_ascii_lowercase());
            }
        }
    }
    words.into_iter().collect()
}

#[test]
fn search_never_answers_another_organizations_event() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (app, read, sent) = runtime.block_on(async {
        let app = TestApp::spawn().await;
        let sent = mixed_load(&app, 2).await;
        let read = token(&app, "octo-search", "read", &["octo-org"]).await;
        indexed(&app, &read).await;
        (app, read, sent)
    });
    let words = words();
    let config = ProptestConfig {
        cases: 64,
        failure_persistence: None,
        ..ProptestConfig::default()
    };
    proptest!(config, |(picks in prop::collection::vec((0..words.len(), 0..4u8), 1..4), sort in 0..3usize)| {
        let q = picks
            .iter()
            .map(|(i, how)| match how {
                0 => words[*i].clone(),
                1 => format!("{}*", &words[*i][..3]),
                2 => format!("-{}", words[*i]),
                _ => format!("OR {}", words[*i]),
            })
            .collect::<Vec<_>>()
            .join(" ");
        let sort = ["relevance", "newest", "oldest"][sort];
        let query = form_urlencoded::Serializer::new(String::new())
            .append_pair("q", &q)
            .append_pair("sort", sort)
            .append_pair("limit", "100")
            .finish();
        let path = format!("/api/webhooks/search?{query}");
        let (status, body) = runtime.block_on(call(&app, Method::GET, &path, &read, None));
        if status == StatusCode::BAD_REQUEST {
            return Ok(()); // not a query tantivy parses
        }
        prop_assert_eq!(status, StatusCode::OK, "{}", body);
        let octo_total = sent.values().filter(|s| s.octo).count() as u64;
        prop_assert!(body["data"]["total"].as_u64().unwrap() <= octo_total);
        for hit in body["data"]["hits"].as_array().unwrap() {
            let id = hit["deliveryId"].as_str().unwrap();
            prop_assert!(sent[id].octo, "{} answered {}: {:?}", q, id, sent[id]);
        }
        for facet in body["data"]["facets"]["repository"].as_array().unwrap() {
            prop_assert!(is_octo_repository(facet["value"].as_str().unwrap()), "{}", facet);
        }
    });
}
