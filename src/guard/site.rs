//! Which host names and browser pages may use the instance. A loopback-only instance
//! (no token) trusts every local process, and a browser on the same machine is one:
//! without these checks any web page it visits could drive the API.
//! - **DNS rebinding**: a page on `evil.example` whose name then resolves to
//!   127.0.0.1 is same-origin with its own requests. Only host names this instance is
//!   served under are answered ([`AllowedHosts`]); an IP literal cannot be rebound.
//! - **Cross-site requests**: a form or `fetch` with a "simple" content type reaches
//!   the server without a CORS preflight. A state-changing request, and every
//!   Socket.IO request, that a browser marks as coming from another site (its
//!   `Origin`, else `Sec-Fetch-Site`) is refused unless that origin is configured.
//!
//! Requests without those headers (curl, scripts, GitHub) pass: they are not
//! browsers, and the token or the loopback rule decides for them. The ingest
//! endpoint is exempt from both checks: it is signed and answers any Host.

use std::net::IpAddr;

use axum::http::{HeaderMap, Method, header};

use super::cors::CorsOrigins;
pub use crate::config::AllowedHosts;

/// Paths exempt from the host and origin checks: signed, called by GitHub.
pub const ANY_HOST_PATHS: &[&str] = &["/api/webhooks/github"];

impl AllowedHosts {
    /// Whether `authority` (a `Host` header: name or address, optional port) is one
    /// this instance answers to.
    pub fn allows(&self, authority: &str) -> bool {
        let host = host_of(authority);
        if matches!(self, Self::Any) || host.parse::<IpAddr>().is_ok() {
            return true;
        }
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        if host == "localhost" || host.ends_with(".localhost") {
            return true;
        }
        match self {
            Self::List(names) => names.iter().any(|name| match name.strip_prefix('.') {
                Some(domain) => host == domain || host.ends_with(name.as_str()),
                None => host == *name,
            }),
            _ => false,
        }
    }
}

/// The name or address of an authority, without port and IPv6 brackets.
fn host_of(authority: &str) -> &str {
    if let Some(rest) = authority.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    match authority.rsplit_once(':') {
        Some((host, port)) if port.bytes().all(|b| b.is_ascii_digit()) => host,
        _ => authority,
    }
}

/// The rule of one instance.
#[derive(Debug, Clone)]
pub struct Sites {
    pub hosts: AllowedHosts,
    pub origins: CorsOrigins,
    /// With a token, a CORS origin of `*` lets any page call (with the token); without
    /// one it would let any page use the loopback trust, so it is not honoured.
    pub token_configured: bool,
}

/// Why a browser request was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    #[error(
        "this instance does not answer to the host name {0:?}; add it to HOOKVAULT_ALLOWED_HOSTS \
         (protection against DNS rebinding)"
    )]
    Host(String),
    #[error(
        "a page on {0} may not call this instance; allow the origin with HOOKVAULT_CORS_ORIGINS"
    )]
    Origin(String),
    #[error(
        "a browser request from another site may not call this instance; allow the origin with \
         HOOKVAULT_CORS_ORIGINS"
    )]
    CrossSite,
}

impl Sites {
    /// Decides for one request.
    pub fn check(&self, method: &Method, path: &str, headers: &HeaderMap) -> Result<(), Refused> {
        self.check_authority(method, path, None, headers)
    }

    pub fn check_authority(
        &self,
        method: &Method,
        path: &str,
        uri_authority: Option<&str>,
        headers: &HeaderMap,
    ) -> Result<(), Refused> {
        if ANY_HOST_PATHS.contains(&path) {
            return Ok(());
        }
        // HTTP/2 carries the host in `:authority`, HTTP/1 in `Host`.
        let host = uri_authority.or_else(|| headers.get(header::HOST)?.to_str().ok());
        if let Some(host) = host
            && !self.hosts.allows(host)
        {
            return Err(Refused::Host(host.to_owned()));
        }
        let state_changing = ![Method::GET, Method::HEAD, Method::OPTIONS].contains(method);
        let socket_io = path.starts_with("/socket.io/") && path != "/socket.io/socket.io.js";
        if !(state_changing || socket_io) {
            return Ok(());
        }
        match headers
            .get(header::ORIGIN)
            .map(|o| o.to_str().unwrap_or(""))
        {
            Some(origin) if self.origin_allowed(origin, host) => Ok(()),
            Some(origin) => Err(Refused::Origin(origin.to_owned())),
            None => {
                let site = headers
                    .get("sec-fetch-site")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("");
                if site.eq_ignore_ascii_case("cross-site") || site.eq_ignore_ascii_case("same-site")
                {
                    Err(Refused::CrossSite)
                } else {
                    Ok(())
                }
            }
        }
    }

