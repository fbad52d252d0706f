//! Settings from flags and environment variables, validated once at startup. A bad
//! value becomes one [`ConfigError`] line naming the setting; secrets are redacted
//! from every `Debug` output.
//!
//! [`cli`] is the command line as text, this file the validated [`Config`],
//! [`secret`] the secrets and the data directory's secret file, and the rest one file
//! per feature's settings ([`backfill`], [`edge`], [`nats`], [`tls`]).

use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::path::PathBuf;
use std::time::Duration;

use ipnet::IpNet;

use crate::domain::IngestFilter;

mod backfill;
mod cli;
mod edge;
mod nats;
mod secret;
mod tls;
mod token_args;

pub use backfill::{BackfillConfig, GitHubApp};
pub use cli::{
    BackfillArgs, BackupArgs, Cli, Command, ExportArgs, ImportArgs, RelayArgs, RestoreArgs,
    Settings,
};
pub use edge::{AllowedHosts, CorsOrigins, RateLimit};
pub use nats::{DEFAULT_CLUSTER_STREAM, DEFAULT_STREAM, NatsAuth, NatsConfig, NatsMode};
pub use secret::{SECRET_FILE, Secret, SecretSource, TOKEN_FILE};
use secret::{
    load_or_generate_secret, load_or_generate_token, parse_secret_list, prepare_data_dir,
};
pub use tls::TlsFiles;
pub use token_args::{TokenAction, TokenArgs};

/// GitHub caps deliveries at 25 MiB.
pub const MAX_BODY_BYTES: usize = 25 * 1024 * 1024;

/// redb's page cache, MiB. Resident memory after a load follows it nearly byte for
/// byte, while ingest does not: the pages a delivery writes are new or scattered
/// (delivery ids are random), and a page the cache misses is still in the OS's.
pub const DEFAULT_CACHE_MB: usize = 32;

/// A setting that stops startup: printed as one line, exit code 2.
#[derive(Debug, thiserror::Error)]
#[error("invalid setting {setting}: {problem}")]
pub struct ConfigError {
    pub setting: &'static str,
    pub problem: String,
}

