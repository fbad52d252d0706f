//! Who the client is. The TCP peer, unless the peer is a configured trusted proxy:
//! then the address the proxy reports (`X-Forwarded-For`, else `Forwarded: for=`),
//! read right to left and skipping further trusted proxies, so a client cannot
//! choose its own address by sending the header itself.

use std::net::{IpAddr, Ipv6Addr, SocketAddr};

use axum::extract::{ConnectInfo, Request};
use axum::http::{HeaderMap, header};
use ipnet::IpNet;

/// The client address of a request, as [`identify`] resolved it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ClientIp(pub IpAddr);

impl ClientIp {
    /// The key limits are counted under: the address, or its /64 for IPv6, since
    /// one IPv6 host usually holds a whole /64 and could rotate through it.
    pub fn limit_key(self) -> IpAddr {
        match self.0 {
            IpAddr::V4(v4) => IpAddr::V4(v4),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => IpAddr::V4(v4),
                None => {
                    let bits = u128::from(v6) & (u128::MAX << 64);
                    IpAddr::V6(Ipv6Addr::from(bits))
                }
            },
        }
    }
}

/// Resolves the client address of one request.
pub fn resolve(peer: IpAddr, headers: &HeaderMap, trusted: &[IpNet]) -> IpAddr {
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(ip));
    if !is_trusted(&peer) {
        return peer;
    }
    let mut hops = forwarded_for(headers);
    // Right to left: the last entry was added by the proxy we trust; stop at the
    // first address that is not one of our proxies.
    hops.reverse();
    hops.into_iter().find(|ip| !is_trusted(ip)).unwrap_or(peer)
}

/// The addresses a proxy chain reported, leftmost (claimed client) first.
fn forwarded_for(headers: &HeaderMap) -> Vec<IpAddr> {
    let xff: Vec<IpAddr> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|part| parse_node(part.trim()))
        .collect();
    if !xff.is_empty() {
        return xff;
    }
    headers
        .get_all(header::FORWARDED)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|element| {
            element.split(';').find_map(|pair| {
                let (name, value) = pair.trim().split_once('=')?;
                name.eq_ignore_ascii_case("for")
                    .then(|| parse_node(value.trim().trim_matches('"')))
                    .flatten()
            })
        })
        .collect()
}

/// `1.2.3.4`, `1.2.3.4:80`, `[2001:db8::1]:80` or `2001:db8::1`.
fn parse_node(node: &str) -> Option<IpAddr> {
    if let Ok(ip) = node.parse() {
        return Some(ip);
    }
    if let Ok(addr) = node.parse::<SocketAddr>() {
        return Some(addr.ip());
    }
    node.strip_prefix('[')?.split(']').next()?.parse().ok()
}

/// Middleware: puts the [`ClientIp`] into the request's extensions for the limits,
/// access checks and logs after it.
pub async fn identify(
    axum::extract::State(trusted): axum::extract::State<std::sync::Arc<Vec<IpNet>>>,
    mut request: Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    if let Some(peer) = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip())
    {
        let ip = resolve(peer, request.headers(), &trusted);
        request.extensions_mut().insert(ClientIp(ip));
    }
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::guard::test_headers as headers;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_claims() {
        let claimed = headers(&[("x-forwarded-for", "10.9.9.9")]);
        assert_eq!(resolve(ip("203.0.113.5"), &claimed, &[]), ip("203.0.113.5"));
        let trusted = ["127.0.0.1/32".parse().unwrap()];
        assert_eq!(
            resolve(ip("203.0.113.5"), &claimed, &trusted),
            ip("203.0.113.5")
        );
    }

    #[test]
    fn a_trusted_proxy_reports_the_client_and_spoofed_hops_are_ignored() {
        let trusted: Vec<IpNet> = vec![
            "127.0.0.1/32".parse().unwrap(),
            "10.0.0.0/8".parse().unwrap(),
        ];
        // The client sent "1.1.1.1" itself; nginx appended the real address.
        let chain = headers(&[("x-forwarded-for", "1.1.1.1, 198.51.100.7, 10.0.0.2")]);
        assert_eq!(
            resolve(ip("127.0.0.1"), &chain, &trusted),
            ip("198.51.100.7")
        );
        let forwarded = headers(&[("forwarded", "for=\"[2001:db8::1]:4711\";proto=https")]);
        assert_eq!(
            resolve(ip("127.0.0.1"), &forwarded, &trusted),
            ip("2001:db8::1")
        );
        // Nothing usable: the proxy itself.
        let junk = headers(&[("x-forwarded-for", "unknown")]);
        assert_eq!(resolve(ip("127.0.0.1"), &junk, &trusted), ip("127.0.0.1"));
    }

    #[test]
    fn ipv6_clients_are_limited_per_64() {
        let a = ClientIp(ip("2001:db8:1:2:aaaa::1")).limit_key();
        let b = ClientIp(ip("2001:db8:1:2:bbbb::9")).limit_key();
        let c = ClientIp(ip("2001:db8:1:3::1")).limit_key();
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_eq!(
            ClientIp(ip("::ffff:192.0.2.1")).limit_key(),
            ip("192.0.2.1")
        );
    }
}
