//! Settings from flags and environment variables, validated once at startup. A bad
//! value becomes one [`ConfigError`] line naming the setting; secrets are redacted
//! from every `Debug` output.

use std::fs;
use std::io::Write;
use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Parser;
use ipnet::IpNet;

use crate::domain::IngestFilter;
use crate::guard::{AllowedHosts, CorsOrigins, RateLimit};

mod backfill;
mod nats;
mod tls;
mod token_args;

pub use backfill::{BackfillConfig, GitHubApp};
pub use nats::{NatsAuth, NatsConfig};
pub use tls::TlsFiles;
pub use token_args::{TokenAction, TokenArgs};

/// File in the data directory that holds the generated webhook secret.
pub const SECRET_FILE: &str = "webhook-secret";

/// GitHub caps deliveries at 25 MiB.
pub const MAX_BODY_BYTES: usize = 25 * 1024 * 1024;

/// redb's page cache, MiB. Resident memory after a load follows it nearly byte for
/// byte, while ingest does not: the pages a delivery writes are new or scattered
/// (delivery ids are random), and a page the cache misses is still in the OS's.
pub const DEFAULT_CACHE_MB: usize = 32;

/// A secret value (webhook secret or API token). Its `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// The command line. Values are taken as text and validated in [`Config::from_cli`],
/// so every bad value gets the same one-line error.
#[derive(Debug, Parser)]
#[command(name = "hookvault", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub settings: Settings,
}

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Receive, store and serve webhooks (the default).
    Serve,
    /// Recount every materialized counter and index entry from the stored events and
    /// report any difference (exit 1 on a mismatch). Run it on a stopped instance.
    Verify,
    /// Rebuild the search index from the store, with a progress line. Run it on a
    /// stopped instance.
    Reindex,
    /// Write stored deliveries as NDJSON (headers, payload, receive time, status),
    /// oldest first, to standard output or --output.
    Export(ExportArgs),
    /// Read NDJSON made by export (from a file or standard input) into the store,
    /// deduplicated by delivery id, then process what was imported.
    Import(ImportArgs),
    /// Rewrite the database file without its free pages. Run it on a stopped instance.
    Compact,
    /// Follow a hookvault's stored events over Socket.IO and POST each to a local URL
    /// as GitHub sent it, exactly once and in order, resuming where it stopped.
    Relay(RelayArgs),
    /// Download a consistent backup of a running instance (GET /api/backup) to a
    /// file, and check it whole.
    Backup(BackupArgs),
    /// Lay out a backup made by `backup` in --data-dir (new or empty), for a stopped
    /// instance to start from.
    Restore(RestoreArgs),
    /// Ask a running instance to reconcile with GitHub's delivery log now
    /// (POST /api/backfill) and print what it found and redelivered.
    Backfill(BackfillArgs),
    /// Create, list or revoke scoped API tokens on a running instance (/api/tokens).
    Token(TokenArgs),
}

#[derive(Debug, clap::Args)]
pub struct BackfillArgs {
    /// The running instance (default: this machine at --listen's port, https with
    /// --tls-cert).
    #[arg(long)]
    pub url: Option<String>,
    /// How far back to look in GitHub's delivery log: 90m, 12h, 3d (GitHub keeps 3
    /// days on github.com, more on GHES).
    #[arg(long, default_value = "3d")]
    pub since: String,
    /// List what is missing without asking GitHub to redeliver anything.
    #[arg(long)]
    pub dry_run: bool,
    /// The API token (default: HOOKVAULT_API_TOKEN).
    #[arg(long)]
    pub token: Option<String>,
}

#[derive(Debug, clap::Args)]
pub struct BackupArgs {
    /// The file to write (replaced once the download is complete and checked).
    #[arg(long)]
    pub to: PathBuf,
    /// The running instance (default: this machine at --listen's port, https with
    /// --tls-cert).
    #[arg(long)]
    pub url: Option<String>,
    /// The API token (default: HOOKVAULT_API_TOKEN).
    #[arg(long)]
    pub token: Option<String>,
}

#[derive(Debug, clap::Args)]
pub struct RestoreArgs {
    /// The backup file.
    #[arg(long)]
    pub from: PathBuf,
}

