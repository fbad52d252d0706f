//! A fake GitHub REST API on loopback for the backfill tests: the webhook-delivery
//! endpoints as GitHub documents them, serving a delivery log it keeps, and sending
//! deliveries (and, when asked, redeliveries) to hookvault signed with the webhook
//! secret, the original bytes each time.
//!
//! Routes and answers follow GitHub's REST documentation:
//! - https://docs.github.com/en/rest/repos/webhooks#list-deliveries-for-a-repository-webhook
//!   and #redeliver-a-delivery-for-a-repository-webhook
//! - https://docs.github.com/en/rest/orgs/webhooks#list-deliveries-for-an-organization-webhook
//!   and #redeliver-a-delivery-for-an-organization-webhook
//! - https://docs.github.com/en/rest/apps/webhooks#list-deliveries-for-an-app-webhook
//!   and #redeliver-a-delivery-for-an-app-webhook (JWT: https://docs.github.com/en/apps/creating-github-apps/authenticating-with-a-github-app/generating-a-json-web-token-jwt-for-a-github-app)
//! - lists: `per_page` (max 100) and `cursor`, the next page in the `Link` header
//!   (https://docs.github.com/en/rest/using-the-rest-api/using-pagination-in-the-rest-api);
//!   each item a `hook-delivery-item`: id, guid, delivered_at, redelivery, duration,
//!   status, status_code, event, action, installation_id, repository_id, throttled_at.
//! - a redelivery request answers 202 Accepted; 422 "Validation failed, or the
//!   endpoint has been spammed."
//! - rate limits: `x-ratelimit-limit/-remaining/-used/-reset/-resource` on every
//!   answer; an exhausted primary limit is 403 with remaining 0; a secondary limit
//!   is 403 with `retry-after`
//!   (https://docs.github.com/en/rest/using-the-rest-api/rate-limits-for-the-rest-api).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{Value, json};
use tokio::sync::Notify;

use crate::helpers::{client, sign};

pub const TOKEN: &str = "ghp_backfillTestToken0123456789";
pub const APP_ID: &str = "424242";

/// A hook the fake delivers through: its delivery log's path and the headers
/// GitHub sends that name it.
#[derive(Clone, Debug)]
pub struct Hook {
    pub log: String,
    pub id: u64,
    pub target_type: &'static str,
    pub target_id: u64,
}

impl Hook {
    pub fn repo(full_name: &str, id: u64) -> Self {
        Self {
            log: format!("/repos/{full_name}/hooks/{id}/deliveries"),
            id,
            target_type: "repository",
            target_id: 1_296_269,
        }
    }

    pub fn org(org: &str, id: u64) -> Self {
        Self {
            log: format!("/orgs/{org}/hooks/{id}/deliveries"),
            id,
            target_type: "organization",
            target_id: 6_811_672,
        }
    }

    pub fn app(id: u64) -> Self {
        Self {
            log: "/app/hook/deliveries".into(),
            id,
            target_type: "integration",
            target_id: APP_ID.parse().unwrap(),
        }
    }
}

/// One attempt in the log.
#[derive(Clone, Debug)]
struct Attempt {
    hook: Hook,
    id: u64,
    guid: String,
    delivered_at: SystemTime,
    redelivery: bool,
    status_code: u16,
    event: String,
    action: Option<String>,
    body: Vec<u8>,
}

/// A scripted misbehaviour, used once, by the next request of its kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// 403 with `x-ratelimit-remaining: 0` and a reset a second away.
    PrimaryLimit,
    /// 403 with `retry-after: 1`.
    SecondaryLimit,
    /// 422, "spammed".
    Spammed,
}

#[derive(Default)]
struct Inner {
    /// hookvault's ingest URL.
    target: String,
    next_id: u64,
    log: Vec<Attempt>,
    list_faults: VecDeque<Fault>,
    redeliver_faults: VecDeque<Fault>,
    /// Delivery ids GitHub was asked to redeliver (accepted requests).
    redelivered: Vec<String>,
    /// Every answered fault.
    faults_answered: Vec<Fault>,
    /// `per_page` of every list request.
    per_pages: Vec<Option<String>>,
    /// List requests wait while held.
    held: Option<Arc<Notify>>,
    waiting_lists: usize,
}

