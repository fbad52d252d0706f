//! From an HTTP request to an authentic [`Delivery`]: the five validation steps of
//! the ingest contract, in order (headers, size, signature, content type, payload).
//! Nothing here touches the store.

mod body;
mod error;
mod payload;
mod signature;

pub use body::read_body;
pub use error::IngestError;
pub use payload::Payload;
pub use signature::Signature;

use std::borrow::Cow;

use bytes::Bytes;
use http::HeaderMap;
use serde_json::Value;

use crate::config::Secret;
use crate::domain::{
    ContentKey, Delivery, DeliveryId, EventFields, EventType, PayloadEncoding, timestamp,
};

/// Headers whose values are credentials and are never stored.
const NEVER_STORED: &[&str] = &["authorization", "cookie", "proxy-authorization"];

/// Step 1: the GitHub headers, parsed before the body is read.
#[derive(Debug)]
pub struct DeliveryHeaders {
    pub id: DeliveryId,
    pub event: EventType,
    pub hook_id: Option<u64>,
}

impl DeliveryHeaders {
    pub fn parse(headers: &HeaderMap, check_user_agent: bool) -> Result<Self, IngestError> {
        let required = |name: &'static str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .filter(|v| !v.is_empty())
                .ok_or(IngestError::MissingHeader(name))
        };
        let event = EventType::parse(required("X-GitHub-Event")?).map_err(|problem| {
            IngestError::InvalidHeader {
                header: "X-GitHub-Event",
                problem,
            }
        })?;
        let id = DeliveryId::parse(required("X-GitHub-Delivery")?).map_err(|problem| {
            IngestError::InvalidHeader {
                header: "X-GitHub-Delivery",
                problem,
            }
        })?;
        if check_user_agent {
            let user_agent = headers.get(http::header::USER_AGENT);
            let from_github = user_agent
                .and_then(|v| v.to_str().ok())
                .is_some_and(|ua| ua.starts_with("GitHub-Hookshot/"));
            if !from_github {
                return Err(IngestError::NotGitHub);
            }
        }
        let hook_id = headers
            .get("X-GitHub-Hook-ID")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok());
        Ok(Self { id, event, hook_id })
    }
}

/// Steps 3 to 5 on a fully read body: signature, content type, JSON object. CPU
/// bound (HMAC and JSON parsing of up to 25 MiB), so large bodies are run off the
/// async executor by the caller.
pub fn verify(
    parsed: DeliveryHeaders,
    headers: &HeaderMap,
    body: Bytes,
    secrets: &[Secret],
) -> Result<Delivery, IngestError> {
    verify_parsed(parsed, headers, body, secrets).map(|(delivery, _)| delivery)
}

/// [`verify`], also giving back the payload, so processing need not parse the body
/// again.
pub fn verify_parsed(
    parsed: DeliveryHeaders,
    headers: &HeaderMap,
    body: Bytes,
    secrets: &[Secret],
) -> Result<(Delivery, Payload), IngestError> {
    let signature = headers
        .get("X-Hub-Signature-256")
        .ok_or(IngestError::SignatureMissing)?
        .to_str()
        .ok()
        .and_then(Signature::parse)
        .ok_or(IngestError::SignatureMalformed)?;
    if !signature.matches_any(secrets, &body) {
        return Err(IngestError::SignatureMismatch);
    }

    let encoding = content_encoding(headers)?;
    let payload = Payload::parse(encoding, body.clone())?;
    let fields = EventFields::extract(payload.read_parts());
    let content_key = ContentKey::derive(
        &parsed.event,
        payload.read_parts(),
        &payload_text(encoding, &body)?,
    );
    let delivery = Delivery {
        id: parsed.id,
        event: parsed.event,
        hook_id: parsed.hook_id,
        headers: kept_headers(headers),
        encoding,
        body,
        fields,
        content_key,
        received_at_ms: timestamp::now_ms(),
        test: false,
    };
    Ok((delivery, payload))
}

fn content_encoding(headers: &HeaderMap) -> Result<PayloadEncoding, IngestError> {
    let raw = headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let essence = raw.split(';').next().unwrap_or("").trim();
    if essence.eq_ignore_ascii_case("application/json") {
        Ok(PayloadEncoding::Json)
    } else if essence.eq_ignore_ascii_case("application/x-www-form-urlencoded") {
        Ok(PayloadEncoding::Form)
    } else {
        Err(IngestError::UnsupportedContentType(raw.to_owned()))
    }
}

/// The JSON payload of a stored or incoming body. Stored bodies passed this once, so
/// for them an error means corruption.
pub fn decode_payload(encoding: PayloadEncoding, body: &[u8]) -> Result<Value, IngestError> {
    let value: Value = serde_json::from_slice(&payload_text(encoding, body)?)
        .map_err(|e| IngestError::InvalidJson(e.to_string()))?;
    if value.is_object() {
        Ok(value)
    } else {
        Err(IngestError::NotAnObject)
    }
}

/// The JSON text of a body: itself, or a form's `payload` field.
pub fn payload_text(encoding: PayloadEncoding, body: &[u8]) -> Result<Cow<'_, [u8]>, IngestError> {
    match encoding {
        PayloadEncoding::Json => Ok(Cow::Borrowed(body)),
        PayloadEncoding::Form => form_urlencoded::parse(body)
            .find(|(key, _)| key == "payload")
            .map(|(_, value)| Cow::Owned(value.into_owned().into_bytes()))
            .ok_or(IngestError::FormWithoutPayload),
    }
}

fn kept_headers(headers: &HeaderMap) -> Vec<(String, String)> {
    headers
        .iter()
        .filter(|(name, _)| !NEVER_STORED.contains(&name.as_str()))
        .map(|(name, value)| {
            (
                name.as_str().to_owned(),
                String::from_utf8_lossy(value.as_bytes()).into_owned(),
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_bodies_carry_the_payload_field() {
        let body = b"payload=%7B%22zen%22%3A%22Keep+it+simple%22%7D";
        let value = decode_payload(PayloadEncoding::Form, body).unwrap();
        assert_eq!(value["zen"], "Keep it simple");
        assert!(matches!(
            decode_payload(PayloadEncoding::Form, b"other=1"),
            Err(IngestError::FormWithoutPayload)
        ));
    }

    #[test]
    fn payload_must_be_a_json_object() {
        assert!(matches!(
            decode_payload(PayloadEncoding::Json, b"[1,2]"),
            Err(IngestError::NotAnObject)
        ));
        assert!(matches!(
            decode_payload(PayloadEncoding::Json, b"{\"a\":"),
            Err(IngestError::InvalidJson(_))
        ));
    }

    #[test]
    fn content_type_parameters_are_ignored() {
        let mut headers = HeaderMap::new();
        headers.insert(
            "content-type",
            "application/json; charset=utf-8".parse().unwrap(),
        );
        assert_eq!(content_encoding(&headers).unwrap(), PayloadEncoding::Json);
        headers.insert("content-type", "text/plain".parse().unwrap());
        assert!(content_encoding(&headers).is_err());
    }

    #[test]
    fn credentials_are_never_kept() {
        let mut headers = HeaderMap::new();
        headers.insert("authorization", "Bearer hunter2".parse().unwrap());
        headers.insert("x-github-event", "ping".parse().unwrap());
        let kept = kept_headers(&headers);
        assert_eq!(kept, vec![("x-github-event".into(), "ping".into())]);
    }
}