#[derive(Debug, clap::Args)]
pub struct ExportArgs {
    #[arg(long)]
    pub repository: Option<String>,
    #[arg(long)]
    pub event: Option<String>,
    #[arg(long)]
    pub action: Option<String>,
    /// pending, processed or failed.
    #[arg(long)]
    pub status: Option<String>,
    /// RFC 3339 time or YYYY-MM-DD, inclusive.
    #[arg(long)]
    pub start_date: Option<String>,
    /// RFC 3339 time or YYYY-MM-DD, inclusive.
    #[arg(long)]
    pub end_date: Option<String>,
    /// File to write (default: standard output).
    #[arg(long, short)]
    pub output: Option<PathBuf>,
}

/// `hookvault relay`. The API token may also come from `--api-token` /
/// `HOOKVAULT_API_TOKEN`, and the secret to sign again with is `--secret` /
/// `GITHUB_WEBHOOK_SECRET` (the first, if a list).
#[derive(Debug, clap::Args)]
pub struct RelayArgs {
    /// The hookvault to follow: its base URL, e.g. https://hooks.example.net.
    #[arg(long)]
    pub from: String,
    /// The local URL each delivery is POSTed to, e.g. http://localhost:3000/webhook.
    #[arg(long)]
    pub to: String,
    /// API token of the hookvault at --from (default: HOOKVAULT_API_TOKEN).
    #[arg(long, value_parser = parse_secret)]
    pub token: Option<Secret>,
    /// File that keeps the last sequence id delivered (default: one per --from and
    /// --to under $XDG_STATE_HOME/hookvault/ or ~/.local/state/hookvault/).
    #[arg(long)]
    pub state: Option<PathBuf>,
    /// Without a state file, start after this sequence id (0: every stored event);
    /// default: only events stored from now on.
    #[arg(long)]
    pub since: Option<u64>,
    /// Seconds the local URL may take to answer one delivery.
    #[arg(long, default_value_t = 30)]
    pub timeout: u64,
}

fn parse_secret(value: &str) -> Result<Secret, std::convert::Infallible> {
    Ok(Secret::new(value))
}

