//! Query parameters an endpoint does not know are refused, naming them and the
//! closest known one: `?repo=x` must not quietly list every event. What an endpoint
//! knows is what the OpenAPI description says of it, so the two cannot disagree.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{MatchedPath, Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use utoipa::openapi::path::ParameterIn;
use utoipa::openapi::{OpenApi, RefOr};

use super::ApiError;
use crate::domain::ErrorCode;

/// (method, path template) → the query parameters the operation declares.
#[derive(Debug, Default)]
pub struct KnownParams(HashMap<(Method, String), Vec<String>>);

impl KnownParams {
    pub fn of(api: &OpenApi) -> Self {
        let mut known = HashMap::new();
        for (path, item) in &api.paths.paths {
            let operations = [
                (Method::GET, &item.get),
                (Method::PUT, &item.put),
                (Method::POST, &item.post),
                (Method::DELETE, &item.delete),
                (Method::PATCH, &item.patch),
            ];
            for (method, operation) in operations {
                let Some(operation) = operation else { continue };
                let names = operation
                    .parameters
                    .iter()
                    .flatten()
                    .filter_map(|p| match p {
                        RefOr::T(parameter) => Some(parameter),
                        RefOr::Ref(_) => None,
                    })
                    .filter(|p| matches!(p.parameter_in, ParameterIn::Query))
                    .map(|p| p.name.clone())
                    .collect();
                known.insert((method, path.clone()), names);
            }
        }
        Self(known)
    }

    /// The first unknown parameter of `query`, if any, as the answer to give.
    fn check(&self, method: &Method, path: &str, query: &str) -> Result<(), ApiError> {
        // HEAD is answered by the GET route.
        let method = if method == Method::HEAD {
            &Method::GET
        } else {
            method
        };
        let Some(known) = self.0.get(&(method.clone(), path.to_owned())) else {
            return Ok(()); // not described (the OpenAPI document itself, Socket.IO)
        };
        let mut unknown: Vec<String> = form_urlencoded::parse(query.as_bytes())
            .map(|(name, _)| name.into_owned())
            .filter(|name| !known.contains(name))
            .collect();
        unknown.dedup();
        let Some(first) = unknown.first() else {
            return Ok(());
        };
        let hint = closest(first, known).map_or_else(
            || match known.is_empty() {
                true => "; this endpoint takes no query parameters".to_owned(),
                false => format!("; known: {}", known.join(", ")),
            },
            |name| format!("; did you mean {name}?"),
        );
        Err(ApiError::new(
            ErrorCode::InvalidParameter,
            format!("unknown query parameter {}{hint}", unknown.join(", ")),
        ))
    }
}

/// The known name most like `given`, if any is close (as clap suggests subcommands).
fn closest<'k>(given: &str, known: &'k [String]) -> Option<&'k str> {
    let given = given.to_ascii_lowercase();
    known
        .iter()
        .map(|name| {
            let lower = name.to_ascii_lowercase();
            let prefix = lower.starts_with(&given) || given.starts_with(&lower);
            let score = if prefix {
                1.0
            } else {
                strsim::jaro_winkler(&given, &lower)
            };
            (score, name.as_str())
        })
        .filter(|(score, _)| *score > 0.7)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, name)| name)
}

/// Middleware: refuses a request with a query parameter its route does not declare.
pub async fn refuse_unknown(
    State(known): State<Arc<KnownParams>>,
    request: Request,
    next: Next,
) -> Response {
    let path = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned());
    if let (Some(path), Some(query)) = (path, request.uri().query())
        && let Err(error) = known.check(request.method(), &path, query)
    {
        return error.into_response();
    }
    next.run(request).await
}

/// `hours`: a window in whole hours, from 1 to `max`; 24 unless given.
pub(crate) fn window_hours(params: &HashMap<String, String>, max: i64) -> Result<i64, ApiError> {
    match params.get("hours").map(|h| h.trim()) {
        None | Some("") => Ok(24),
        Some(raw) => raw
            .parse::<i64>()
            .ok()
            .filter(|h| (1..=max).contains(h))
            .ok_or_else(|| {
                ApiError::bad_parameter("hours", format!("must be a whole number from 1 to {max}"))
            }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn known() -> KnownParams {
        let mut map = HashMap::new();
        let names = ["repository", "event", "startDate", "limit"].map(String::from);
        map.insert((Method::GET, "/e".to_owned()), names.to_vec());
        map.insert((Method::POST, "/r".to_owned()), Vec::new());
        KnownParams(map)
    }

    #[test]
    fn unknown_parameters_are_named_with_the_closest_known_one() {
        let known = known();
        assert!(
            known
                .check(&Method::GET, "/e", "repository=a&limit=2")
                .is_ok()
        );
        assert!(known.check(&Method::HEAD, "/e", "event=push").is_ok());
        let error = known.check(&Method::GET, "/e", "repo=nope").unwrap_err();
        assert_eq!(error.code, ErrorCode::InvalidParameter);
        assert!(
            error.message.contains("repo; did you mean repository?"),
            "{}",
            error.message
        );
        let error = known
            .check(&Method::GET, "/e", "start_date=2026-01-01")
            .unwrap_err();
        assert!(
            error.message.contains("did you mean startDate?"),
            "{}",
            error.message
        );
        let error = known.check(&Method::GET, "/e", "zzz=1").unwrap_err();
        assert!(
            error.message.contains("known: repository, event"),
            "{}",
            error.message
        );
        let error = known.check(&Method::POST, "/r", "x=1").unwrap_err();
        assert!(
            error.message.contains("takes no query parameters"),
            "{}",
            error.message
        );
        assert!(known.check(&Method::GET, "/undescribed", "x=1").is_ok());
    }
}
