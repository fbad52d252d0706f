//! One attempt at delivering to a target: the HTTP request and what came of it.

use std::time::{Duration, Instant};

use bytes::Bytes;
use reqwest::redirect;

use super::address::{self, Resolver};
use super::http1;
use super::outgoing;
use super::status::{ANSWER_BYTES, Attempt};
use super::target::TargetSpec;
use crate::domain::timestamp;

/// Redirects followed at most, when a target follows them.
const MAX_REDIRECTS: usize = 5;
/// Longest wait for a connection, within the attempt's timeout.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// A stored delivery, ready to send (the body shared by every attempt).
#[derive(Debug)]
pub struct Outbound {
    pub seq: u64,
    pub delivery_id: String,
    pub event: String,
    pub repository: Option<String>,
    pub received_at_ms: i64,
    pub headers: Vec<(String, String)>,
    pub body: Bytes,
}

/// The HTTP client of one target. Plain `http` without redirects, the common
/// case, goes through [`http1`]'s lean connections; `https` and targets that follow
/// redirects through reqwest. Both check addresses at every connection and hold
/// the target's timeout for the whole attempt, answer included.
pub enum Client {
    Lean(http1::Client),
    Reqwest {
        client: reqwest::Client,
        /// `spec.url`, parsed once.
        url: reqwest::Url,
    },
}

/// The client for `spec` (checked).
pub fn client(spec: &TargetSpec) -> Result<Client, String> {
    let url = reqwest::Url::parse(&spec.url).map_err(|e| format!("url: {e}"))?;
    let connect_timeout = CONNECT_TIMEOUT.min(spec.timeout());
    if !spec.follow_redirects {
        let keep = spec.concurrency as usize;
        if let Some(lean) =
            http1::Client::for_url(&url, spec.allow_link_local, connect_timeout, keep)
        {
            return lean.map(Client::Lean);
        }
    }
    crate::tls::install_provider();
    let allow = spec.allow_link_local;
    let redirects = if spec.follow_redirects {
        redirect::Policy::custom(move |attempt| {
            if attempt.previous().len() >= MAX_REDIRECTS {
                return attempt.error("too many redirects");
            }
            match address::check_url(attempt.url(), allow) {
                Ok(()) => attempt.follow(),
                Err(why) => attempt.error(why),
            }
        })
    } else {
        redirect::Policy::none()
    };
    let mut builder = reqwest::Client::builder()
        .redirect(redirects)
        .timeout(spec.timeout())
        .connect_timeout(connect_timeout)
        .pool_max_idle_per_host(spec.concurrency as usize)
        .no_proxy();
    if !allow {
        builder = builder.dns_resolver(Resolver::shared());
    }
    let client = builder
        .build()
        .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
    Ok(Client::Reqwest { client, url })
}

/// Sends `delivery` once to the target; the attempt as recorded (`error` is `None`
/// on a 2xx).
pub async fn attempt(
    client: &Client,
    spec: &TargetSpec,
    delivery: &Outbound,
    number: u32,
) -> Attempt {
    let headers = outgoing::headers(
        &delivery.headers,
        &delivery.body,
        spec.secret.as_deref().map(str::as_bytes),
        delivery.seq,
        number,
    );
    let at = timestamp::to_rfc3339(timestamp::now_ms());
    let started = Instant::now();
    let answered = match client {
        Client::Lean(client) => {
            let post = client.post(headers, delivery.body.clone());
            match tokio::time::timeout(spec.timeout(), post).await {
                Ok(Ok(answered)) => Ok((answered.status, answered.body)),
                Ok(Err(error)) => Err(error),
                Err(_) => Err("timed out".to_owned()),
            }
        }
        Client::Reqwest { client, url } => {
            let sent = client
                .post(url.clone())
                .headers(headers)
                .body(delivery.body.clone())
                .send()
                .await;
            match sent {
                Ok(mut response) => Ok((response.status(), first_bytes(&mut response).await)),
                Err(error) => Err(describe(&error)),
            }
        }
    };
    let (status, error, answer) = match answered {
        Ok((status, answer)) => {
            let error = (!status.is_success()).then(|| match status.is_redirection() {
                true => format!("answered {status}; redirects are not followed (followRedirects)"),
                false => format!("answered {status}"),
            });
            let answer = String::from_utf8_lossy(&answer).into_owned();
            (Some(status.as_u16()), error, answer)
        }
        Err(error) => (None, Some(error), String::new()),
    };
    Attempt {
        seq: delivery.seq,
        delivery_id: delivery.delivery_id.clone(),
        attempt: number,
        at,
        status,
        error,
        latency_ms: started.elapsed().as_secs_f64() * 1000.0,
        answer,
    }
}

/// The first bytes of the answer; the rest is read (up to a bound) so the
/// connection can be used again, or left.
async fn first_bytes(response: &mut reqwest::Response) -> Vec<u8> {
    let mut kept = Vec::new();
    let mut read = 0usize;
    while let Ok(Some(chunk)) = response.chunk().await {
        if kept.len() < ANSWER_BYTES {
            let take = (ANSWER_BYTES - kept.len()).min(chunk.len());
            kept.extend_from_slice(&chunk[..take]);
        }
        read += chunk.len();
        if read > 64 << 10 {
            break;
        }
    }
    kept
}

/// A transport error in a few words, with its cause (reqwest's own message says only
/// "error sending request").
fn describe(error: &reqwest::Error) -> String {
    let kind = if error.is_timeout() {
        "timed out"
    } else if error.is_connect() {
        "could not connect"
    } else if error.is_redirect() {
        "redirect refused"
    } else {
        "request failed"
    };
    with_causes(kind.to_owned(), error)
}

/// `message`, then each cause of `error`, `: `-separated.
pub(super) fn with_causes(mut message: String, error: &dyn std::error::Error) -> String {
    let mut source = error.source();
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    message
}
