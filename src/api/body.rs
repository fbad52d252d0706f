//! Reading a request body as JSON: the one way every handler with a body takes it
//! ([`JsonObject`]), so each answers a wrong content type (415) and a bad body (400)
//! alike, saying what it expected.

use axum::extract::{FromRequest, Request};
use axum::http::{HeaderMap, header};
use bytes::Bytes;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::ApiError;
use crate::domain::ErrorCode;

/// What a body type tells a client whose body does not read as it.
pub(super) trait Expected {
    /// The shape of a good body, e.g. `{since?, dryRun?}`.
    const EXPECTED: &'static str;
}

/// A request body that is a JSON object reading as `T`. Only a JSON content type is
/// taken: a form or text body is what a page on another site can send without a
/// preflight. And only an object: serde would also read a struct from an array of
/// its fields in order.
pub(super) struct JsonObject<T>(pub T);

impl<S, T> FromRequest<S> for JsonObject<T>
where
    S: Send + Sync,
    T: DeserializeOwned + Expected,
{
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        if !is_json(request.headers()) {
            return Err(ApiError::new(
                ErrorCode::UnsupportedMediaType,
                "send the body as Content-Type: application/json",
            ));
        }
        let bytes = Bytes::from_request(request, state).await?;
        let bad = |detail: String| {
            ApiError::new(
                ErrorCode::InvalidBody,
                format!("expected {}{detail}", T::EXPECTED),
            )
        };
        let value: Value = serde_json::from_slice(&bytes).map_err(|e| bad(format!(": {e}")))?;
        if !value.is_object() {
            return Err(bad(String::new()));
        }
        serde_json::from_value(value)
            .map(Self)
            .map_err(|e| bad(format!(": {e}")))
    }
}

/// Any JSON object, for a handler that looks at it before reading it as its type.
impl Expected for serde_json::Map<String, Value> {
    const EXPECTED: &'static str = "a JSON object";
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
