//! Who may use the API and Socket.IO. With an API token configured, the
//! caller must present it; without one, only local callers are let in. A request that
//! carries any client-address header ([`CLIENT_ADDRESS_HEADERS`]: `X-Forwarded-For`,
//! `Forwarded`, `X-Real-IP`, …) came through a proxy and is never local, whatever
//! address the proxy itself connects from. Wrong tokens are counted per
//! client, and a client that keeps guessing is locked out for a while
//! ([`Lockout`]).

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use axum::http::{HeaderMap, Method, header};
use subtle::ConstantTimeEq;

use super::{ClientIp, Lockout};
use crate::config::Secret;
use crate::domain::Visibility;
use crate::tokens::{self, Holder, Scope, Tokens};

/// Why a caller was turned away; the message tells them how to get in.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Denied {
    #[error("missing or wrong API token: send Authorization: Bearer <HOOKVAULT_API_TOKEN>")]
    BadToken,
    #[error(
        "only local clients may use this without a token; set HOOKVAULT_API_TOKEN on the server \
         and send it as Authorization: Bearer <token> (Socket.IO: auth: {{token}})"
    )]
    NotLocal,
    #[error(
        "other machines need this hookvault's API token: it was printed when hookvault first \
         started and is saved as api-token in its data directory (or set HOOKVAULT_API_TOKEN); \
         send it as Authorization: Bearer <token> (the dashboard asks for it)"
    )]
    NoToken,
    #[error("too many wrong API tokens from this address; try again later")]
    TooManyFailures(Duration),
    #[error("this token's scope is {has}; this needs a {needed} token")]
    Scope {
        has: &'static str,
        needed: &'static str,
    },
    #[error(
        "this token is limited to some organizations or repositories, and this concerns \
         the whole instance; use a token without --org/--repo"
    )]
    Limited,
}

/// What an admitted caller may do.
#[derive(Debug, Clone)]
pub enum Grant {
    /// The `HOOKVAULT_API_TOKEN`, or a local caller when none is set.
    Admin,
    /// A scoped token.
    Token(Holder),
}

impl Grant {
    pub fn scope(&self) -> Scope {
        match self {
            Self::Admin => Scope::Admin,
            Self::Token(holder) => holder.scope,
        }
    }

    /// Limited to some organizations or repositories.
    pub fn is_limited(&self) -> bool {
        match self {
            Self::Admin => false,
            Self::Token(h) => !h.organizations.is_empty() || !h.repositories.is_empty(),
        }
    }

    /// What this caller may see of the stored events.
    pub fn visibility(&self) -> Visibility {
        match self {
            Self::Admin => Visibility::All,
            Self::Token(h) => Visibility::of_limits(&h.organizations, &h.repositories),
        }
    }

    /// The scoped token's name, if the caller presented one.
    pub fn token_name(&self) -> Option<&str> {
        match self {
            Self::Admin => None,
            Self::Token(h) => Some(&h.name),
        }
    }

    /// Whether this caller may make this request ([`needed_scope`]).
    pub fn allows(&self, method: &Method, path: &str) -> Result<(), Denied> {
        let needed = needed_scope(method, path);
        if self.scope() < needed {
            return Err(Denied::Scope {
                has: self.scope().as_str(),
                needed: needed.as_str(),
            });
        }
        // Everything else answers only what the token's visibility allows.
        if self.is_limited() && concerns_the_instance(method, path) {
            return Err(Denied::Limited);
        }
        Ok(())
    }
}

/// Paths that manage the instance: `admin` tokens only, whatever the method.
const ADMIN_PATHS: &[&str] = &[
    "/api/tokens",
    "/api/filters",
    "/api/forwarding",
    "/api/backup",
    "/api/export",
    "/api/backfill",
    "/api/webhooks/rejected",
    "/api/webhooks/ignored",
];

/// Paths about the whole instance, which no filter narrows to some organizations:
/// refused to tokens limited to organizations or repositories, whatever their scope.
/// Everything else (events, search, statistics, repositories, failures, replay,
/// Actions, export) answers such tokens their own events only.
const INSTANCE_PATHS: &[&str] = &[
    "/metrics",
    "/api/tokens",
    "/api/filters",
    "/api/forwarding",
    "/api/backup",
    "/api/backfill",
    "/api/webhooks/rejected",
    "/api/webhooks/ignored",
];

