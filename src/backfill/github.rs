//! GitHub's webhook-delivery API: a hook's delivery log, page by page, and the
//! request to redeliver one, authenticated with the token or the app's JWT, within
//! GitHub's rate limits (docs/backfill.md#rate-limits).
//!
//! REST docs: repos/webhooks#list-deliveries-for-a-repository-webhook,
//! orgs/webhooks#…, apps/webhooks#list-deliveries-for-an-app-webhook, and
//! using-the-rest-api/rate-limits-for-the-rest-api.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use reqwest::header::{HeaderMap, RETRY_AFTER};
use reqwest::{Method, StatusCode};
use serde::Deserialize;

use super::hooks::HookRef;
use crate::config::{BackfillConfig, Secret};

/// GitHub's largest page.
pub const PER_PAGE: usize = 100;
/// Waits on one request before it counts as failed.
const MAX_WAITS: u32 = 5;
/// GitHub says to wait at least a minute after a secondary limit that names no
/// time, and longer each time it comes back.
const SECONDARY_WAIT: Duration = Duration::from_secs(60);
/// The longest wait for a primary limit: its window is an hour.
const MAX_RESET_WAIT: Duration = Duration::from_secs(3600);
/// Network errors retried per request, after 1 s, then 2 s.
const TRANSPORT_RETRIES: u32 = 2;
/// The API version these requests are written against.
const API_VERSION: &str = "2022-11-28";

/// One attempt in a hook's delivery log (GitHub's `hook-delivery-item`; the fields
/// reconciling needs).
#[derive(Debug, Clone, Deserialize)]
pub struct Attempt {
    /// The attempt's id: what a redelivery is asked for.
    pub id: u64,
    /// The delivery id (`X-GitHub-Delivery`), shared by every attempt of a delivery.
    pub guid: String,
    pub delivered_at: String,
    #[serde(default)]
    pub redelivery: bool,
    #[serde(default)]
    pub status_code: u16,
    #[serde(default)]
    pub event: String,
}

/// One page of a delivery log, newest first, and the cursor of the next.
#[derive(Debug)]
pub struct Page {
    pub attempts: Vec<Attempt>,
    pub next_cursor: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum GitHubError {
    #[error("{0}")]
    NoCredentials(String),
    #[error("GitHub answered {status}: {message}")]
    Status { status: StatusCode, message: String },
    #[error("GitHub's rate limit held after {MAX_WAITS} waits")]
    StillLimited,
    #[error("cannot reach GitHub: {0}")]
    Transport(String),
    #[error("GitHub's answer is not a delivery list: {0}")]
    Unreadable(String),
    #[error("cannot sign the GitHub App's JWT: {0}")]
    Jwt(String),
}

impl GitHubError {
    /// GitHub refused this redelivery request itself (422: validation failed, the
    /// endpoint was spammed, or the delivery is being redelivered already).
    pub fn is_unprocessable(&self) -> bool {
        matches!(self, Self::Status { status, .. } if *status == StatusCode::UNPROCESSABLE_ENTITY)
    }
}

#[derive(serde::Serialize)]
struct Claims<'a> {
    iat: u64,
    exp: u64,
    iss: &'a str,
}

pub struct GitHub {
    http: reqwest::Client,
    api_url: String,
    token: Option<Secret>,
    app: Option<(String, jsonwebtoken::EncodingKey)>,
    /// A primary limit ran out on the last answer: no request before then.
    paused_until: Mutex<Option<Instant>>,
    /// Times a request waited on a rate limit (runs read the difference).
    pub waits: AtomicU64,
}