#[derive(Debug, clap::Args)]
pub struct ImportArgs {
    /// NDJSON file to read (default: standard input).
    pub input: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
pub struct Settings {
    /// Address to listen on (host:port).
    #[arg(long, env = "HOOKVAULT_LISTEN", global = true)]
    listen: Option<String>,
    /// Port to listen on all interfaces, when HOOKVAULT_LISTEN is not set.
    #[arg(long, env = "PORT", global = true, hide = true)]
    port: Option<String>,
    /// Directory for the database and the generated secret.
    #[arg(
        long,
        env = "HOOKVAULT_DATA_DIR",
        default_value = "./data",
        global = true
    )]
    data_dir: PathBuf,
    /// Webhook secret(s), comma-separated; any one may match (rotation).
    #[arg(
        long,
        env = "GITHUB_WEBHOOK_SECRET",
        hide_env_values = true,
        global = true
    )]
    secret: Option<String>,
    /// Content-dedup window in milliseconds (0 turns content dedup off).
    #[arg(
        long,
        env = "WEBHOOK_DEDUP_TTL",
        default_value = "60000",
        global = true
    )]
    dedup_ttl: String,
    /// Automatic processing retries before an event stays failed.
    #[arg(long, env = "WEBHOOK_MAX_RETRIES", default_value = "3", global = true)]
    max_retries: String,
    /// Bearer token required by the API, Socket.IO and the dashboard.
    #[arg(
        long,
        env = "HOOKVAULT_API_TOKEN",
        hide_env_values = true,
        global = true
    )]
    api_token: Option<String>,
    /// Accept deliveries whose User-Agent is not GitHub-Hookshot/* (proxies that rewrite it).
    #[arg(long, env = "HOOKVAULT_NO_UA_CHECK", global = true)]
    no_ua_check: bool,
    /// Seconds a client may take to send the request headers.
    #[arg(
        long,
        env = "HOOKVAULT_HEADER_TIMEOUT",
        default_value = "10",
        global = true
    )]
    header_timeout: String,
    /// Seconds a connection may stay open without a request in flight.
    #[arg(
        long,
        env = "HOOKVAULT_IDLE_TIMEOUT",
        default_value = "60",
        global = true
    )]
    idle_timeout: String,
    /// Open connections at most (WebSockets included); default three quarters of
    /// the open-files limit. At the cap the longest idle connection is closed.
    #[arg(long, env = "HOOKVAULT_MAX_CONNECTIONS", global = true)]
    max_connections: Option<String>,
    /// Seconds a client may take to send the request body.
    #[arg(
        long,
        env = "HOOKVAULT_BODY_TIMEOUT",
        default_value = "30",
        global = true
    )]
    body_timeout: String,
    /// Milliseconds before the first automatic retry of a failed event; each further
    /// retry waits twice as long (capped at 300 times this).
    #[arg(
        long,
        env = "HOOKVAULT_RETRY_BASE_MS",
        default_value = "1000",
        global = true
    )]
    retry_base_ms: String,
    /// Delete events older than this many days (default: keep everything).
    #[arg(long, env = "HOOKVAULT_RETENTION_DAYS", global = true)]
    retention_days: Option<String>,
    /// Retire the oldest events while stored payloads (compressed) exceed this many MiB.
    #[arg(long, env = "HOOKVAULT_MAX_PAYLOAD_MB", global = true)]
    max_payload_mb: Option<String>,
    /// Milliseconds between Socket.IO `/monitoring` updates.
    #[arg(
        long,
        env = "HOOKVAULT_MONITOR_INTERVAL_MS",
        default_value = "5000",
        global = true
    )]
    monitor_interval_ms: String,
    /// Proxies (IPs or CIDR ranges, comma-separated) whose X-Forwarded-For or
    /// Forwarded header names the client. Nobody else's is believed.
    #[arg(long, env = "HOOKVAULT_TRUSTED_PROXIES", global = true)]
    trusted_proxies: Option<String>,
    /// API requests per second per client address (bursts of twice that); 0 turns
    /// the limit off. The ingest endpoint is not counted.
    #[arg(
        long,
        env = "HOOKVAULT_RATE_LIMIT",
        default_value = "50",
        global = true
    )]
    rate_limit: String,
    /// Browser origins allowed to call the API (comma-separated, or *); none by default.
    #[arg(long, env = "HOOKVAULT_CORS_ORIGINS", global = true)]
    cors_origins: Option<String>,
    /// Host names the API, dashboard and Socket.IO answer to besides localhost and IP
    /// addresses (comma-separated; `.example.com` for every subdomain; * for any).
    /// Protects against DNS rebinding; the ingest endpoint answers any host.
    #[arg(long, env = "HOOKVAULT_ALLOWED_HOSTS", global = true)]
    allowed_hosts: Option<String>,
    /// Deliveries verified and stored at once; more get 503 with Retry-After.
    #[arg(
        long,
        env = "HOOKVAULT_MAX_CONCURRENT_INGEST",
        default_value = "256",
        global = true
    )]
    max_concurrent_ingest: String,
    /// redb page cache in MiB.
    #[arg(long, env = "HOOKVAULT_CACHE_MB", default_value_t = DEFAULT_CACHE_MB.to_string(), global = true)]
    cache_mb: String,
    /// NATS servers (comma-separated URLs) to stream every stored event to; streaming
    /// is off when unset (docs/streaming.md).
    #[arg(
        long,
        env = "HOOKVAULT_NATS_URL",
        hide_env_values = true,
        global = true
    )]
    nats_url: Option<String>,
    /// The JetStream stream events are published to (created when missing).
    #[arg(
        long,
        env = "HOOKVAULT_NATS_STREAM",
        default_value = "HOOKVAULT_EVENTS",
        global = true
    )]
    nats_stream: String,
    /// NATS authentication token.
    #[arg(
        long,
        env = "HOOKVAULT_NATS_TOKEN",
        hide_env_values = true,
        global = true
    )]
    nats_token: Option<String>,
    /// NATS user name (with --nats-password).
    #[arg(long, env = "HOOKVAULT_NATS_USER", global = true)]
    nats_user: Option<String>,
    /// NATS password (with --nats-user).
    #[arg(
        long,
        env = "HOOKVAULT_NATS_PASSWORD",
        hide_env_values = true,
        global = true
    )]
    nats_password: Option<String>,
    /// NKey seed (`SU…`) to authenticate to NATS with.
    #[arg(
        long,
        env = "HOOKVAULT_NATS_NKEY_SEED",
        hide_env_values = true,
        global = true
    )]
    nats_nkey_seed: Option<String>,
    /// NATS credentials file (JWT and NKey seed, `.creds`).
    #[arg(long, env = "HOOKVAULT_NATS_CREDS", global = true)]
    nats_creds: Option<PathBuf>,
    /// PEM file of the CA certificates that sign the NATS servers' certificates.
    #[arg(long, env = "HOOKVAULT_NATS_TLS_CA", global = true)]
    nats_tls_ca: Option<PathBuf>,
    /// PEM client certificate for NATS (with --nats-tls-key).
    #[arg(long, env = "HOOKVAULT_NATS_TLS_CERT", global = true)]
    nats_tls_cert: Option<PathBuf>,
    /// PEM private key of the NATS client certificate.
    #[arg(long, env = "HOOKVAULT_NATS_TLS_KEY", global = true)]
    nats_tls_key: Option<PathBuf>,
    /// Replicas of the stream, when hookvault creates it (1 to 5).
    #[arg(
        long,
        env = "HOOKVAULT_NATS_REPLICAS",
        default_value = "1",
        global = true
    )]
    nats_replicas: String,
    /// Days JetStream keeps a message, when hookvault creates the stream (default:
    /// no limit).
    #[arg(long, env = "HOOKVAULT_NATS_MAX_AGE_DAYS", global = true)]
    nats_max_age_days: Option<String>,
    /// URLs to forward every stored delivery to, comma-separated (more targets, with
    /// filters, through /api/forwarding/targets; docs/forwarding.md).
    #[arg(long, env = "HOOKVAULT_FORWARD", hide_env_values = true, global = true)]
    forward: Option<String>,
    /// PEM certificate chain to serve HTTPS with (with --tls-key); reloaded on SIGHUP
    /// and when the file changes.
    #[arg(long, env = "HOOKVAULT_TLS_CERT", global = true)]
    tls_cert: Option<PathBuf>,
    /// PEM private key of --tls-cert.
    #[arg(long, env = "HOOKVAULT_TLS_KEY", global = true)]
    tls_key: Option<PathBuf>,
    /// Size of an acknowledgement-log segment in KiB (tests make it small to see
    /// segments rotate and go).
    /// GitHub token to list and redeliver repository and organization hook deliveries
    /// (fine-grained "Webhooks: write", or classic admin:repo_hook / admin:org_hook);
    /// backfill is off without it or a GitHub App (docs/backfill.md).
    #[arg(
        long,
        env = "HOOKVAULT_GITHUB_TOKEN",
        hide_env_values = true,
        global = true
    )]
    github_token: Option<String>,
    /// GitHub App id, for the app's hook deliveries (with --github-app-key).
    #[arg(long, env = "HOOKVAULT_GITHUB_APP_ID", global = true)]
    github_app_id: Option<String>,
    /// The GitHub App's private key, a PEM file.
    #[arg(long, env = "HOOKVAULT_GITHUB_APP_KEY", global = true)]
    github_app_key: Option<PathBuf>,
    /// GitHub's REST API (GHES: https://HOST/api/v3).
    #[arg(
        long,
        env = "HOOKVAULT_GITHUB_API_URL",
        default_value = backfill::DEFAULT_API_URL,
        global = true
    )]
    github_api_url: String,
    /// Hooks to reconcile, comma-separated: repo:OWNER/NAME:ID, org:NAME:ID, app
    /// (default: those named by the stored deliveries' X-GitHub-Hook-* headers).
    #[arg(long, env = "HOOKVAULT_BACKFILL_HOOKS", global = true)]
    backfill_hooks: Option<String>,
    /// Minutes between reconciles with GitHub's delivery log (the first at startup);
    /// 0: only on demand.
    #[arg(
        long,
        env = "HOOKVAULT_BACKFILL_INTERVAL",
        default_value = "15",
        global = true
    )]
    backfill_interval: String,
    /// Keep only deliveries matching one of these `field:glob` rules (fields event,
    /// action, repository, organization; comma-separated); others answer `ignored`.
    #[arg(long, env = "HOOKVAULT_INGEST_ALLOW", global = true)]
    ingest_allow: Option<String>,
    /// Ignore deliveries matching any of these `field:glob` rules, e.g.
    /// event:status,repository:octo-org/sandbox-* (docs/api.md#ingest-filters).
    #[arg(long, env = "HOOKVAULT_INGEST_DENY", global = true)]
    ingest_deny: Option<String>,
    #[arg(long, env = "HOOKVAULT_LOG_SEGMENT_KB", default_value_t = (crate::log::SEGMENT_BYTES >> 10).to_string(), global = true, hide = true)]
    log_segment_kb: String,
}

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

