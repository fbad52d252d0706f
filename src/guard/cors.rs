//! CORS: closed unless origins are configured. A browser page on another origin may
//! then read the API with a bearer token; cookies are never involved, so
//! credentials are never allowed, and `*` means any origin without credentials.

use std::time::Duration;

use axum::http::{HeaderValue, Method, header};
use tower_http::cors::{AllowOrigin, CorsLayer};

/// Which browser origins may call the API.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum CorsOrigins {
    /// No CORS headers: browsers keep other origins out (the default).
    #[default]
    Closed,
    Any,
    List(Vec<HeaderValue>),
}

impl CorsOrigins {
    /// `*`, or comma-separated origins such as `https://ci.example.com`.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let entries: Vec<&str> = raw
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .collect();
        if entries.is_empty() {
            return Ok(Self::Closed);
        }
        if entries == ["*"] {
            return Ok(Self::Any);
        }
        entries
            .into_iter()
            .map(|origin| {
                let valid = (origin.starts_with("https://") || origin.starts_with("http://"))
                    && !origin.ends_with('/')
                    && !origin.contains('*');
                match (valid, HeaderValue::from_str(origin)) {
                    (true, Ok(value)) => Ok(value),
                    _ => Err(format!(
                        "{origin:?} is not an origin like https://ci.example.com (or a lone *)"
                    )),
                }
            })
            .collect::<Result<_, _>>()
            .map(Self::List)
    }

    /// The layer to mount, if any.
    pub fn layer(&self) -> Option<CorsLayer> {
        let allow = match self {
            Self::Closed => return None,
            Self::Any => AllowOrigin::any(),
            Self::List(origins) => AllowOrigin::list(origins.clone()),
        };
        Some(
            CorsLayer::new()
                .allow_origin(allow)
                .allow_methods([Method::GET, Method::POST])
                .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE])
                .max_age(Duration::from_secs(3600)),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_are_parsed_strictly() {
        assert_eq!(CorsOrigins::parse("").unwrap(), CorsOrigins::Closed);
        assert_eq!(CorsOrigins::parse(" * ").unwrap(), CorsOrigins::Any);
        assert_eq!(
            CorsOrigins::parse("https://a.example, http://b.example:8080").unwrap(),
            CorsOrigins::List(vec![
                HeaderValue::from_static("https://a.example"),
                HeaderValue::from_static("http://b.example:8080")
            ])
        );
        assert!(CorsOrigins::parse("a.example").is_err());
        assert!(CorsOrigins::parse("https://a.example/").is_err());
        assert!(CorsOrigins::parse("https://*.example").is_err());
        assert!(CorsOrigins::parse("*, https://a.example").is_err());
    }
}