impl GitHub {
    pub fn new(config: &BackfillConfig) -> Result<Self, String> {
        crate::tls::install_provider();
        let http = reqwest::Client::builder()
            .user_agent(concat!("hookvault/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(60))
            .build()
            .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
        let app = match &config.app {
            Some(app) => Some((
                app.id.clone(),
                jsonwebtoken::EncodingKey::from_rsa_pem(app.key.expose().as_bytes())
                    .map_err(|e| format!("the GitHub App key: {e}"))?,
            )),
            None => None,
        };
        Ok(Self {
            http,
            api_url: config.api_url.clone(),
            token: config.token.clone(),
            app,
            paused_until: Mutex::new(None),
            waits: AtomicU64::new(0),
        })
    }

    /// Whether there is a credential for this hook.
    pub fn can_reach(&self, hook: &HookRef) -> bool {
        match hook.needs_app() {
            true => self.app.is_some(),
            false => self.token.is_some(),
        }
    }

    /// One page of the hook's delivery log, from `cursor` (the newest without one).
    pub async fn page(&self, hook: &HookRef, cursor: Option<&str>) -> Result<Page, GitHubError> {
        let mut query = vec![("per_page", PER_PAGE.to_string())];
        if let Some(cursor) = cursor {
            query.push(("cursor", cursor.to_owned()));
        }
        let response = self
            .send(hook, Method::GET, &hook.deliveries_path(), &query)
            .await?;
        let next_cursor = next_cursor(response.headers());
        let body = response
            .bytes()
            .await
            .map_err(|e| GitHubError::Transport(describe(&e)))?;
        let attempts: Vec<Attempt> =
            serde_json::from_slice(&body).map_err(|e| GitHubError::Unreadable(e.to_string()))?;
        Ok(Page {
            attempts,
            next_cursor,
        })
    }

    /// Asks GitHub to deliver attempt `id` again (it answers 202 and sends it soon,
    /// signed, with the same delivery id).
    pub async fn redeliver(&self, hook: &HookRef, id: u64) -> Result<(), GitHubError> {
        let path = format!("{}/{id}/attempts", hook.deliveries_path());
        self.send(hook, Method::POST, &path, &[]).await.map(drop)
    }

    async fn send(
        &self,
        hook: &HookRef,
        method: Method,
        path: &str,
        query: &[(&str, String)],
    ) -> Result<reqwest::Response, GitHubError> {
        let mut url = reqwest::Url::parse(&format!("{}{path}", self.api_url))
            .map_err(|e| GitHubError::Transport(format!("{path}: {e}")))?;
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        let (mut waits, mut transport_errors) = (0u32, 0u32);
        loop {
            self.wait_for_reset().await;
            let request = self
                .http
                .request(method.clone(), url.clone())
                .header("Accept", "application/vnd.github+json")
                .header("X-GitHub-Api-Version", API_VERSION)
                .bearer_auth(self.credential(hook)?);
            let response = match request.send().await {
                Ok(response) => response,
                Err(e) if transport_errors < TRANSPORT_RETRIES => {
                    transport_errors += 1;
                    tracing::debug!(error = %e, "GitHub API request failed; retrying");
                    tokio::time::sleep(Duration::from_secs(1 << (transport_errors - 1))).await;
                    continue;
                }
                Err(e) => return Err(GitHubError::Transport(describe(&e))),
            };
            let status = response.status();
            if status.is_success() {
                self.note_remaining(response.headers());
                return Ok(response);
            }
            let headers = response.headers().clone();
            let message = message(response).await;
            let Some(wait) = limit_wait(status, &headers, &message, waits) else {
                return Err(GitHubError::Status { status, message });
            };
            if waits == MAX_WAITS {
                return Err(GitHubError::StillLimited);
            }
            waits += 1;
            self.waits.fetch_add(1, Ordering::Relaxed);
            tracing::info!(%status, wait_ms = wait.as_millis() as u64, %message, "GitHub rate limit: waiting");
            tokio::time::sleep(wait).await;
        }
    }

    /// The token for repository and organization hooks; a fresh JWT for the app's.
    fn credential(&self, hook: &HookRef) -> Result<String, GitHubError> {
        if !hook.needs_app() {
            return self.token.as_ref().map(|t| t.expose().to_owned()).ok_or_else(|| {
                GitHubError::NoCredentials(format!(
                    "{hook}: set HOOKVAULT_GITHUB_TOKEN to reach repository and organization hooks"
                ))
            });
        }
        let (id, key) = self.app.as_ref().ok_or_else(|| {
            GitHubError::NoCredentials(
                "app: set HOOKVAULT_GITHUB_APP_ID and HOOKVAULT_GITHUB_APP_KEY to reach the app's hook"
                    .into(),
            )
        })?;
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        // Issued a minute back against clock drift; GitHub takes at most ten minutes.
        let claims = Claims {
            iat: now.saturating_sub(60),
            exp: now + 9 * 60,
            iss: id,
        };
        jsonwebtoken::encode(
            &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256),
            &claims,
            key,
        )
        .map_err(|e| GitHubError::Jwt(e.to_string()))
    }

    /// An exhausted primary limit pauses every request until its reset.
    fn note_remaining(&self, headers: &HeaderMap) {
        if header_u64(headers, "x-ratelimit-remaining") == Some(0)
            && let Some(wait) = until_reset(headers)
        {
            *self.paused_until.lock().unwrap_or_else(|e| e.into_inner()) =
                Some(Instant::now() + wait);
        }
    }

    async fn wait_for_reset(&self) {
        let until = self
            .paused_until
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(until) = until.filter(|u| *u > Instant::now()) {
            self.waits.fetch_add(1, Ordering::Relaxed);
            tracing::info!("GitHub rate limit used up: waiting for its reset");
            tokio::time::sleep_until(until.into()).await;
        }
    }
}

/// How long to wait before trying a refused request again, if it was a rate limit:
/// `retry-after` first (secondary limits), then an exhausted primary limit's reset,
/// then GitHub's advice for a secondary limit without a time (a minute, doubling).
fn limit_wait(
    status: StatusCode,
    headers: &HeaderMap,
    message: &str,
    waits: u32,
) -> Option<Duration> {
    if status != StatusCode::FORBIDDEN && status != StatusCode::TOO_MANY_REQUESTS {
        return None;
    }
    if let Some(seconds) = header_u64(headers, RETRY_AFTER.as_str()) {
        return Some(Duration::from_secs(seconds.max(1)));
    }
    if header_u64(headers, "x-ratelimit-remaining") == Some(0) {
        return until_reset(headers).or(Some(Duration::from_secs(1)));
    }
    let secondary = status == StatusCode::TOO_MANY_REQUESTS
        || message.to_ascii_lowercase().contains("rate limit");
    secondary.then(|| SECONDARY_WAIT * 2u32.pow(waits.min(4)))
}

/// Until `x-ratelimit-reset` (epoch seconds) and a second more, for clock skew.
fn until_reset(headers: &HeaderMap) -> Option<Duration> {
    let reset = header_u64(headers, "x-ratelimit-reset")?;
    let now = SystemTime::now().duration_since(UNIX_EPOCH).ok()?.as_secs();
    Some(Duration::from_secs(reset.saturating_sub(now) + 1).min(MAX_RESET_WAIT))
}

fn header_u64(headers: &HeaderMap, name: &str) -> Option<u64> {
    headers.get(name)?.to_str().ok()?.trim().parse().ok()
}

/// The `cursor` of the `rel="next"` link. Only the cursor is taken: the next request
/// goes to the configured API URL, never to a URL from an answer (the token with it).
pub fn next_cursor(headers: &HeaderMap) -> Option<String> {
    let link = headers.get("link")?.to_str().ok()?;
    link.split(',').find_map(|part| {
        let (target, params) = part.split_once(';')?;
        let is_next = params
            .split(';')
            .any(|p| matches!(p.trim(), "rel=\"next\"" | "rel=next"));
        if !is_next {
            return None;
        }
        let url = reqwest::Url::parse(target.trim().trim_start_matches('<').trim_end_matches('>'))
            .ok()?;
        url.query_pairs()
            .find(|(k, _)| k == "cursor")
            .map(|(_, v)| v.into_owned())
    })
}

/// GitHub's `message`, or the start of the body.
async fn message(response: reqwest::Response) -> String {
    let body = response.bytes().await.unwrap_or_default();
    match serde_json::from_slice::<serde_json::Value>(&body) {
        Ok(json) => json["message"].as_str().unwrap_or("no message").to_owned(),
        Err(_) => String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned(),
    }
}

/// A transport error with its cause (the URL names the hook, never a secret).
fn describe(error: &reqwest::Error) -> String {
    match std::error::Error::source(error) {
        Some(source) => format!("{error}: {source}"),
        None => error.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, value.parse().unwrap());
        }
        map
    }

    #[test]
    fn the_next_cursor_comes_from_the_link_header() {
        let link = headers(&[(
            "link",
            "<https://api.github.com/repos/o/r/hooks/1/deliveries?per_page=100&cursor=v1_12>; rel=\"prev\", \
             <https://api.github.com/repos/o/r/hooks/1/deliveries?per_page=100&cursor=v1_9%3D>; rel=\"next\"",
        )]);
        assert_eq!(next_cursor(&link).as_deref(), Some("v1_9="));
        let last = headers(&[("link", "<https://x/?cursor=a>; rel=\"prev\"")]);
        assert_eq!(next_cursor(&last), None);
        assert_eq!(next_cursor(&HeaderMap::new()), None);
    }

    #[test]
    fn rate_limit_answers_say_how_long_to_wait() {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let secondary = headers(&[("retry-after", "7")]);
        assert_eq!(
            limit_wait(StatusCode::FORBIDDEN, &secondary, "", 0),
            Some(Duration::from_secs(7))
        );
        let reset = (now + 30).to_string();
        let primary = headers(&[
            ("x-ratelimit-remaining", "0"),
            ("x-ratelimit-reset", &reset),
        ]);
        let wait = limit_wait(StatusCode::FORBIDDEN, &primary, "", 0).unwrap();
        assert!((29..=31).contains(&wait.as_secs()), "{wait:?}");
        let silent = HeaderMap::new();
        assert_eq!(
            limit_wait(StatusCode::TOO_MANY_REQUESTS, &silent, "", 1),
            Some(Duration::from_secs(120))
        );
        assert_eq!(
            limit_wait(
                StatusCode::FORBIDDEN,
                &silent,
                "You have exceeded a secondary rate limit",
                0
            ),
            Some(Duration::from_secs(60))
        );
        // A plain 403 (a token without the scope) is an error, not a wait.
        assert_eq!(
            limit_wait(StatusCode::FORBIDDEN, &silent, "Must have admin rights", 0),
            None
        );
        assert_eq!(
            limit_wait(StatusCode::UNPROCESSABLE_ENTITY, &secondary, "", 0),
            None
        );
    }
}
