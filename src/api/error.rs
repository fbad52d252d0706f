//! The one error type of the HTTP edge: status, stable code and a human message in
//! the error envelope `{"success":false,"error":{"code":…,"message":…}}`. Internal
//! details go to the log, never to the client.

use axum::Json;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use std::time::Duration;

use crate::domain::ErrorCode;
use crate::ingest::IngestError;
use crate::store::StoreError;

#[derive(Debug)]
pub struct ApiError {
    /// The code's status ([`ErrorCode::status`]), but for axum's path rejections.
    pub status: StatusCode,
    pub code: ErrorCode,
    pub message: String,
    /// Sent as `Retry-After` (whole seconds, at least 1) with 429 and 503 answers.
    pub retry_after: Option<Duration>,
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            status: code.status(),
            code,
            message: message.into(),
            retry_after: None,
        }
    }

    pub fn retry_after(mut self, wait: Duration) -> Self {
        self.retry_after = Some(wait);
        self
    }

    pub fn bad_parameter(name: &str, problem: impl std::fmt::Display) -> Self {
        Self::new(
            ErrorCode::InvalidParameter,
            format!("query parameter {name}: {problem}"),
        )
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::NotFound, message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({
            "success": false,
            "error": {"code": self.code.as_str(), "message": self.message},
        });
        let mut response = (self.status, Json(body)).into_response();
        if let Some(wait) = self.retry_after {
            let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds.max(1)));
        }
        response
    }
}

/// A path segment that is not valid percent-encoded UTF-8 (`/api/webhooks/events/%FF`):
/// a 400 in the error envelope, not axum's plain-text rejection.
impl From<PathRejection> for ApiError {
    fn from(rejection: PathRejection) -> Self {
        let mut error = Self::new(ErrorCode::InvalidPath, rejection.body_text());
        // A 400, or a 500 when the route itself is wrong: axum knows which.
        error.status = rejection.status();
        error
    }
}

/// A request body that could not be read, or is over axum's 2 MB default limit.
impl From<BytesRejection> for ApiError {
    fn from(rejection: BytesRejection) -> Self {
        let code = match rejection.status() {
            StatusCode::PAYLOAD_TOO_LARGE => ErrorCode::PayloadTooLarge,
            _ => ErrorCode::BodyUnreadable,
        };
        Self::new(code, rejection.body_text())
    }
}

impl From<IngestError> for ApiError {
    fn from(error: IngestError) -> Self {
        Self::new(error.code(), error.to_string())
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        tracing::error!(%error, "store error");
        match error {
            StoreError::Closed => Self::new(
                ErrorCode::ShuttingDown,
                "hookvault is shutting down; retry shortly",
            )
            .retry_after(Duration::from_secs(5)),
            StoreError::Cluster(reason) => Self::new(
                ErrorCode::StorageUnavailable,
                format!("{reason}; nothing was acknowledged, retry shortly"),
            )
            .retry_after(Duration::from_secs(1)),
            StoreError::Unavailable(_) => Self::new(
                ErrorCode::StorageUnavailable,
                "the store cannot write right now (disk full or I/O error); nothing was stored, retry shortly",
            )
            .retry_after(Duration::from_secs(5)),
            _ => Self::new(
                ErrorCode::StorageError,
                "the store could not complete the request; see the server log",
            ),
        }
    }
}