    /// The instance's own origin (same host and port as the request), or a
    /// configured one.
    fn origin_allowed(&self, origin: &str, host: Option<&str>) -> bool {
        let own = origin
            .split_once("://")
            .map(|(scheme, authority)| {
                let default_port = match scheme {
                    "https" => ":443",
                    _ => ":80",
                };
                host.is_some_and(|host| {
                    authority.eq_ignore_ascii_case(host)
                        || authority.eq_ignore_ascii_case(
                            host.strip_suffix(default_port).unwrap_or("\u{0}"),
                        )
                })
            })
            .unwrap_or(false);
        own || match &self.origins {
            CorsOrigins::Closed => false,
            CorsOrigins::Any => self.token_configured,
            CorsOrigins::List(allowed) => allowed.iter().any(|a| a.as_bytes() == origin.as_bytes()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::guard::test_headers as headers;

    fn sites(hosts: &str, origins: &str, token: bool) -> Sites {
        Sites {
            hosts: AllowedHosts::parse(hosts).unwrap(),
            origins: CorsOrigins::parse(origins).unwrap(),
            token_configured: token,
        }
    }

    #[test]
    fn loopback_names_addresses_and_configured_names_are_allowed() {
        let default = AllowedHosts::default();
        for host in [
            "localhost",
            "localhost:3000",
            "LOCALHOST.",
            "app.localhost:8080",
            "127.0.0.1:3000",
            "[::1]:3000",
            "192.168.1.20",
        ] {
            assert!(default.allows(host), "{host}");
        }
        for host in [
            "evil.example",
            "evil.example:3000",
            "localhost.evil.example",
        ] {
            assert!(!default.allows(host), "{host}");
        }
        let list = AllowedHosts::parse("hooks.example.com, .lan").unwrap();
        assert!(list.allows("hooks.example.com:443"));
        assert!(list.allows("nas.lan") && list.allows("lan"));
        assert!(!list.allows("evil.example") && !list.allows("xlan"));
        assert!(AllowedHosts::parse("*").unwrap().allows("anything"));
        assert!(AllowedHosts::parse("https://x.example").is_err());
        assert!(AllowedHosts::parse("x.example:80").is_err());
    }

    #[test]
    fn cross_site_state_changes_are_refused_and_scripts_pass() {
        let s = sites("", "", false);
        let post = Method::POST;
        let path = "/api/webhooks/retry-failed";
        let host = ("host", "127.0.0.1:3000");
        assert_eq!(s.check(&post, path, &headers(&[host])), Ok(()));
        assert_eq!(
            s.check(
                &post,
                path,
                &headers(&[host, ("origin", "http://127.0.0.1:3000")])
            ),
            Ok(())
        );
        for origin in ["https://evil.example", "null", "http://127.0.0.1:4000"] {
            assert!(
                s.check(&post, path, &headers(&[host, ("origin", origin)]))
                    .is_err(),
                "{origin}"
            );
        }
        for site in ["cross-site", "same-site"] {
            assert_eq!(
                s.check(&post, path, &headers(&[host, ("sec-fetch-site", site)])),
                Err(Refused::CrossSite)
            );
        }
        // Reads are left to CORS; the ingest endpoint to its signature.
        let foreign = headers(&[host, ("origin", "https://evil.example")]);
        assert_eq!(
            s.check(&Method::GET, "/api/webhooks/events", &foreign),
            Ok(())
        );
        assert_eq!(s.check(&post, "/api/webhooks/github", &foreign), Ok(()));
        // Socket.IO reads too.
        assert!(s.check(&Method::GET, "/socket.io/", &foreign).is_err());
        // A foreign Host is refused on reads, except ingest.
        let rebound = headers(&[("host", "evil.example:3000")]);
        assert!(matches!(
            s.check(&Method::GET, "/dashboard", &rebound),
            Err(Refused::Host(_))
        ));
        assert_eq!(s.check(&post, "/api/webhooks/github", &rebound), Ok(()));
    }

    #[test]
    fn configured_origins_may_call_and_star_only_with_a_token() {
        let host = ("host", "hooks.example.com");
        let ci = headers(&[host, ("origin", "https://ci.example.com")]);
        let path = "/api/webhooks/test";
        let listed = sites("hooks.example.com", "https://ci.example.com", false);
        assert_eq!(listed.check(&Method::POST, path, &ci), Ok(()));
        assert_eq!(
            listed.check(
                &Method::POST,
                path,
                &headers(&[host, ("origin", "https://hooks.example.com")])
            ),
            Ok(()),
            "own origin, default port"
        );
        assert!(
            sites("hooks.example.com", "*", false)
                .check(&Method::POST, path, &ci)
                .is_err()
        );
        assert_eq!(
            sites("hooks.example.com", "*", true).check(&Method::POST, path, &ci),
            Ok(())
        );
    }
}