/// Where the webhook secrets came from, so startup can say so (without the value,
/// except for the one time a secret is generated).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretSource {
    Configured,
    LoadedFromFile(PathBuf),
    Generated(PathBuf),
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

        Ok(Self {
            listen,
            data_dir: settings.data_dir,
            secrets,
            secret_source,
            dedup_ttl: Duration::from_millis(dedup_ms),
            max_retries,
            retry_base: Duration::from_millis(retry_base_ms.max(1)),
            api_token,
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

fn parse_secret_list(list: &str) -> Result<Vec<Secret>, ConfigError> {
    let secrets: Vec<Secret> = list
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(Secret::new)
        .collect();
    if secrets.is_empty() {
        return Err(ConfigError::new(
            "GITHUB_WEBHOOK_SECRET (--secret)",
            "is set but holds no secret",
        ));
    }
    Ok(secrets)
}

/// Creates the data directory for its owner only (0700, whatever the umask), and
/// takes group and other access away from an existing one: it holds the webhook
/// secret and every payload.
fn prepare_data_dir(dir: &Path) -> Result<(), ConfigError> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    let setting = "HOOKVAULT_DATA_DIR (--data-dir)";
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| ConfigError::new(setting, format!("cannot create {}: {e}", dir.display())))?;
    let mode = fs::metadata(dir)
        .map_err(|e| ConfigError::new(setting, format!("cannot read {}: {e}", dir.display())))?
        .permissions()
        .mode();
    if mode & 0o077 != 0 {
        fs::set_permissions(dir, fs::Permissions::from_mode(mode & 0o700)).map_err(|e| {
            ConfigError::new(
                setting,
                format!("cannot make {} private (mode 0700): {e}", dir.display()),
            )
        })?;
    }
    let probe = dir.join(".write-test");
    fs::write(&probe, b"ok")
        .and_then(|()| fs::remove_file(&probe))
        .map_err(|e| ConfigError::new(setting, format!("{} is not writable: {e}", dir.display())))
}

