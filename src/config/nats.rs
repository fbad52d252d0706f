//! The NATS streaming settings (`HOOKVAULT_NATS_*`): which servers, how to
//! authenticate, TLS, and the stream hookvault creates. Checked at startup like every
//! other setting; credentials redacted from `Debug`.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::{ConfigError, Secret, Settings, parse_number};

/// How hookvault authenticates to NATS: at most one way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NatsAuth {
    None,
    Token(Secret),
    UserPassword { user: String, password: Secret },
    NkeySeed(Secret),
    CredsFile(PathBuf),
}

/// The stream's name unless `HOOKVAULT_NATS_STREAM` says otherwise: the events
/// stream, and the cluster's log.
pub const DEFAULT_STREAM: &str = "HOOKVAULT_EVENTS";
pub const DEFAULT_CLUSTER_STREAM: &str = "HOOKVAULT_LOG";

/// What NATS is for (`HOOKVAULT_NATS_MODE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NatsMode {
    /// Publish every stored event to a stream for other consumers (docs/streaming.md).
    Stream,
    /// The stream is the log every node of a cluster appends to and applies
    /// (docs/cluster.md).
    Cluster,
}

/// Streaming to NATS JetStream (`HOOKVAULT_NATS_*`, docs/streaming.md), or the
/// cluster's log.
#[derive(Clone, PartialEq, Eq)]
pub struct NatsConfig {
    pub mode: NatsMode,
    /// Server URLs; they may hold credentials, so `Debug` shows only their hosts.
    pub servers: Vec<String>,
    pub stream: String,
    pub auth: NatsAuth,
    pub tls_ca: Option<PathBuf>,
    /// Client certificate and its key.
    pub tls_client: Option<(PathBuf, PathBuf)>,
    /// Used when hookvault creates the stream.
    pub replicas: usize,
    /// Used when hookvault creates the stream; `None`: no limit.
    pub max_age: Option<Duration>,
}

impl NatsConfig {
    /// Settings for the servers at `servers` (comma-separated), with the defaults.
    pub fn new(servers: &str) -> Self {
        Self {
            mode: NatsMode::Stream,
            servers: split_list(servers),
            stream: DEFAULT_STREAM.into(),
            auth: NatsAuth::None,
            tls_ca: None,
            tls_client: None,
            replicas: 1,
            max_age: None,
        }
    }

    pub(super) fn parse(settings: &Settings) -> Result<Option<Self>, ConfigError> {
        let Some(url) = settings
            .nats_url
            .as_deref()
            .filter(|u| !u.trim().is_empty())
        else {
            return Ok(None);
        };
        let mut config = Self::new(url);
        if config.servers.is_empty() {
            return Err(ConfigError::new(
                "HOOKVAULT_NATS_URL (--nats-url)",
                "is set but names no server",
            ));
        }
        for server in &config.servers {
            if server.parse::<async_nats::ServerAddr>().is_err() {
                let host = server.rsplit('@').next().unwrap_or(server);
                return Err(ConfigError::new(
                    "HOOKVAULT_NATS_URL (--nats-url)",
                    format!("{host:?} is not a NATS server URL, e.g. nats://127.0.0.1:4222"),
                ));
            }
        }
        config.mode = match settings.nats_mode.trim() {
            "stream" => NatsMode::Stream,
            "cluster" => NatsMode::Cluster,
            other => {
                return Err(ConfigError::new(
                    "HOOKVAULT_NATS_MODE (--nats-mode)",
                    format!("{other:?} is neither \"stream\" nor \"cluster\""),
                ));
            }
        };
        let cluster = config.mode == NatsMode::Cluster;
        config.stream = match settings.nats_stream.as_deref().map(str::trim) {
            Some(name) => name.to_owned(),
            None if cluster => DEFAULT_CLUSTER_STREAM.into(),
            None => config.stream,
        };
        if config.stream.is_empty()
            || config.stream.chars().any(|c| {
                c.is_whitespace() || c.is_control() || matches!(c, '.' | '*' | '>' | '/' | '\\')
            })
        {
            return Err(ConfigError::new(
                "HOOKVAULT_NATS_STREAM (--nats-stream)",
                format!(
                    "{:?} is not a JetStream stream name (no spaces, '.', '*', '>', '/')",
                    config.stream
                ),
            ));
        }
        let given = |v: &Option<String>| {
            v.as_deref()
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .map(str::to_owned)
        };
        let ways = [
            given(&settings.nats_token).map(|t| NatsAuth::Token(Secret::new(t))),
            match (given(&settings.nats_user), given(&settings.nats_password)) {
                (Some(user), Some(password)) => Some(NatsAuth::UserPassword {
                    user,
                    password: Secret::new(password),
                }),
                (None, None) => None,
                _ => {
                    return Err(ConfigError::new(
                        "HOOKVAULT_NATS_USER (--nats-user)",
                        "needs HOOKVAULT_NATS_PASSWORD (--nats-password), and the other way round",
                    ));
                }
            },
            given(&settings.nats_nkey_seed).map(|s| NatsAuth::NkeySeed(Secret::new(s))),
            settings.nats_creds.clone().map(NatsAuth::CredsFile),
        ];
        let mut ways = ways.into_iter().flatten();
        config.auth = ways.next().unwrap_or(NatsAuth::None);
        if ways.next().is_some() {
            return Err(ConfigError::new(
                "HOOKVAULT_NATS_TOKEN (--nats-token)",
                "set one way to authenticate to NATS: a token, a user and password, an NKey seed or a credentials file",
            ));
        }
        if let NatsAuth::CredsFile(path) = &config.auth {
            readable("HOOKVAULT_NATS_CREDS (--nats-creds)", path)?;
        }
        if let Some(ca) = &settings.nats_tls_ca {
            readable("HOOKVAULT_NATS_TLS_CA (--nats-tls-ca)", ca)?;
            config.tls_ca = Some(ca.clone());
        }
        config.tls_client = match (&settings.nats_tls_cert, &settings.nats_tls_key) {
            (Some(cert), Some(key)) => {
                readable("HOOKVAULT_NATS_TLS_CERT (--nats-tls-cert)", cert)?;
                readable("HOOKVAULT_NATS_TLS_KEY (--nats-tls-key)", key)?;
                Some((cert.clone(), key.clone()))
            }
            (None, None) => None,
            _ => {
                return Err(ConfigError::new(
                    "HOOKVAULT_NATS_TLS_CERT (--nats-tls-cert)",
                    "needs HOOKVAULT_NATS_TLS_KEY (--nats-tls-key), and the other way round",
                ));
            }
        };
        let replicas_setting = "HOOKVAULT_NATS_REPLICAS (--nats-replicas)";
        config.replicas = match settings.nats_replicas.as_deref() {
            Some(raw) => parse_number(replicas_setting, raw)?,
            None if cluster => 3,
            None => 1,
        };
        if !(1..=5).contains(&config.replicas) {
            return Err(ConfigError::new(replicas_setting, "must be from 1 to 5"));
        }
        config.max_age = match settings.nats_max_age_days.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(raw) => {
                let setting = "HOOKVAULT_NATS_MAX_AGE_DAYS (--nats-max-age-days)";
                match parse_number::<u64>(setting, raw)? {
                    0 => {
                        return Err(ConfigError::new(
                            setting,
                            "must be at least 1 day (leave it unset for no limit)",
                        ));
                    }
                    days => Some(Duration::from_secs(days * 86_400)),
                }
            }
        };
        Ok(Some(config))
    }
}