impl ConfigError {
    pub fn new(setting: &'static str, problem: impl Into<String>) -> Self {
        Self {
            setting,
            problem: problem.into(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Purpose {
    Serve,
    Offline,
}

/// Validated settings.
#[derive(Debug, Clone)]
pub struct Config {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    pub secrets: Vec<Secret>,
    pub secret_source: SecretSource,
    pub dedup_ttl: Duration,
    pub max_retries: u32,
    pub retry_base: Duration,
    pub api_token: Option<Secret>,
    /// Where the API token came from: `Configured` (or none), or the data directory's
    /// `api-token`, in which case clients on this machine need no token.
    pub api_token_source: SecretSource,
    pub check_user_agent: bool,
    /// From accept to a complete request head (HTTP/1 and HTTP/2).
    pub header_timeout: Duration,
    /// With no request in flight.
    pub idle_timeout: Duration,
    pub max_connections: usize,
    pub body_timeout: Duration,
    pub cache_bytes: usize,
    pub log_segment_bytes: u64,
    pub monitor_interval: Duration,
    pub retention_days: Option<u32>,
    /// Size cap on stored (compressed) payloads.
    pub max_payload_bytes: Option<u64>,
    /// How often retention looks for expired events when it has nothing to do.
    pub retention_interval: Duration,
    pub trusted_proxies: Vec<IpNet>,
    /// `None`: no per-client API rate limit.
    pub rate_limit: Option<RateLimit>,
    pub cors_origins: CorsOrigins,
    pub allowed_hosts: AllowedHosts,
    pub max_concurrent_ingest: usize,
    /// Streaming to NATS JetStream; `None`: off.
    pub nats: Option<NatsConfig>,
    /// `HOOKVAULT_FORWARD`: a target for each URL, every event.
    pub forward: Vec<String>,
    /// HTTPS with these files; `None`: plain HTTP.
    pub tls: Option<TlsFiles>,
    /// Reconciling with GitHub's delivery log; off without credentials.
    pub backfill: BackfillConfig,
    /// `HOOKVAULT_INGEST_ALLOW` / `_DENY`: the ingest filter at startup.
    pub ingest_filter: IngestFilter,
}

impl Config {
    /// Whether clients on this machine (direct loopback) may call without a token:
    /// when none is set, or the token is the one kept in the data directory.
    pub fn local_without_token(&self) -> bool {
        self.api_token.is_none() || !matches!(self.api_token_source, SecretSource::Configured)
    }

    /// Defaults for a data directory, with the given secrets: what tests and
    /// embedders start from.
    pub fn new(data_dir: impl Into<PathBuf>, secrets: Vec<Secret>) -> Self {
        Self {
            listen: SocketAddr::from(([0, 0, 0, 0], 3000)),
            data_dir: data_dir.into(),
            secrets,
            secret_source: SecretSource::Configured,
            dedup_ttl: Duration::from_millis(60_000),
            max_retries: 3,
            retry_base: Duration::from_secs(1),
            api_token: None,
            api_token_source: SecretSource::Configured,
            check_user_agent: true,
            header_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            max_connections: default_max_connections(),
            body_timeout: Duration::from_secs(30),
            cache_bytes: DEFAULT_CACHE_MB * 1024 * 1024,
            log_segment_bytes: crate::log::SEGMENT_BYTES,
            monitor_interval: Duration::from_secs(5),
            retention_days: None,
            max_payload_bytes: None,
            retention_interval: Duration::from_secs(60),
            trusted_proxies: Vec::new(),
            rate_limit: NonZeroU32::new(50).map(|per_second| RateLimit { per_second }),
            cors_origins: CorsOrigins::Closed,
            allowed_hosts: AllowedHosts::default(),
            max_concurrent_ingest: 256,
            nats: None,
            forward: Vec::new(),
            tls: None,
            backfill: BackfillConfig::default(),
            ingest_filter: IngestFilter::default(),
        }
    }

    /// Validates every setting, prepares the data directory and loads or generates
    /// the webhook secret: what `serve` needs.
    pub fn from_cli(settings: Settings) -> Result<Self, ConfigError> {
        Self::parse(settings, Purpose::Serve)
    }

    /// Validates every setting for a command on a stopped store: creates nothing and
    /// generates no secret (only `serve` does).
    pub fn offline(settings: Settings) -> Result<Self, ConfigError> {
        Self::parse(settings, Purpose::Offline)
    }

    fn parse(settings: Settings, purpose: Purpose) -> Result<Self, ConfigError> {
        let listen = match (&settings.listen, &settings.port) {
            (Some(addr), _) => addr.parse().map_err(|_| {
                ConfigError::new(
                    "HOOKVAULT_LISTEN (--listen)",
                    format!("{addr:?} is not host:port, e.g. 0.0.0.0:3000"),
                )
            })?,
            (None, Some(port)) => {
                let port: u16 = parse_number("PORT", port)?;
                SocketAddr::from(([0, 0, 0, 0], port))
            }
            (None, None) => SocketAddr::from(([0, 0, 0, 0], 3000)),
        };
        let dedup_ms: u64 = parse_number("WEBHOOK_DEDUP_TTL (--dedup-ttl)", &settings.dedup_ttl)?;
        let max_retries =
            parse_number("WEBHOOK_MAX_RETRIES (--max-retries)", &settings.max_retries)?;
        let retry_base_ms: u64 = parse_number(
            "HOOKVAULT_RETRY_BASE_MS (--retry-base-ms)",
            &settings.retry_base_ms,
        )?;
        let header_timeout = parse_seconds(
            "HOOKVAULT_HEADER_TIMEOUT (--header-timeout)",
            &settings.header_timeout,
        )?;
        let idle_timeout = parse_seconds(
            "HOOKVAULT_IDLE_TIMEOUT (--idle-timeout)",
            &settings.idle_timeout,
        )?;
        let max_connections = match settings.max_connections.as_deref().map(str::trim) {
            None | Some("") => default_max_connections(),
            Some(raw) => {
                match parse_number::<usize>("HOOKVAULT_MAX_CONNECTIONS (--max-connections)", raw)? {
                    0 => {
                        return Err(ConfigError::new(
                            "HOOKVAULT_MAX_CONNECTIONS (--max-connections)",
                            "must be at least 1",
                        ));
                    }
                    n => n,
                }
            }
        };
        let body_timeout = parse_seconds(
            "HOOKVAULT_BODY_TIMEOUT (--body-timeout)",
            &settings.body_timeout,
        )?;
        let monitor_ms: u64 = parse_number(
            "HOOKVAULT_MONITOR_INTERVAL_MS (--monitor-interval-ms)",
            &settings.monitor_interval_ms,
        )?;
        let retention_days = match settings.retention_days.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(raw) => {
                match parse_number::<u32>("HOOKVAULT_RETENTION_DAYS (--retention-days)", raw)? {
                    0 => {
                        return Err(ConfigError::new(
                            "HOOKVAULT_RETENTION_DAYS (--retention-days)",
                            "must be at least 1 day (leave it unset to keep everything)",
                        ));
                    }
                    days => Some(days),
                }
            }
        };
        let max_payload_bytes = match settings.max_payload_mb.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(raw) => {
                Some(parse_number::<u64>("HOOKVAULT_MAX_PAYLOAD_MB (--max-payload-mb)", raw)? << 20)
            }
        };
        let cache_mb: usize = parse_number("HOOKVAULT_CACHE_MB (--cache-mb)", &settings.cache_mb)?;
        let log_segment_kb: u64 = parse_number(
            "HOOKVAULT_LOG_SEGMENT_KB (--log-segment-kb)",
            &settings.log_segment_kb,
        )?;
        let api_token = match settings.api_token.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(token) if token.len() < 16 => {
                return Err(ConfigError::new(
                    "HOOKVAULT_API_TOKEN (--api-token)",
                    "must be at least 16 characters",
                ));
            }
            Some(token) => Some(Secret::new(token)),
        };

        let trusted_proxies = parse_trusted_proxies(settings.trusted_proxies.as_deref())?;
        let rate_limit = NonZeroU32::new(parse_number(
            "HOOKVAULT_RATE_LIMIT (--rate-limit)",
            &settings.rate_limit,
        )?)
        .map(|per_second| RateLimit { per_second });
        let cors_origins = CorsOrigins::parse(settings.cors_origins.as_deref().unwrap_or(""))
            .map_err(|problem| {
                ConfigError::new("HOOKVAULT_CORS_ORIGINS (--cors-origins)", problem)
            })?;
        let allowed_hosts = AllowedHosts::parse(settings.allowed_hosts.as_deref().unwrap_or(""))
            .map_err(|problem| {
                ConfigError::new("HOOKVAULT_ALLOWED_HOSTS (--allowed-hosts)", problem)
            })?;
        let max_concurrent_ingest: usize = parse_number(
            "HOOKVAULT_MAX_CONCURRENT_INGEST (--max-concurrent-ingest)",
            &settings.max_concurrent_ingest,
        )?;
        if max_concurrent_ingest == 0 {
            return Err(ConfigError::new(
                "HOOKVAULT_MAX_CONCURRENT_INGEST (--max-concurrent-ingest)",
                "must be at least 1",
            ));
        }

        let nats = NatsConfig::parse(&settings)?;
        let forward: Vec<String> = settings
            .forward
            .as_deref()
            .unwrap_or("")
            .split(',')
            .map(str::trim)
            .filter(|url| !url.is_empty())
            .map(str::to_owned)
            .collect();
        crate::forward::settings_targets(&forward)
            .map_err(|e| ConfigError::new("HOOKVAULT_FORWARD (--forward)", e.to_string()))?;
        let tls = TlsFiles::parse(&settings, purpose == Purpose::Serve)?;
        let backfill = BackfillConfig::parse(&settings)?;
        let ingest_filter = parse_ingest_filter(&settings)?;

        if purpose == Purpose::Serve {
            prepare_data_dir(&settings.data_dir)?;
        }
        let (secrets, secret_source) = match (settings.secret.as_deref(), purpose) {
            (Some(list), _) => (parse_secret_list(list)?, SecretSource::Configured),
            (None, Purpose::Serve) => load_or_generate_secret(&settings.data_dir)?,
            (None, Purpose::Offline) => (Vec::new(), SecretSource::Configured),
        };
        let (api_token, api_token_source) = match (api_token, purpose) {
            (None, Purpose::Serve) => {
                let (token, source) = load_or_generate_token(&settings.data_dir)?;
                (Some(token), source)
            }
            (token, _) => (token, SecretSource::Configured),
        };

        Ok(Self {
            listen,
            data_dir: settings.data_dir,
            secrets,
            secret_source,
            dedup_ttl: Duration::from_millis(dedup_ms),
            max_retries,
            retry_base: Duration::from_millis(retry_base_ms.max(1)),
            api_token,
            api_token_source,
            check_user_agent: !settings.no_ua_check,
            header_timeout,
            idle_timeout,
            max_connections,
            body_timeout,
            cache_bytes: cache_mb * 1024 * 1024,
            log_segment_bytes: log_segment_kb.max(1) << 10,
            monitor_interval: Duration::from_millis(monitor_ms.max(100)),
            retention_days,
            max_payload_bytes,
            retention_interval: Duration::from_secs(60),
            trusted_proxies,
            rate_limit,
            cors_origins,
            allowed_hosts,
            max_concurrent_ingest,
            nats,
            forward,
            tls,
            backfill,
            ingest_filter,
        })
    }
}

fn parse_ingest_filter(settings: &Settings) -> Result<IngestFilter, ConfigError> {
    let allow = settings.ingest_allow.as_deref().unwrap_or("");
    let deny = settings.ingest_deny.as_deref().unwrap_or("");
    IngestFilter::from_lists(allow, "")
        .map_err(|e| ConfigError::new("HOOKVAULT_INGEST_ALLOW (--ingest-allow)", e.0))?;
    IngestFilter::from_lists("", deny)
        .map_err(|e| ConfigError::new("HOOKVAULT_INGEST_DENY (--ingest-deny)", e.0))?;
    IngestFilter::from_lists(allow, deny)
        .map_err(|e| ConfigError::new("HOOKVAULT_INGEST_DENY (--ingest-deny)", e.0))
}

/// Three quarters of the soft open-files limit (the rest is for the database, the
/// search index's segments and logs), so a pile of connections cannot starve them.
/// Linux reports the limit in `/proc/self/limits`; elsewhere 1024 is assumed.
pub fn default_max_connections() -> usize {
    let soft = std::fs::read_to_string("/proc/self/limits")
        .ok()
        .and_then(|limits| {
            let line = limits
                .lines()
                .find(|l| l.starts_with("Max open files"))?
                .to_owned();
            match line.split_whitespace().nth(3)? {
                "unlimited" => Some(usize::MAX),
                n => n.parse::<usize>().ok(),
            }
        })
        .unwrap_or(1024);
    (soft / 4 * 3).clamp(64, 100_000)
}

fn parse_trusted_proxies(raw: Option<&str>) -> Result<Vec<IpNet>, ConfigError> {
    raw.unwrap_or("")
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|entry| {
            entry
                .parse::<IpNet>()
                .or_else(|_| entry.parse::<std::net::IpAddr>().map(IpNet::from))
                .map_err(|_| {
                    ConfigError::new(
                        "HOOKVAULT_TRUSTED_PROXIES (--trusted-proxies)",
                        format!("{entry:?} is not an IP address or CIDR range"),
                    )
                })
        })
        .collect()
}

