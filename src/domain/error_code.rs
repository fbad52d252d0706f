//! Every error code the API answers with, and its HTTP status: the one list. The wire
//! codes are stable (clients and the rejected-delivery log match on them); the
//! message beside a code is for people and may change.

use http::StatusCode;

macro_rules! error_codes {
    ($($(#[$doc:meta])* $variant:ident = ($status:ident, $code:literal),)*) => {
        /// An error code with its HTTP status.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum ErrorCode {
            $($(#[$doc])* $variant,)*
        }

        impl ErrorCode {
            /// Every code, in the order of the list.
            pub const ALL: &[ErrorCode] = &[$(ErrorCode::$variant,)*];

            /// The snake_case code on the wire (`error.code` in the envelope).
            pub const fn as_str(self) -> &'static str {
                match self {
                    $(ErrorCode::$variant => $code,)*
                }
            }

            /// The HTTP status answered with this code.
            pub const fn status(self) -> StatusCode {
                match self {
                    $(ErrorCode::$variant => StatusCode::$status,)*
                }
            }
        }
    };
}

error_codes! {
    // A delivery refused at ingest (each one also goes to the rejected-delivery log).
    /// A required `X-GitHub-*` header is absent.
    MissingHeader = (BAD_REQUEST, "missing_header"),
    /// A header does not parse (delivery id, event type, hook id).
    InvalidHeader = (BAD_REQUEST, "invalid_header"),
    /// `User-Agent` is not `GitHub-Hookshot/…`.
    InvalidUserAgent = (BAD_REQUEST, "invalid_user_agent"),
    /// A body over its limit.
    PayloadTooLarge = (PAYLOAD_TOO_LARGE, "payload_too_large"),
    /// The body did not arrive in time.
    BodyTimeout = (REQUEST_TIMEOUT, "body_timeout"),
    /// The body could not be read.
    BodyUnreadable = (BAD_REQUEST, "body_unreadable"),
    SignatureMissing = (UNAUTHORIZED, "signature_missing"),
    SignatureMalformed = (UNAUTHORIZED, "signature_malformed"),
    SignatureMismatch = (UNAUTHORIZED, "signature_mismatch"),
    /// A delivery neither JSON nor a form.
    UnsupportedContentType = (UNSUPPORTED_MEDIA_TYPE, "unsupported_content_type"),
    FormWithoutPayload = (BAD_REQUEST, "form_without_payload"),
    InvalidForm = (BAD_REQUEST, "invalid_form"),
    InvalidJson = (BAD_REQUEST, "invalid_json"),
    PayloadNotObject = (BAD_REQUEST, "payload_not_object"),

    // A request the API refuses.
    /// A query parameter that is unknown or out of range.
    InvalidParameter = (BAD_REQUEST, "invalid_parameter"),
    /// A path segment that is not percent-encoded UTF-8.
    InvalidPath = (BAD_REQUEST, "invalid_path"),
    /// A JSON body of the wrong shape.
    InvalidBody = (BAD_REQUEST, "invalid_body"),
    /// A search query that does not parse.
    InvalidQuery = (BAD_REQUEST, "invalid_query"),
    InvalidTarget = (BAD_REQUEST, "invalid_target"),
    InvalidTestEvent = (BAD_REQUEST, "invalid_test_event"),
    /// An ingest filter rule that does not parse.
    InvalidFilter = (BAD_REQUEST, "invalid_filter"),
    /// A token request of the wrong shape (name, scope, organizations, repositories).
    InvalidToken = (BAD_REQUEST, "invalid_token"),
    /// An API body that is not `application/json`.
    UnsupportedMediaType = (UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type"),
    NotFound = (NOT_FOUND, "not_found"),
    MethodNotAllowed = (METHOD_NOT_ALLOWED, "method_not_allowed"),

    // Who may ask.
    /// No or wrong API token, or not a local client when no token is set.
    Unauthorized = (UNAUTHORIZED, "unauthorized"),
    /// Too many wrong tokens from this address.
    LockedOut = (TOO_MANY_REQUESTS, "locked_out"),
    RateLimited = (TOO_MANY_REQUESTS, "rate_limited"),
    /// A token whose scope does not cover this request.
    Forbidden = (FORBIDDEN, "forbidden"),
    HostNotAllowed = (FORBIDDEN, "host_not_allowed"),
    CrossSiteRequest = (FORBIDDEN, "cross_site_request"),

    // The state of things.
    DuplicateDelivery = (CONFLICT, "duplicate_delivery"),
    TargetExists = (CONFLICT, "target_exists"),
    TokenExists = (CONFLICT, "token_exists"),
    /// A forwarding target from the settings, which the API cannot change.
    TargetFromSettings = (CONFLICT, "target_from_settings"),
    BackupInProgress = (CONFLICT, "backup_in_progress"),
    BackfillRunning = (CONFLICT, "backfill_running"),
    BackfillNotConfigured = (CONFLICT, "backfill_not_configured"),
    /// Too many deliveries being verified and stored at once.
    Overloaded = (SERVICE_UNAVAILABLE, "overloaded"),
    ShuttingDown = (SERVICE_UNAVAILABLE, "shutting_down"),
    /// The disk is full or failing; nothing was stored.
    StorageUnavailable = (SERVICE_UNAVAILABLE, "storage_unavailable"),
    StorageError = (INTERNAL_SERVER_ERROR, "storage_error"),
    SearchError = (INTERNAL_SERVER_ERROR, "search_error"),
    Internal = (INTERNAL_SERVER_ERROR, "internal"),
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_is_snake_case_unique_and_an_error_status() {
        let mut seen = std::collections::HashSet::new();
        for code in ErrorCode::ALL {
            let s = code.as_str();
            assert!(seen.insert(s), "{s} twice");
            assert!(s.chars().all(|c| c.is_ascii_lowercase() || c == '_'), "{s}");
            assert!(code.status().is_client_error() || code.status().is_server_error());
        }
    }
}
