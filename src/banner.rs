//! The few lines `serve` prints once at startup: where it listens, the Payload URL
//! to paste into GitHub, the dashboard, the data directory and who may use the API.
//! Built from the bound address, so `--listen …:0` shows the port actually taken.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;

use crate::config::{Config, SecretSource};

/// The facts of the banner; [`Banner::lines`] words them for people.
#[derive(Debug, Clone)]
pub struct Banner {
    pub listen: SocketAddr,
    pub payload_url: String,
    pub dashboard_url: String,
    pub data_dir: PathBuf,
    pub token_set: bool,
    /// The token is the one kept in the data directory (this file): callers on this
    /// machine need none.
    pub token_file: Option<PathBuf>,
}

impl Banner {
    pub fn new(config: &Config, bound: SocketAddr) -> Self {
        let port = bound.port();
        let ip = bound.ip();
        // On every interface no one address is "the" address: GitHub needs a public
        // one, which only the user knows (a port forward, a tunnel, a DNS name).
        let payload_host = if ip.is_unspecified() {
            "HOST".to_owned()
        } else {
            url_host(ip)
        };
        let local = match ip {
            IpAddr::V4(v4) if v4.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(v6) if v6.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
            ip => ip,
        };
        let scheme = if config.tls.is_some() {
            "https"
        } else {
            "http"
        };
        Self {
            listen: bound,
            payload_url: format!("{scheme}://{payload_host}:{port}/api/webhooks/github"),
            dashboard_url: format!("{scheme}://{}:{port}/dashboard", url_host(local)),
            data_dir: std::fs::canonicalize(&config.data_dir)
                .unwrap_or_else(|_| config.data_dir.clone()),
            token_set: config.api_token.is_some(),
            token_file: match &config.api_token_source {
                SecretSource::Generated(path) | SecretSource::LoadedFromFile(path) => {
                    Some(path.clone())
                }
                SecretSource::Configured => None,
            },
        }
    }

    /// Where clients on this machine reach it: `http(s)://address:port`.
    pub fn local_url(&self) -> &str {
        self.dashboard_url.trim_end_matches("/dashboard")
    }

    /// `https` with the built-in TLS, else `http`.
    fn scheme(&self) -> &str {
        self.payload_url.split("://").next().unwrap_or("http")
    }

    /// The dashboard's URL as another machine types it.
    pub fn remote_dashboard(&self) -> String {
        if self.listen.ip().is_unspecified() {
            format!(
                "{}://<this machine's IP address>:{}/dashboard",
                self.scheme(),
                self.listen.port()
            )
        } else {
            self.dashboard_url.clone()
        }
    }

    pub fn lines(&self) -> Vec<String> {
        let ip = self.listen.ip();
        let (scope, payload) = if ip.is_unspecified() {
            (
                "every interface",
                format!(
                    "{} (HOST: the name or address GitHub reaches this machine by: a port \
                     forward, a tunnel or a proxy)",
                    self.payload_url
                ),
            )
        } else if ip.is_loopback() {
            (
                "this machine only",
                format!(
                    "the public URL of the proxy or tunnel that forwards to {}",
                    self.payload_url
                ),
            )
        } else {
            ("this address only", self.payload_url.clone())
        };
        // The token rule (`guard::access`): without one, only loopback clients are served;
        // host names other than IP addresses must be allowed (DNS rebinding).
        let other_machines = self.remote_dashboard();
        let access = match (self.token_set, ip.is_loopback()) {
            (true, _) if self.token_file.is_some() => format!(
                "in {} (mode 0600): clients on this machine need none; {}",
                self.token_file
                    .as_ref()
                    .map_or(String::new(), |p| p.display().to_string()),
                if ip.is_loopback() {
                    "other machines reach the dashboard through a proxy (its host name listed \
                     in HOOKVAULT_ALLOWED_HOSTS) and enter it"
                        .to_owned()
                } else {
                    format!("other machines open {other_machines} and enter it")
                }
            ),
            (true, false) if ip.is_unspecified() => format!(
                "set; other machines open {}://<this machine's IP address>:{}/dashboard \
                 (or a host name listed in HOOKVAULT_ALLOWED_HOSTS) and enter the token",
                self.scheme(),
                self.listen.port()
            ),
            (true, false) => format!(
                "set; other machines open {} and enter the token",
                self.dashboard_url
            ),
            (true, true) => "set; other machines reach the dashboard through the proxy \
                 (its host name listed in HOOKVAULT_ALLOWED_HOSTS) and enter the token"
                .to_owned(),
            (false, loopback) => format!(
                "not set, so the API and dashboard answer clients on this machine only; \
                 for other machines set HOOKVAULT_API_TOKEN (16+ characters){}",
                if loopback {
                    " and listen on 0.0.0.0 or use a proxy"
                } else {
                    ""
                }
            ),
        };
        vec![
            format!("hookvault is listening on {} ({scope})", self.listen),
            format!("  Payload URL for GitHub: {payload}"),
            format!("  Dashboard:              {}", self.dashboard_url),
            format!("  Data directory:         {}", self.data_dir.display()),
            format!("  API token:              {access}"),
        ]
    }
}

