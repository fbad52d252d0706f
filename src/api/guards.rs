//! The middleware of the HTTP edge's guards: each asks its `guard` and maps the
//! refusal to an [`ApiError`] (status, code, message, `Retry-After`).

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::ApiError;
use crate::domain::{ErrorCode, Visibility};
use crate::guard::access::{self, Access, Denied, bearer};
use crate::guard::{ApiRateLimiter, ClientIp, Refused, Sites, UNLIMITED_PATHS};

/// Axum middleware guarding every route it wraps. An admitted request carries its
/// caller's [`Visibility`] to the handler.
pub async fn require(
    State(access): State<Arc<Access>>,
    mut request: Request,
    next: Next,
) -> Response {
    let extensions = request.extensions();
    let peer = extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0);
    let client = extensions.get::<ClientIp>().map(|c| c.0);
    let headers = request.headers();
    let admitted = access
        .admit(client, peer, headers, bearer(headers))
        .and_then(|grant| {
            grant.allows(request.method(), request.uri().path())?;
            Ok(grant.visibility())
        });
    match admitted {
        Ok(visibility) => {
            request.extensions_mut().insert(visibility);
            next.run(request).await
        }
        Err(denied @ (Denied::Scope { .. } | Denied::Limited)) => {
            ApiError::new(ErrorCode::Forbidden, denied.to_string()).into_response()
        }
        Err(denied @ Denied::TooManyFailures(wait)) => {
            ApiError::new(ErrorCode::LockedOut, denied.to_string())
                .retry_after(wait)
                .into_response()
        }
        Err(denied) => ApiError::new(ErrorCode::Unauthorized, denied.to_string()).into_response(),
    }
}

/// What the caller may see, as [`require`] found it. A handler behind no guard
/// gets an error, never everything.
impl<S: Send + Sync> FromRequestParts<S> for Visibility {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<Visibility>()
            .cloned()
            .ok_or_else(|| {
                tracing::error!(
                    path = parts.uri.path(),
                    "a handler asked for the caller's visibility behind no guard"
                );
                ApiError::new(ErrorCode::Internal, "access was not checked")
            })
    }
}

/// Middleware: 429 with `Retry-After` once a client is over its rate.
pub async fn limit(
    State(limiter): State<Arc<ApiRateLimiter>>,
    request: Request,
    next: Next,
) -> Response {
    let client = request.extensions().get::<ClientIp>().copied();
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0);
    let exempt = UNLIMITED_PATHS.contains(&request.uri().path())
        || access::is_direct_local(peer, request.headers());
    if let (Some(client), false) = (client, exempt)
        && let Err(wait) = limiter.check(client)
    {
        return ApiError::new(
            ErrorCode::RateLimited,
            "too many requests from this address; slow down",
        )
        .retry_after(wait)
        .into_response();
    }
    next.run(request).await
}

/// Middleware: 403 for a foreign host name or a cross-site browser request.
pub async fn protect(State(sites): State<Arc<Sites>>, request: Request, next: Next) -> Response {
    let verdict = sites.check_authority(
        request.method(),
        request.uri().path(),
        request.uri().authority().map(|a| a.as_str()),
        request.headers(),
    );
    match verdict {
        Ok(()) => next.run(request).await,
        Err(refused) => {
            let code = match refused {
                Refused::Host(_) => ErrorCode::HostNotAllowed,
                Refused::Origin(_) | Refused::CrossSite => ErrorCode::CrossSiteRequest,
            };
            tracing::debug!(%refused, path = request.uri().path(), "browser request refused");
            ApiError::new(code, refused.to_string()).into_response()
        }
    }
}