fn parse_number<T: std::str::FromStr>(setting: &'static str, raw: &str) -> Result<T, ConfigError> {
    raw.trim()
        .parse()
        .map_err(|_| ConfigError::new(setting, format!("{raw:?} is not a valid whole number")))
}

fn parse_seconds(setting: &'static str, raw: &str) -> Result<Duration, ConfigError> {
    match parse_number::<u64>(setting, raw)? {
        0 => Err(ConfigError::new(setting, "must be at least 1 second")),
        secs => Ok(Duration::from_secs(secs)),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use clap::Parser;
    use std::fs;
    use std::os::unix::fs::PermissionsExt;

    /// The settings a command line parses to (shared with `nats`'s tests).
    pub(crate) fn settings(args: &[&str]) -> Settings {
        let mut argv = vec!["hookvault"];
        argv.extend_from_slice(args);
        Cli::try_parse_from(argv).unwrap().settings
    }

    #[test]
    fn secrets_are_redacted_in_debug_output() {
        let config = Config::new("/tmp/x", vec![Secret::new("hunter2")]);
        assert!(!format!("{config:?}").contains("hunter2"));
    }

    #[test]
    fn comma_separated_secrets_are_all_kept() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().to_str().unwrap();
        let config = Config::from_cli(settings(&["--data-dir", d, "--secret", "a, b,,c"])).unwrap();
        assert_eq!(
            config.secrets,
            vec![Secret::new("a"), Secret::new("b"), Secret::new("c")]
        );
    }

    #[test]
    fn a_generated_secret_is_saved_private_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().to_str().unwrap();
        let first = Config::from_cli(settings(&["--data-dir", d])).unwrap();
        assert!(matches!(first.secret_source, SecretSource::Generated(_)));
        let mode = fs::metadata(dir.path().join(SECRET_FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let second = Config::from_cli(settings(&["--data-dir", d])).unwrap();
        assert!(matches!(
            second.secret_source,
            SecretSource::LoadedFromFile(_)
        ));
        assert_eq!(first.secrets, second.secrets);
        assert_eq!(first.secrets[0].expose().len(), 64);

        // The API token likewise, and clients on this machine need none.
        assert!(matches!(first.api_token_source, SecretSource::Generated(_)));
        let mode = fs::metadata(dir.path().join(TOKEN_FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(first.api_token, second.api_token);
        assert!(matches!(
            second.api_token_source,
            SecretSource::LoadedFromFile(_)
        ));
        assert!(second.local_without_token());
        let set = Config::from_cli(settings(&[
            "--data-dir",
            d,
            "--api-token",
            "a-configured-token-0123",
        ]))
        .unwrap();
        assert_eq!(set.api_token_source, SecretSource::Configured);
        assert!(!set.local_without_token());
    }

    #[test]
    fn the_command_line_and_embedders_get_the_same_cache_default() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().to_str().unwrap();
        let parsed = Config::from_cli(settings(&["--data-dir", d, "--secret", "s"])).unwrap();
        assert_eq!(parsed.cache_bytes, Config::new(d, Vec::new()).cache_bytes);
        assert_eq!(
            parsed.cache_bytes,
            32 << 20,
            "the README's settings table says 32 MiB"
        );
        let raised = Config::from_cli(settings(&[
            "--data-dir",
            d,
            "--secret",
            "s",
            "--cache-mb",
            "256",
        ]));
        assert_eq!(raised.unwrap().cache_bytes, 256 << 20);
    }

    #[test]
    fn bad_values_name_their_setting() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().to_str().unwrap();
        for (flag, value, setting) in [
            ("--dedup-ttl", "soon", "WEBHOOK_DEDUP_TTL"),
            ("--listen", "nowhere", "HOOKVAULT_LISTEN"),
        ] {
            let err = Config::from_cli(settings(&["--data-dir", d, "--secret", "s", flag, value]))
                .unwrap_err();
            assert!(err.to_string().contains(setting), "{err}");
        }
        let err = Config::from_cli(settings(&["--data-dir", d, "--secret", " , "])).unwrap_err();
        assert!(err.to_string().contains("GITHUB_WEBHOOK_SECRET"), "{err}");
    }
}
