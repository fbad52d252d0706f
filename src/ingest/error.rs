//! Why a delivery was refused. Each reason maps to one status and error code at the
//! HTTP edge; nothing is stored for any of them.

use crate::domain::DomainError;

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("missing required header {0}")]
    MissingHeader(&'static str),
    #[error("invalid header {header}: {problem}")]
    InvalidHeader {
        header: &'static str,
        problem: DomainError,
    },
    #[error(
        "User-Agent must start with GitHub-Hookshot/ (start hookvault with --no-ua-check if a proxy rewrites it)"
    )]
    NotGitHub,
    #[error("body is larger than the {limit} byte limit")]
    TooLarge { limit: usize },
    #[error("body was not received within {0} seconds")]
    BodyTimeout(u64),
    #[error("body could not be read: {0}")]
    BodyRead(String),
    #[error("X-Hub-Signature-256 header is missing")]
    SignatureMissing,
    #[error("X-Hub-Signature-256 must be sha256= followed by 64 hex digits")]
    SignatureMalformed,
    #[error("signature does not match any configured secret")]
    SignatureMismatch,
    #[error(
        "Content-Type must be application/json or application/x-www-form-urlencoded, got {0:?}"
    )]
    UnsupportedContentType(String),
    #[error("form body has no payload field")]
    FormWithoutPayload,
    #[error("form body is not UTF-8 text")]
    FormNotText,
    #[error("payload is not valid JSON: {0}")]
    InvalidJson(String),
    #[error("payload must be a JSON object")]
    NotAnObject,
}

impl IngestError {
    /// HTTP status and stable snake_case code for the error envelope.
    pub fn status_and_code(&self) -> (u16, &'static str) {
        match self {
            Self::MissingHeader(_) => (400, "missing_header"),
            Self::InvalidHeader { .. } => (400, "invalid_header"),
            Self::NotGitHub => (400, "invalid_user_agent"),
            Self::TooLarge { .. } => (413, "payload_too_large"),
            Self::BodyTimeout(_) => (408, "body_timeout"),
            Self::BodyRead(_) => (400, "body_unreadable"),
            Self::SignatureMissing => (401, "signature_missing"),
            Self::SignatureMalformed => (401, "signature_malformed"),
            Self::SignatureMismatch => (401, "signature_mismatch"),
            Self::UnsupportedContentType(_) => (415, "unsupported_content_type"),
            Self::FormWithoutPayload => (400, "form_without_payload"),
            Self::FormNotText => (400, "invalid_form"),
            Self::InvalidJson(_) => (400, "invalid_json"),
            Self::NotAnObject => (400, "payload_not_object"),
        }
    }
}
