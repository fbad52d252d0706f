//! Reading a request body as JSON: the one way every handler with a body takes it,
//! so each answers a wrong content type (415) and a bad body (400) alike.

use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, header};
use bytes::Bytes;
use serde_json::Value;

use super::ApiError;
use crate::domain::ErrorCode;

/// The body as JSON of type `T`, or a 415/400 that says what is wrong.
pub(super) fn json_body<T: serde::de::DeserializeOwned>(
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
    expected: &str,
) -> Result<T, ApiError> {
    // Only a JSON content type: a form or text body is what a page on another site
    // can send without a preflight.
    if !is_json(headers) {
        return Err(ApiError::new(
            ErrorCode::UnsupportedMediaType,
            "send the body as Content-Type: application/json",
        ));
    }
    serde_json::from_slice(&body?)
        .map_err(|e| ApiError::new(ErrorCode::InvalidBody, format!("expected {expected}: {e}")))
}

/// [`json_body`] that must be a JSON object: serde would also read a struct from an
/// array of its fields in order.
pub(super) fn object_body<T: serde::de::DeserializeOwned>(
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
    expected: &str,
) -> Result<T, ApiError> {
    let value: Value = json_body(headers, body, expected)?;
    if !value.is_object() {
        return Err(ApiError::new(
            ErrorCode::InvalidBody,
            format!("expected {expected}"),
        ));
    }
    serde_json::from_value(value)
        .map_err(|e| ApiError::new(ErrorCode::InvalidBody, format!("expected {expected}: {e}")))
}

/// `application/json` or `application/<something>+json`, with any parameters.
fn is_json(headers: &HeaderMap) -> bool {
    let Some(value) = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let essence = value.split(';').next().unwrap_or("").trim();
    essence.eq_ignore_ascii_case("application/json")
        || essence.split_once('/').is_some_and(|(kind, sub)| {
            kind.eq_ignore_ascii_case("application") && sub.to_ascii_lowercase().ends_with("+json")
        })
}
