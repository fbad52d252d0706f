//! The HTTP edge's settings: which browser origins, which host names and how many
//! requests per client the API admits. Parsed here with the other settings; the
//! `guard` middleware enforces them.

use std::num::NonZeroU32;

use axum::http::HeaderValue;

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
}

/// Host names the instance answers to, besides loopback names and IP literals.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum AllowedHosts {
    /// Only `localhost`, `*.localhost` and IP addresses (the default).
    #[default]
    LoopbackAndAddresses,
    /// Those and these names; `.example.com` also admits every subdomain.
    List(Vec<String>),
    /// Every name (`*`): DNS rebinding protection off.
    Any,
}

impl AllowedHosts {
    /// `*`, or comma-separated names such as `hooks.example.com, .lan`.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let entries: Vec<String> = raw
            .split(',')
            .map(|s| s.trim().trim_end_matches('.').to_ascii_lowercase())
            .filter(|s| !s.is_empty())
            .collect();
        if entries.is_empty() {
            return Ok(Self::LoopbackAndAddresses);
        }
        if entries == ["*"] {
            return Ok(Self::Any);
        }
        for entry in &entries {
            let name = entry.strip_prefix('.').unwrap_or(entry);
            let valid = !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.');
            if !valid {
                return Err(format!(
                    "{entry:?} is not a host name like hooks.example.com or .example.com \
                     (no scheme, no port), or a lone *"
                ));
            }
        }
        Ok(Self::List(entries))
    }
}

/// Requests per second per client, with bursts of twice that.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    pub per_second: NonZeroU32,
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