/// `path` is `prefix` or under it.
fn under(path: &str, prefix: &str) -> bool {
    path.strip_prefix(prefix)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

/// Whether a request concerns the whole instance ([`INSTANCE_PATHS`], and removing
/// every test event).
fn concerns_the_instance(method: &Method, path: &str) -> bool {
    INSTANCE_PATHS.iter().any(|p| under(path, p))
        || (method == Method::DELETE && path == "/api/webhooks/test")
}

/// The scope a request needs: `admin` under [`ADMIN_PATHS`], else `read` to read
/// (GET, HEAD) and `write` for the rest (replay, retry, test events).
pub fn needed_scope(method: &Method, path: &str) -> Scope {
    if ADMIN_PATHS.iter().any(|p| under(path, p)) {
        Scope::Admin
    } else if method == Method::GET || method == Method::HEAD {
        Scope::Read
    } else {
        Scope::Write
    }
}

/// The access rule of one running instance: its tokens and its failure counts.
pub struct Access {
    api_token: Option<Secret>,
    /// Direct loopback callers without a token pass even with `api_token` set (the
    /// token kept in the data directory is for other machines).
    local_open: bool,
    tokens: Option<Arc<Tokens>>,
    lockout: Lockout,
}

impl Access {
    pub fn new(api_token: Option<Secret>) -> Arc<Self> {
        Self::with_tokens(api_token, None)
    }

    /// With the scoped tokens of [`Tokens`] besides the API token.
    pub fn with_tokens(api_token: Option<Secret>, tokens: Option<Arc<Tokens>>) -> Arc<Self> {
        Self::with_local_access(api_token, tokens, false)
    }

    /// With `local_open`, callers on this machine (direct loopback) need no token
    /// even when `api_token` is set: the token generated into the data directory.
    pub fn with_local_access(
        api_token: Option<Secret>,
        tokens: Option<Arc<Tokens>>,
        local_open: bool,
    ) -> Arc<Self> {
        Arc::new(Self {
            api_token,
            local_open,
            tokens,
            lockout: Lockout::default(),
        })
    }

    /// [`check`], with wrong tokens counted against `client` and a locked-out
    /// client refused before its token is looked at.
    pub fn admit(
        &self,
        client: Option<IpAddr>,
        peer: Option<SocketAddr>,
        headers: &HeaderMap,
        token: Option<&str>,
    ) -> Result<Grant, Denied> {
        // The host's own processes (direct loopback) are not counted: the lockout is
        // against guessing over the network.
        let client = client
            .or(peer.map(|p| p.ip()))
            .filter(|_| !is_direct_local(peer, headers))
            .map(|ip| ClientIp(ip).limit_key());
        if let Some(wait) = client.and_then(|c| self.lockout.locked(c)) {
            return Err(Denied::TooManyFailures(wait));
        }
        // A scoped token is what its holder asked to act as, even on a local
        // connection.
        if let Some(holder) = token.and_then(|t| self.tokens.as_ref()?.find(t)) {
            return Ok(Grant::Token(holder));
        }
        if self.local_open && token.is_none() && is_direct_local(peer, headers) {
            return Ok(Grant::Admin);
        }
        let mut verdict = match check(self.api_token.as_ref(), peer, headers, token) {
            Err(Denied::BadToken) if self.local_open && token.is_none() => Err(Denied::NoToken),
            verdict => verdict,
        };
        // A scoped token that is unknown or revoked is refused even where no token is
        // needed (a local caller without an API token): its holder asked to act as it,
        // and a revoked token must not come back as the local admin.
        if verdict.is_ok() && self.api_token.is_none() && token.is_some_and(tokens::looks_scoped) {
            verdict = Err(Denied::BadToken);
        }
        if verdict == Err(Denied::BadToken)
            && let Some(client) = client
            && self.lockout.failed(client).is_some()
        {
            tracing::warn!(%client, "client locked out after repeated wrong API tokens");
        }
        verdict.map(|()| Grant::Admin)
    }
}

/// Decides for one caller: `token` is what the caller presented, if anything.
pub fn check(
    api_token: Option<&Secret>,
    peer: Option<SocketAddr>,
    headers: &HeaderMap,
    token: Option<&str>,
) -> Result<(), Denied> {
    match api_token {
        Some(expected) => {
            let presented = token.unwrap_or("").as_bytes();
            if bool::from(presented.ct_eq(expected.expose().as_bytes())) {
                Ok(())
            } else {
                Err(Denied::BadToken)
            }
        }
        None if is_direct_local(peer, headers) => Ok(()),
        None => Err(Denied::NotLocal),
    }
}

/// Headers with which some proxy, load balancer or CDN names the client it forwards
/// for. nginx's `X-Real-IP` is set without `X-Forwarded-For` in many configurations,
/// so any of them marks a request as proxied.
pub const CLIENT_ADDRESS_HEADERS: &[&str] = &[
    "x-forwarded-for",
    "forwarded",
    "x-real-ip",
    "true-client-ip",
    "cf-connecting-ip",
    "fastly-client-ip",
    "x-client-ip",
    "x-cluster-client-ip",
    "x-original-forwarded-for",
    "x-forwarded",
    "forwarded-for",
    "x-appengine-user-ip",
];

/// Whether a proxy put a client address in this request.
pub fn is_proxied(headers: &HeaderMap) -> bool {
    CLIENT_ADDRESS_HEADERS
        .iter()
        .any(|name| headers.contains_key(*name))
}

/// A loopback peer that did not come through a proxy.
pub fn is_direct_local(peer: Option<SocketAddr>, headers: &HeaderMap) -> bool {
    peer.is_some_and(|p| p.ip().is_loopback()) && !is_proxied(headers)
}

/// The bearer token of a request, if any.
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
        .map(str::trim)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(ip: [u8; 4]) -> Option<SocketAddr> {
        Some(SocketAddr::from((ip, 40000)))
    }

    #[test]
    fn without_a_token_only_direct_local_callers_pass() {
        let none = HeaderMap::new();
        assert_eq!(check(None, peer([127, 0, 0, 1]), &none, None), Ok(()));
        assert_eq!(
            check(None, peer([192, 168, 1, 9]), &none, None),
            Err(Denied::NotLocal)
        );
        assert_eq!(check(None, None, &none, None), Err(Denied::NotLocal));
        let mut proxied = HeaderMap::new();
        proxied.insert("x-forwarded-for", "203.0.113.7".parse().unwrap());
        assert_eq!(
            check(None, peer([127, 0, 0, 1]), &proxied, None),
            Err(Denied::NotLocal)
        );
        for name in CLIENT_ADDRESS_HEADERS {
            let mut forwarded = HeaderMap::new();
            forwarded.insert(*name, "203.0.113.7".parse().unwrap());
            assert_eq!(
                check(None, peer([127, 0, 0, 1]), &forwarded, None),
                Err(Denied::NotLocal),
                "{name}"
            );
        }
    }

    #[test]
    fn with_a_token_everyone_must_present_it() {
        let token = Secret::new("0123456789abcdef");
        let none = HeaderMap::new();
        assert_eq!(
            check(Some(&token), peer([127, 0, 0, 1]), &none, None),
            Err(Denied::BadToken)
        );
        assert_eq!(
            check(
                Some(&token),
                peer([10, 0, 0, 1]),
                &none,
                Some("0123456789abcdef")
            ),
            Ok(())
        );
        assert_eq!(
            check(
                Some(&token),
                peer([10, 0, 0, 1]),
                &none,
                Some("0123456789abcdeX")
            ),
            Err(Denied::BadToken)
        );
    }

    #[test]
    fn limited_tokens_are_refused_only_what_concerns_the_whole_instance() {
        let holder = |scope, orgs: &[&str]| {
            Grant::Token(Holder {
                name: "t".into(),
                scope,
                organizations: orgs.iter().map(|o| o.to_string()).collect(),
                repositories: Vec::new(),
            })
        };
        let limited = holder(Scope::Admin, &["octo-org"]);
        assert!(limited.is_limited());
        assert!(matches!(limited.visibility(), Visibility::Limited { .. }));
        for (method, path) in [
            (Method::GET, "/api/webhooks/events"),
            (Method::GET, "/api/webhooks/search"),
            (Method::GET, "/api/export"),
            (Method::POST, "/api/webhooks/test"),
            (Method::POST, "/api/webhooks/replay/x"),
        ] {
            assert_eq!(limited.allows(&method, path), Ok(()), "{method} {path}");
        }
        for (method, path) in [
            (Method::GET, "/metrics"),
            (Method::GET, "/api/tokens"),
            (Method::DELETE, "/api/tokens/t"),
            (Method::GET, "/api/forwarding/targets"),
            (Method::GET, "/api/backup"),
            (Method::GET, "/api/webhooks/rejected"),
            (Method::DELETE, "/api/webhooks/test"),
        ] {
            assert_eq!(
                limited.allows(&method, path),
                Err(Denied::Limited),
                "{method} {path}"
            );
        }
        let unlimited = holder(Scope::Read, &[]);
        assert!(!unlimited.is_limited());
        assert_eq!(unlimited.visibility(), Visibility::All);
        assert_eq!(unlimited.allows(&Method::GET, "/metrics"), Ok(()));
        assert_eq!(Grant::Admin.visibility(), Visibility::All);
    }

    #[test]
    fn bearer_tokens_are_read_from_authorization() {
        let mut headers = HeaderMap::new();
        headers.insert("authorization", "Bearer abc".parse().unwrap());
        assert_eq!(bearer(&headers), Some("abc"));
        headers.insert("authorization", "Basic abc".parse().unwrap());
        assert_eq!(bearer(&headers), None);
    }
}
