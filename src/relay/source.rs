//! The hookvault the relay follows, through its REST API: a stored delivery's body
//! exactly as received (`…/{deliveryId}/raw`) and its request headers
//! (`…/{deliveryId}`), and the newest sequence id for a first start.

use std::time::Duration;

use bytes::Bytes;
use reqwest::{StatusCode, Url};
use serde_json::Value;

use crate::config::Secret;

/// A stored delivery as GitHub sent it.
#[derive(Debug, Clone)]
pub struct Stored {
    /// The request headers the store kept (names in lower case).
    pub headers: Vec<(String, String)>,
    pub body: Bytes,
    /// The raw endpoint's content type: what the body is, for stored deliveries
    /// whose headers lack one (synthesized test events).
    pub content_type: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// The event is no longer stored (retention or the size cap retired it).
    #[error("no longer stored on the server")]
    Gone,
    /// The server refused the token (or, without one, a client that is not local).
    #[error("{0}")]
    Refused(String),
    /// Anything that may pass: the server is down, restarting, rate limiting.
    #[error("{0}")]
    Failed(String),
}

pub struct Source {
    client: reqwest::Client,
    base: Url,
    token: Option<Secret>,
}

impl Source {
    pub fn new(
        base: Url,
        token: Option<Secret>,
        timeout: Duration,
    ) -> Result<Self, reqwest::Error> {
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .user_agent(concat!("hookvault-relay/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Self {
            client,
            base,
            token,
        })
    }

    /// The sequence id of the newest stored event (0 when none is): where a relay
    /// without a state file starts, so it passes on only what arrives from now on.
    pub async fn newest_seq(&self) -> Result<u64, SourceError> {
        let mut url = self.url(&["api", "webhooks", "events"]);
        url.set_query(Some("limit=1"));
        let answer = json(self.get(url).await?).await?;
        Ok(answer["data"][0]["id"].as_u64().unwrap_or(0))
    }

    /// The stored delivery `delivery_id`: its raw body and its request headers.
    pub async fn fetch(&self, delivery_id: &str) -> Result<Stored, SourceError> {
        let raw = self
            .get(self.url(&["api", "webhooks", "events", delivery_id, "raw"]))
            .await?;
        let content_type = raw
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let body = raw.bytes().await.map_err(failed)?;
        let detail = json(
            self.get(self.url(&["api", "webhooks", "events", delivery_id]))
                .await?,
        )
        .await?;
        let headers = detail["data"]["headers"]
            .as_object()
            .map(|headers| {
                headers
                    .iter()
                    .filter_map(|(name, value)| Some((name.clone(), value.as_str()?.to_owned())))
                    .collect()
            })
            .unwrap_or_default();
        Ok(Stored {
            headers,
            body,
            content_type,
        })
    }

    fn url(&self, segments: &[&str]) -> Url {
        let mut url = self.base.clone();
        url.path_segments_mut()
            .expect("an http(s) URL has a path")
            .pop_if_empty()
            .extend(segments);
        url
    }

    async fn get(&self, url: Url) -> Result<reqwest::Response, SourceError> {
        let mut request = self.client.get(url);
        if let Some(token) = &self.token {
            request = request.bearer_auth(token.expose());
        }
        let response = request.send().await.map_err(failed)?;
        match response.status() {
            status if status.is_success() => Ok(response),
            StatusCode::NOT_FOUND => Err(SourceError::Gone),
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
                let answer = json(response).await.unwrap_or(Value::Null);
                let message = answer["error"]["message"]
                    .as_str()
                    .unwrap_or("no reason given");
                Err(SourceError::Refused(format!(
                    "the server refused the relay: {message}"
                )))
            }
            status => Err(SourceError::Failed(format!("the server answered {status}"))),
        }
    }
}

async fn json(response: reqwest::Response) -> Result<Value, SourceError> {
    let bytes = response.bytes().await.map_err(failed)?;
    serde_json::from_slice(&bytes)
        .map_err(|e| SourceError::Failed(format!("the server answered with bad JSON: {e}")))
}

fn failed(error: reqwest::Error) -> SourceError {
    SourceError::Failed(super::describe(error.without_url()))
}