/// An address as the host part of a URL (`[…]` around IPv6).
fn url_host(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => format!("[{v6}]"),
    }
}

/// The startup banner: for people on standard output (the terminal, or the journal
/// under systemd), and its facts in the log, once.
pub fn announce(banner: &Banner) {
    println!("{}\n", banner.lines().join("\n"));
    tracing::info!(
        payload_url = %banner.payload_url,
        dashboard_url = %banner.dashboard_url,
        data_dir = %banner.data_dir.display(),
        api_token = match (banner.token_set, &banner.token_file) {
            (true, Some(_)) => "in the data directory",
            (true, None) => "set",
            (false, _) => "not set",
        },
        "where to reach hookvault"
    );
}

/// Prints the API token the first time it is generated, with where to use it; never
/// through the logger.
pub fn announce_token(config: &Config, banner: &Banner) {
    if let (SecretSource::Generated(path), Some(token)) =
        (&config.api_token_source, &config.api_token)
    {
        println!(
            "hookvault: no HOOKVAULT_API_TOKEN set; generated an API token for other machines and \
             saved it to {} (mode 0600).\n\
             Browsers and scripts on this machine need none. From another machine open {} \
             and enter it when the dashboard asks. It is shown only this once:\n\n    {}\n",
            path.display(),
            banner.remote_dashboard(),
            token.expose()
        );
    }
}

/// Says where the webhook secret comes from. The value itself is shown only once,
/// when it is generated, and never through the logger.
pub fn announce_secret(config: &Config) {
    match &config.secret_source {
        SecretSource::Generated(path) => println!(
            "hookvault: no GITHUB_WEBHOOK_SECRET set; generated one and saved it to {} (mode 0600).\n\
             Paste it into GitHub's webhook \"Secret\" field. It is shown only this once:\n\n    {}\n",
            path.display(),
            config.secrets[0].expose()
        ),
        SecretSource::LoadedFromFile(path) => {
            tracing::info!(file = %path.display(), "using the webhook secret saved in the data directory")
        }
        SecretSource::Configured => tracing::info!(
            count = config.secrets.len(),
            "using the configured webhook secret(s)"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Secret;

    fn banner(listen: &str, token: bool) -> Banner {
        let mut config = Config::new("/nonexistent/data", Vec::new());
        config.api_token = token.then(|| Secret::new("a-token-of-16-chars"));
        Banner::new(&config, listen.parse().unwrap())
    }

    #[test]
    fn every_interface_names_a_placeholder_for_github_and_loopback_for_the_dashboard() {
        let b = banner("0.0.0.0:3000", false);
        assert_eq!(b.payload_url, "http://HOST:3000/api/webhooks/github");
        assert_eq!(b.dashboard_url, "http://127.0.0.1:3000/dashboard");
        let text = b.lines().join("\n");
        assert!(text.contains("every interface"), "{text}");
        assert!(text.contains("set HOOKVAULT_API_TOKEN"), "{text}");
        assert!(!text.contains("listen on 0.0.0.0"), "{text}");
        assert!(text.contains("/nonexistent/data"), "{text}");

        let v6 = banner("[::]:8080", true);
        assert_eq!(v6.dashboard_url, "http://[::1]:8080/dashboard");
        assert!(v6.lines()[4].contains("<this machine's IP address>:8080/dashboard"));
    }

    #[test]
    fn a_loopback_listener_points_github_at_a_proxy() {
        let b = banner("127.0.0.1:4000", false);
        let lines = b.lines();
        assert!(lines[0].contains("this machine only"));
        assert!(lines[1].contains("proxy or tunnel that forwards to http://127.0.0.1:4000/"));
        assert!(lines[4].contains("listen on 0.0.0.0 or use a proxy"));
        assert!(banner("127.0.0.1:4000", true).lines()[4].contains("through the proxy"));
    }

    #[test]
    fn with_tls_every_url_is_https() {
        let mut config = Config::new("/nonexistent/data", Vec::new());
        config.api_token = Some(Secret::new("a-token-of-16-chars"));
        config.tls = Some(crate::config::TlsFiles {
            cert: "/etc/hookvault/cert.pem".into(),
            key: "/etc/hookvault/key.pem".into(),
        });
        let b = Banner::new(&config, "0.0.0.0:8443".parse().unwrap());
        assert_eq!(b.payload_url, "https://HOST:8443/api/webhooks/github");
        assert_eq!(b.dashboard_url, "https://127.0.0.1:8443/dashboard");
        assert!(b.lines()[4].contains("https://<this machine's IP address>:8443/dashboard"));
    }

    #[test]
    fn a_specific_address_is_the_payload_url() {
        let b = banner("192.168.1.20:3000", true);
        assert_eq!(
            b.payload_url,
            "http://192.168.1.20:3000/api/webhooks/github"
        );
        assert_eq!(b.dashboard_url, "http://192.168.1.20:3000/dashboard");
        assert_eq!(
            b.lines()[1],
            format!("  Payload URL for GitHub: {}", b.payload_url)
        );
    }
}