#[derive(Clone)]
pub struct FakeGitHub {
    pub url: String,
    inner: Arc<Mutex<Inner>>,
}

impl FakeGitHub {
    pub async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let fake = Self {
            url,
            inner: Arc::default(),
        };
        let routes = Router::new()
            .route(
                "/repos/{owner}/{repo}/hooks/{hook_id}/deliveries",
                get(list),
            )
            .route(
                "/repos/{owner}/{repo}/hooks/{hook_id}/deliveries/{delivery_id}/attempts",
                post(redeliver),
            )
            .route("/orgs/{org}/hooks/{hook_id}/deliveries", get(list))
            .route(
                "/orgs/{org}/hooks/{hook_id}/deliveries/{delivery_id}/attempts",
                post(redeliver),
            )
            .route("/app/hook/deliveries", get(list))
            .route(
                "/app/hook/deliveries/{delivery_id}/attempts",
                post(redeliver),
            )
            .with_state(fake.clone());
        tokio::spawn(async move { axum::serve(listener, routes).await.unwrap() });
        fake
    }

    pub fn set_target(&self, ingest_url: &str) {
        self.inner.lock().unwrap().target = ingest_url.to_owned();
    }

    pub fn fail_lists(&self, faults: &[Fault]) {
        self.inner.lock().unwrap().list_faults.extend(faults);
    }

    pub fn fail_redeliveries(&self, faults: &[Fault]) {
        self.inner.lock().unwrap().redeliver_faults.extend(faults);
    }

    /// Holds list requests until [`FakeGitHub::release_lists`].
    pub fn hold_lists(&self) {
        self.inner.lock().unwrap().held = Some(Arc::new(Notify::new()));
    }

    pub fn release_lists(&self) {
        if let Some(gate) = self.inner.lock().unwrap().held.take() {
            gate.notify_waiters();
        }
    }

    pub fn waiting_lists(&self) -> usize {
        self.inner.lock().unwrap().waiting_lists
    }

    pub fn redelivered(&self) -> Vec<String> {
        self.inner.lock().unwrap().redelivered.clone()
    }

    pub fn faults_answered(&self) -> Vec<Fault> {
        self.inner.lock().unwrap().faults_answered.clone()
    }

    pub fn per_pages(&self) -> Vec<Option<String>> {
        self.inner.lock().unwrap().per_pages.clone()
    }

    /// GitHub delivers `body` through `hook` under `guid` (a new delivery); the
    /// attempt is logged with hookvault's answer, or as failed to connect.
    pub async fn deliver(&self, hook: &Hook, event: &str, guid: &str, body: &[u8]) -> u16 {
        let action = serde_json::from_slice::<Value>(body)
            .ok()
            .and_then(|v| v["action"].as_str().map(str::to_owned));
        let attempt = self.log_attempt(Attempt {
            hook: hook.clone(),
            id: 0,
            guid: guid.to_owned(),
            delivered_at: SystemTime::now(),
            redelivery: false,
            status_code: 0,
            event: event.to_owned(),
            action,
            body: body.to_vec(),
        });
        self.send(attempt).await
    }

    fn log_attempt(&self, mut attempt: Attempt) -> u64 {
        let mut inner = self.inner.lock().unwrap();
        inner.next_id += 1;
        attempt.id = 12_000_000_000 + inner.next_id;
        let id = attempt.id;
        inner.log.push(attempt);
        id
    }

    /// POSTs an attempt to hookvault as GitHub does and logs the status it got.
    async fn send(&self, id: u64) -> u16 {
        let (target, attempt) = {
            let inner = self.inner.lock().unwrap();
            let attempt = inner.log.iter().find(|a| a.id == id).unwrap().clone();
            (inner.target.clone(), attempt)
        };
        let sent = client()
            .post(&target)
            .header("X-GitHub-Event", &attempt.event)
            .header("X-GitHub-Delivery", &attempt.guid)
            .header("X-GitHub-Hook-ID", attempt.hook.id.to_string())
            .header(
                "X-GitHub-Hook-Installation-Target-Type",
                attempt.hook.target_type,
            )
            .header(
                "X-GitHub-Hook-Installation-Target-ID",
                attempt.hook.target_id.to_string(),
            )
            .header("User-Agent", "GitHub-Hookshot/fake")
            .header("Content-Type", "application/json")
            .header("X-Hub-Signature-256", sign(&attempt.body))
            .body(attempt.body.clone())
            .send()
            .await;
        // GitHub's log says 502 "failed to connect" when nothing answered.
        let status = sent.map_or(502, |r| r.status().as_u16());
        let mut inner = self.inner.lock().unwrap();
        if let Some(logged) = inner.log.iter_mut().find(|a| a.id == id) {
            logged.status_code = status;
        }
        status
    }
}