impl std::fmt::Debug for NatsConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // `nats://user:password@host`: only what follows the `@`.
        let hosts: Vec<&str> = self
            .servers
            .iter()
            .map(|s| s.rsplit('@').next().unwrap_or(s))
            .collect();
        f.debug_struct("NatsConfig")
            .field("mode", &self.mode)
            .field("servers", &hosts)
            .field("stream", &self.stream)
            .field("auth", &self.auth)
            .field("tls_ca", &self.tls_ca)
            .field("tls_client", &self.tls_client)
            .field("replicas", &self.replicas)
            .field("max_age", &self.max_age)
            .finish()
    }
}

fn split_list(raw: &str) -> Vec<String> {
    raw.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

fn readable(setting: &'static str, path: &Path) -> Result<(), ConfigError> {
    fs::File::open(path)
        .map(drop)
        .map_err(|e| ConfigError::new(setting, format!("cannot read {}: {e}", path.display())))
}

#[cfg(test)]
mod tests {
    use super::super::Config;
    use super::super::tests::settings;
    use super::*;

    #[test]
    fn nats_settings_are_checked_and_their_secrets_redacted() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().to_str().unwrap();
        let base = ["--data-dir", d, "--secret", "s"];
        let with = |extra: &[&str]| {
            let mut args = base.to_vec();
            args.extend_from_slice(extra);
            Config::from_cli(settings(&args))
        };
        assert_eq!(with(&[]).unwrap().nats, None);
        let nats = with(&[
            "--nats-url",
            "nats://alice:pw-in-url@a:4222, nats://b:4222",
            "--nats-user",
            "alice",
            "--nats-password",
            "hunter2",
            "--nats-max-age-days",
            "7",
        ])
        .unwrap()
        .nats
        .unwrap();
        assert_eq!(nats.servers.len(), 2);
        assert_eq!(nats.mode, NatsMode::Stream);
        assert_eq!(nats.stream, "HOOKVAULT_EVENTS");
        assert_eq!(nats.replicas, 1);
        let cluster = with(&["--nats-url", "nats://a:4222", "--nats-mode", "cluster"])
            .unwrap()
            .nats
            .unwrap();
        assert_eq!(
            (cluster.mode, cluster.stream.as_str(), cluster.replicas),
            (NatsMode::Cluster, "HOOKVAULT_LOG", 3)
        );
        assert_eq!(nats.max_age, Some(Duration::from_secs(7 * 86_400)));
        let shown = format!("{nats:?}");
        assert!(
            !shown.contains("hunter2") && !shown.contains("pw-in-url"),
            "{shown}"
        );

        for (extra, setting) in [
            (
                &["--nats-token", "t", "--nats-nkey-seed", "SU"][..],
                "HOOKVAULT_NATS_TOKEN",
            ),
            (&["--nats-user", "alice"][..], "HOOKVAULT_NATS_USER"),
            (&["--nats-replicas", "7"][..], "HOOKVAULT_NATS_REPLICAS"),
            (&["--nats-mode", "mirror"][..], "HOOKVAULT_NATS_MODE"),
            (&["--nats-stream", "a.b"][..], "HOOKVAULT_NATS_STREAM"),
            (
                &["--nats-creds", "/nonexistent.creds"][..],
                "HOOKVAULT_NATS_CREDS",
            ),
            (
                &["--nats-tls-cert", "/etc/hostname"][..],
                "HOOKVAULT_NATS_TLS_CERT",
            ),
        ] {
            let mut args = vec!["--nats-url", "nats://127.0.0.1:4222"];
            args.extend_from_slice(extra);
            let err = with(&args).unwrap_err();
            assert!(err.to_string().contains(setting), "{extra:?}: {err}");
        }
    }
}
