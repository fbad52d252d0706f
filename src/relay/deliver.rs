//! The local URL: one POST of a stored delivery, with the headers a forwarding
//! target gets ([`crate::forward::outgoing::headers`]), and what came of it.

use std::time::Duration;

use http::HeaderValue;
use reqwest::{StatusCode, Url};

use super::source::Stored;
use crate::config::Secret;
use crate::forward::outgoing;

/// Bytes of a refusing answer kept for the log line.
const ANSWER_EXCERPT: usize = 200;

/// What the local URL made of one attempt.
#[derive(Debug)]
pub enum Outcome {
    Accepted(StatusCode),
    /// Any other status, with the first bytes of the answer.
    Refused(StatusCode, String),
    /// Refused connection, timeout, reset.
    Unreachable(String),
}

pub struct Target {
    client: reqwest::Client,
    url: Url,
    secret: Option<Secret>,
}

impl Target {
    /// Redirects are not followed: a POST turned into a GET elsewhere is no
    /// delivery. A redirect counts as a refusal and shows in the log.
    pub fn new(
        url: Url,
        secret: Option<Secret>,
        timeout: Duration,
    ) -> Result<Self, reqwest::Error> {
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        Ok(Self {
            client,
            url,
            secret,
        })
    }

    pub async fn post(&self, stored: &Stored, seq: u64, attempt: u32) -> Outcome {
        let secret = self.secret.as_ref().map(|s| s.expose().as_bytes());
        let mut headers = outgoing::headers(&stored.headers, &stored.body, secret, seq, attempt);
        if !headers.contains_key(http::header::CONTENT_TYPE)
            && let Some(content_type) = stored
                .content_type
                .as_deref()
                .and_then(|v| HeaderValue::from_str(v).ok())
        {
            headers.insert(http::header::CONTENT_TYPE, content_type);
        }
        let sent = self
            .client
            .post(self.url.clone())
            .headers(headers)
            .body(stored.body.clone())
            .send()
            .await;
        let response = match sent {
            Ok(response) => response,
            Err(error) => return Outcome::Unreachable(super::describe(error.without_url())),
        };
        let status = response.status();
        if status.is_success() {
            return Outcome::Accepted(status);
        }
        let answer = response.bytes().await.unwrap_or_default();
        let excerpt = String::from_utf8_lossy(&answer[..answer.len().min(ANSWER_EXCERPT)]);
        Outcome::Refused(status, excerpt.trim().to_owned())
    }
}
