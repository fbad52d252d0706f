//! Where a target may point. Private ranges are allowed (reaching the inside of a
//! homelab is the point), but link-local and cloud metadata addresses are refused
//! unless a target allows them: a URL set through the API must not become a way to
//! read the host's cloud credentials. Names are checked when they resolve, at every
//! connection (a name that resolves elsewhere later gains nothing), and IP literals,
//! which skip the resolver, when the URL is checked.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use reqwest::Url;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// Why `ip` is refused, if it is.
pub fn refused(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => refused_v4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => refused_v4(v4),
            None => refused_v6(v6),
        },
    }
}

fn refused_v4(ip: Ipv4Addr) -> Option<&'static str> {
    if ip.is_link_local() {
        // 169.254.169.254: the metadata service of AWS, GCP, Azure, OpenStack, …
        Some("a link-local address (169.254.0.0/16, where cloud metadata services live)")
    } else if ip == Ipv4Addr::new(100, 100, 100, 200) {
        Some("Alibaba Cloud's metadata address")
    } else if ip.is_unspecified() || ip.octets()[0] == 0 {
        Some("an unspecified address (0.0.0.0/8)")
    } else if ip.is_multicast() || ip.is_broadcast() {
        Some("a multicast or broadcast address")
    } else {
        None
    }
}

fn refused_v6(ip: Ipv6Addr) -> Option<&'static str> {
    let segments = ip.segments();
    if ip == Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254) {
        Some("AWS's IPv6 metadata address (fd00:ec2::254)")
    } else if segments[0] & 0xffc0 == 0xfe80 {
        Some("a link-local address (fe80::/10)")
    } else if ip.is_unspecified() {
        Some("the unspecified address (::)")
    } else if ip.is_multicast() {
        Some("a multicast address")
    } else {
        None
    }
}

/// Refuses a URL whose host is a refused IP literal (names are checked by [`Resolver`]).
pub fn check_url(url: &Url, allow_link_local: bool) -> Result<(), String> {
    let host = url.host_str().ok_or("url: no host")?;
    let Ok(ip) = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse::<IpAddr>()
    else {
        return Ok(());
    };
    match refused(ip) {
        Some(why) if !allow_link_local => Err(format!(
            "url: {ip} is {why}; set allowLinkLocal to forward there anyway"
        )),
        _ => Ok(()),
    }
}

/// The system resolver without the refused addresses; a name that resolves only to
/// refused ones fails to connect, with the reason.
#[derive(Debug, Clone, Copy)]
pub struct Resolver;

impl Resolve for Resolver {
    fn resolve(&self, name: Name) -> Resolving {
        Box::pin(async move {
            let allowed = resolve(name.as_str(), 0).await?;
            let addrs: Addrs = Box::new(allowed.into_iter());
            Ok(addrs)
        })
    }
}

/// `host`'s addresses with `port`, without the refused ones; an error (with the
/// reason) when it resolves only to refused ones. An IP literal resolves to itself.
pub async fn resolve(host: &str, port: u16) -> Result<Vec<SocketAddr>, String> {
    let found: Vec<SocketAddr> = tokio::net::lookup_host((host, port))
        .await
        .map_err(|e| format!("{host}: {e}"))?
        .collect();
    let allowed: Vec<SocketAddr> = found
        .iter()
        .copied()
        .filter(|a| refused(a.ip()).is_none())
        .collect();
    if allowed.is_empty() {
        if let Some(why) = found.first().and_then(|a| refused(a.ip())) {
            return Err(format!(
                "{host} resolves to {why}; refused (allowLinkLocal)"
            ));
        }
    }
    Ok(allowed)
}

impl Resolver {
    pub fn shared() -> Arc<Self> {
        Arc::new(Self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_link_local_and_metadata_but_not_private_ranges() {
        for refused_ip in [
            "169.254.169.254",
            "169.254.0.1",
            "100.100.100.200",
            "0.0.0.0",
            "224.0.0.1",
            "fd00:ec2::254",
            "fe80::1",
            "::ffff:169.254.169.254",
            "::",
        ] {
            assert!(
                refused(refused_ip.parse().unwrap()).is_some(),
                "{refused_ip}"
            );
        }
        for allowed in [
            "10.1.2.3",
            "172.16.0.9",
            "192.168.1.1",
            "127.0.0.1",
            "100.64.0.1",
            "fd12::1",
            "::1",
            "8.8.8.8",
        ] {
            assert!(refused(allowed.parse().unwrap()).is_none(), "{allowed}");
        }
    }

    #[tokio::test]
    async fn the_resolver_drops_refused_addresses() {
        let found = Resolver
            .resolve("localhost".parse().unwrap())
            .await
            .unwrap();
        assert!(found.into_iter().all(|a| a.ip().is_loopback()));
        // What a name resolving to the metadata service gets (the system resolver
        // answers an address written as a name with itself).
        let Err(refusal) = Resolver.resolve("169.254.169.254".parse().unwrap()).await else {
            panic!("a metadata address is refused");
        };
        assert!(refusal.to_string().contains("link-local"), "{refusal}");
    }
}