fn load_or_generate_secret(dir: &Path) -> Result<(Vec<Secret>, SecretSource), ConfigError> {
    let setting = "GITHUB_WEBHOOK_SECRET (--secret)";
    let path = dir.join(SECRET_FILE);
    match fs::read_to_string(&path) {
        Ok(saved) => Ok((
            parse_secret_list(&saved)?,
            SecretSource::LoadedFromFile(path),
        )),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let secret = hex::encode(rand::random::<[u8; 32]>());
            let mut file = fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&path)
                .map_err(|e| {
                    ConfigError::new(setting, format!("cannot save {}: {e}", path.display()))
                })?;
            file.write_all(secret.as_bytes())
                .and_then(|()| file.sync_all())
                .map_err(|e| {
                    ConfigError::new(setting, format!("cannot save {}: {e}", path.display()))
                })?;
            Ok((vec![Secret::new(secret)], SecretSource::Generated(path)))
        }
        Err(e) => Err(ConfigError::new(
            setting,
            format!("cannot read {}: {e}", path.display()),
        )),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
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
        let err = Config::from_cli(settings(&[
            "--data-dir",
            d,
            "--secret",
            "s",
            "--dedup-ttl",
            "soon",
        ]))
        .unwrap_err();
        assert!(err.to_string().contains("WEBHOOK_DEDUP_TTL"), "{err}");
        let err = Config::from_cli(settings(&[
            "--data-dir",
            d,
            "--secret",
            "s",
            "--listen",
            "nowhere",
        ]))
        .unwrap_err();
        assert!(err.to_string().contains("HOOKVAULT_LISTEN"), "{err}");
        let err = Config::from_cli(settings(&["--data-dir", d, "--secret", " , "])).unwrap_err();
        assert!(err.to_string().contains("GITHUB_WEBHOOK_SECRET"), "{err}");
    }
}
