//! Why a delivery was refused. Each reason maps to one status and error code at the
//! HTTP edge; nothing is stored for any of them.

use crate::domain::{DomainError, ErrorCode};

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
    /// The error code (and so the status) the delivery is refused with.
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::MissingHeader(_) => ErrorCode::MissingHeader,
            Self::InvalidHeader { .. } => ErrorCode::InvalidHeader,
            Self::NotGitHub => ErrorCode::InvalidUserAgent,
            Self::TooLarge { .. } => ErrorCode::PayloadTooLarge,
            Self::BodyTimeout(_) => ErrorCode::BodyTimeout,
            Self::BodyRead(_) => ErrorCode::BodyUnreadable,
            Self::SignatureMissing => ErrorCode::SignatureMissing,
            Self::SignatureMalformed => ErrorCode::SignatureMalformed,
            Self::SignatureMismatch => ErrorCode::SignatureMismatch,
            Self::UnsupportedContentType(_) => ErrorCode::UnsupportedContentType,
            Self::FormWithoutPayload => ErrorCode::FormWithoutPayload,
            Self::FormNotText => ErrorCode::InvalidForm,
            Self::InvalidJson(_) => ErrorCode::InvalidJson,
            Self::NotAnObject => ErrorCode::PayloadNotObject,
        }
    }
}
