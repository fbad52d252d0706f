//! Tokens limited to organizations see exactly their own events. This module holds
//! the mixed load every isolation test reads back: the real fixtures, retargeted over
//! four owners (two spellings of `octo-org`), with the events that have no
//! repository (organization hooks) or neither repository nor organization
//! (installations, sponsorships). The tests: `isolation_reads` (every endpoint, for a
//! `read` token of `octo-org`), `isolation_writes` (replay, retry, test events,
//! export), `isolation_search` (random queries) and `isolation_live` (Socket.IO).

use std::collections::{BTreeMap, BTreeSet};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::bearer::call;
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

/// A token made by a local caller (an admin without a configured API token).
pub(crate) async fn token(app: &TestApp, name: &str, scope: &str, orgs: &[&str]) -> String {
    let body = json!({"name": name, "scope": scope, "organizations": orgs});
    let (status, answer) = app.post_json("/api/tokens", body).await;
    assert_eq!(status, StatusCode::CREATED, "{answer}");
    answer["data"]["token"].as_str().unwrap().to_owned()
}

pub(crate) fn is_octo_repository(name: &str) -> bool {
    name.split('/')
        .next()
        .is_some_and(|o| o.eq_ignore_ascii_case("octo-org"))
}

/// Waits until the search index holds every stored event.
pub(crate) async fn indexed(app: &TestApp, token: &str) {
    for _ in 0..500 {
        let (_, body) = call(app, Method::GET, "/api/webhooks/search", token, None).await;
        if body["data"]["indexLag"] == 0 && body["data"]["rebuilding"] == false {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    panic!("the search index did not catch up");
}

/// A GET with a bearer token.
pub(crate) async fn get(app: &TestApp, path: &str, token: &str) -> (StatusCode, Value) {
    call(app, Method::GET, path, token, None).await
}

/// The `key` of every object of the list `list`.
pub(crate) fn ids(list: &Value, key: &str) -> BTreeSet<String> {
    list.as_array()
        .expect("a list")
        .iter()
        .map(|item| item[key].as_str().expect("a string").to_owned())
        .collect()
}