fn epoch(at: SystemTime) -> u64 {
    at.duration_since(UNIX_EPOCH).unwrap().as_secs()
}

fn rfc3339(at: SystemTime) -> String {
    hookvault::domain::timestamp::to_rfc3339(
        at.duration_since(UNIX_EPOCH).unwrap().as_millis() as i64
    )
}

/// The rate-limit headers GitHub sends with every answer.
fn rate_headers(remaining: u64, reset_in: u64) -> [(&'static str, String); 5] {
    [
        ("x-ratelimit-limit", "5000".into()),
        ("x-ratelimit-remaining", remaining.to_string()),
        ("x-ratelimit-used", (5000 - remaining).to_string()),
        (
            "x-ratelimit-reset",
            (epoch(SystemTime::now()) + reset_in).to_string(),
        ),
        ("x-ratelimit-resource", "core".into()),
    ]
}

fn with_headers(status: StatusCode, headers: &[(&'static str, String)], body: Value) -> Response {
    let mut response = (status, Json(body)).into_response();
    for (name, value) in headers {
        response.headers_mut().insert(*name, value.parse().unwrap());
    }
    response
}

fn fault_answer(fault: Fault) -> Response {
    match fault {
        Fault::PrimaryLimit => with_headers(
            StatusCode::FORBIDDEN,
            &rate_headers(0, 1),
            json!({"message": "API rate limit exceeded for user ID 1.",
                   "documentation_url": "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api"}),
        ),
        Fault::SecondaryLimit => {
            let mut headers = rate_headers(4000, 3600).to_vec();
            headers.push(("retry-after", "1".into()));
            with_headers(
                StatusCode::FORBIDDEN,
                &headers,
                json!({"message": "You have exceeded a secondary rate limit. Please wait a few minutes before you try again.",
                       "documentation_url": "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api#about-secondary-rate-limits"}),
            )
        }
        Fault::Spammed => with_headers(
            StatusCode::UNPROCESSABLE_ENTITY,
            &rate_headers(4000, 3600),
            json!({"message": "Validation Failed",
                   "errors": [{"resource": "Hook", "code": "custom", "message": "the endpoint has been spammed"}],
                   "documentation_url": "https://docs.github.com/rest/repos/webhooks#redeliver-a-delivery-for-a-repository-webhook"}),
        ),
    }
}

/// Token for repository and organization hooks, a JWT signed by the app's key for
/// the app's hook; `None` when it passes.
fn refuse_credentials(path: &str, headers: &HeaderMap) -> Option<Response> {
    let bearer = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    let ok = if path.starts_with("/app/") {
        let public = include_bytes!("../keys/github-app-test.pub.pem");
        let key = jsonwebtoken::DecodingKey::from_rsa_pem(public).unwrap();
        let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
        validation.set_issuer(&[APP_ID]);
        jsonwebtoken::decode::<Value>(bearer, &key, &validation).is_ok()
    } else {
        bearer == TOKEN
    };
    (!ok).then(|| {
        with_headers(
            StatusCode::UNAUTHORIZED,
            &[],
            json!({"message": "Bad credentials", "documentation_url": "https://docs.github.com/rest"}),
        )
    })
}

async fn list(
    State(fake): State<FakeGitHub>,
    uri: Uri,
    headers: HeaderMap,
    Query(query): Query<std::collections::HashMap<String, String>>,
) -> Response {
    if let Some(refused) = refuse_credentials(uri.path(), &headers) {
        return refused;
    }
    let gate = {
        let mut inner = fake.inner.lock().unwrap();
        inner.per_pages.push(query.get("per_page").cloned());
        inner.held.clone()
    };
    if let Some(gate) = gate {
        // Counted as waiting only once it is sure to hear the release.
        let notified = gate.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        fake.inner.lock().unwrap().waiting_lists += 1;
        notified.await;
        fake.inner.lock().unwrap().waiting_lists -= 1;
    }
    let mut inner = fake.inner.lock().unwrap();
    if let Some(fault) = inner.list_faults.pop_front() {
        inner.faults_answered.push(fault);
        return fault_answer(fault);
    }
    let per_page: usize = query
        .get("per_page")
        .and_then(|p| p.parse().ok())
        .unwrap_or(30)
        .clamp(1, 100);
    // The cursor `v1_N`: the page starts at attempt id N (newest first).
    let start: u64 = query
        .get("cursor")
        .and_then(|c| c.strip_prefix("v1_"))
        .and_then(|n| n.parse().ok())
        .unwrap_or(u64::MAX);
    let mut attempts: Vec<&Attempt> = inner
        .log
        .iter()
        .filter(|a| a.hook.log == uri.path() && a.id <= start)
        .collect();
    attempts.sort_by_key(|a| std::cmp::Reverse(a.id));
    let page: Vec<Value> = attempts
        .iter()
        .take(per_page)
        .map(|a| {
            json!({
                "id": a.id,
                "guid": a.guid,
                "delivered_at": rfc3339(a.delivered_at),
                "redelivery": a.redelivery,
                "duration": 0.27,
                "status": if a.status_code == 502 { "failed to connect".to_owned() } else if a.status_code < 300 { "OK".to_owned() } else { format!("Invalid HTTP Response: {}", a.status_code) },
                "status_code": a.status_code,
                "event": a.event,
                "action": a.action,
                "installation_id": null,
                "repository_id": if a.hook.target_type == "repository" { json!(a.hook.target_id) } else { Value::Null },
                "throttled_at": null,
            })
        })
        .collect();
    let mut response_headers = rate_headers(4999 - inner.per_pages.len() as u64, 3600).to_vec();
    if let Some(next) = attempts.get(per_page) {
        let base = format!("{}{}?per_page={per_page}", fake.url, uri.path());
        response_headers.push((
            "link",
            format!("<{base}&cursor=v1_{}>; rel=\"next\"", next.id),
        ));
    }
    with_headers(StatusCode::OK, &response_headers, Value::Array(page))
}

async fn redeliver(State(fake): State<FakeGitHub>, uri: Uri, headers: HeaderMap) -> Response {
    if let Some(refused) = refuse_credentials(uri.path(), &headers) {
        return refused;
    }
    // …/deliveries/{delivery_id}/attempts
    let path = uri.path().trim_end_matches("/attempts");
    let (log_path, id) = path.rsplit_once('/').unwrap();
    let id: u64 = id.parse().unwrap_or(0);
    let original = {
        let mut inner = fake.inner.lock().unwrap();
        if let Some(fault) = inner.redeliver_faults.pop_front() {
            inner.faults_answered.push(fault);
            return fault_answer(fault);
        }
        match inner
            .log
            .iter()
            .find(|a| a.id == id && a.hook.log == log_path)
        {
            Some(attempt) => {
                let attempt = attempt.clone();
                inner.redelivered.push(attempt.guid.clone());
                attempt
            }
            None => {
                return with_headers(StatusCode::NOT_FOUND, &[], json!({"message": "Not Found"}));
            }
        }
    };
    // GitHub answers at once and delivers soon after: a new attempt, same guid.
    let attempt = fake.log_attempt(Attempt {
        delivered_at: SystemTime::now(),
        redelivery: true,
        status_code: 0,
        ..original
    });
    let sender = fake.clone();
    tokio::spawn(async move { sender.send(attempt).await });
    with_headers(StatusCode::ACCEPTED, &rate_headers(4000, 3600), json!({}))
}
