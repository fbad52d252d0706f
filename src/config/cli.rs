//! The command line: `hookvault` and its subcommands, and every setting as a flag
//! with its environment variable. Values are text here; [`super::Config`] validates
//! them.

use std::path::PathBuf;

use clap::Parser;

use super::{DEFAULT_CACHE_MB, Secret, TokenArgs, backfill};

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
    pub(super) listen: Option<String>,
    /// Port to listen on all interfaces, when HOOKVAULT_LISTEN is not set.
    #[arg(long, env = "PORT", global = true, hide = true)]
    pub(super) port: Option<String>,
    /// Directory for the database and the generated secret.
    #[arg(
        long,
        env = "HOOKVAULT_DATA_DIR",
        default_value = "./data",
        global = true
    )]
    pub(super) data_dir: PathBuf,
    /// Webhook secret(s), comma-separated; any one may match (rotation).
    #[arg(
        long,
        env = "GITHUB_WEBHOOK_SECRET",
        hide_env_values = true,
        global = true
    )]
    pub(super) secret: Option<String>,
    /// Content-dedup window in milliseconds (0 turns content dedup off).
    #[arg(
        long,
        env = "WEBHOOK_DEDUP_TTL",
        default_value = "60000",
        global = true
    )]
    pub(super) dedup_ttl: String,
    /// Automatic processing retries before an event stays failed.
    #[arg(long, env = "WEBHOOK_MAX_RETRIES", default_value = "3", global = true)]
    pub(super) max_retries: String,
    /// Bearer token required by the API, Socket.IO and the dashboard.
    #[arg(
        long,
        env = "HOOKVAULT_API_TOKEN",
        hide_env_values = true,
        global = true
    )]
    pub(super) api_token: Option<String>,
    /// Accept deliveries whose User-Agent is not GitHub-Hookshot/* (proxies that rewrite it).
    #[arg(long, env = "HOOKVAULT_NO_UA_CHECK", global = true)]
    pub(super) no_ua_check: bool,
    /// Seconds a client may take to send the request headers.
    #[arg(
        long,
        env = "HOOKVAULT_HEADER_TIMEOUT",
        default_value = "10",
        global = true
    )]
    pub(super) header_timeout: String,
    /// Seconds a connection may stay open without a request in flight.
    #[arg(
        long,
        env = "HOOKVAULT_IDLE_TIMEOUT",
        default_value = "60",
        global = true
    )]
    pub(super) idle_timeout: String,
    /// Open connections at most (WebSockets included); default three quarters of
    /// the open-files limit. At the cap the longest idle connection is closed.
    #[arg(long, env = "HOOKVAULT_MAX_CONNECTIONS", global = true)]
    pub(super) max_connections: Option<String>,
    /// Seconds a client may take to send the request body.
    #[arg(
        long,
        env = "HOOKVAULT_BODY_TIMEOUT",
        default_value = "30",
        global = true
    )]
    pub(super) body_timeout: String,
    /// Milliseconds before the first automatic retry of a failed event; each further
    /// retry waits twice as long (capped at 300 times this).
    #[arg(
        long,
        env = "HOOKVAULT_RETRY_BASE_MS",
        default_value = "1000",
        global = true
    )]
    pub(super) retry_base_ms: String,
    /// Delete events older than this many days (default: keep everything).
    #[arg(long, env = "HOOKVAULT_RETENTION_DAYS", global = true)]
    pub(super) retention_days: Option<String>,
    /// Retire the oldest events while stored payloads (compressed) exceed this many MiB.
    #[arg(long, env = "HOOKVAULT_MAX_PAYLOAD_MB", global = true)]
    pub(super) max_payload_mb: Option<String>,
    /// Milliseconds between Socket.IO `/monitoring` updates.
    #[arg(
        long,
        env = "HOOKVAULT_MONITOR_INTERVAL_MS",
        default_value = "5000",
        global = true
    )]
    pub(super) monitor_interval_ms: String,
    /// Proxies (IPs or CIDR ranges, comma-separated) whose X-Forwarded-For or
    /// Forwarded header names the client. Nobody else's is believed.
    #[arg(long, env = "HOOKVAULT_TRUSTED_PROXIES", global = true)]
    pub(super) trusted_proxies: Option<String>,
    /// API requests per second per client address (bursts of twice that); 0 turns
    /// the limit off. The ingest endpoint is not counted.
    #[arg(
        long,
        env = "HOOKVAULT_RATE_LIMIT",
        default_value = "50",
        global = true
    )]
    pub(super) rate_limit: String,
    /// Browser origins allowed to call the API (comma-separated, or *); none by default.
    #[arg(long, env = "HOOKVAULT_CORS_ORIGINS", global = true)]
    pub(super) cors_origins: Option<String>,
    /// Host names the API, dashboard and Socket.IO answer to besides localhost and IP
    /// addresses (comma-separated; `.example.com` for every subdomain; * for any).
    /// Protects against DNS rebinding; the ingest endpoint answers any host.
    #[arg(long, env = "HOOKVAULT_ALLOWED_HOSTS", global = true)]
    pub(super) allowed_hosts: Option<String>,
    /// Deliveries verified and stored at once; more get 503 with Retry-After.
    #[arg(
        long,
        env = "HOOKVAULT_MAX_CONCURRENT_INGEST",
        default_value = "256",
        global = true
    )]
    pub(super) max_concurrent_ingest: String,
    /// redb page cache in MiB.
    #[arg(long, env = "HOOKVAULT_CACHE_MB", default_value_t = DEFAULT_CACHE_MB.to_string(), global = true)]
    pub(super) cache_mb: String,
    /// NATS servers (comma-separated URLs) to stream every stored event to; streaming
    /// is off when unset (docs/streaming.md).
    #[arg(
        long,
        env = "HOOKVAULT_NATS_URL",
        hide_env_values = true,
        global = true
    )]
    pub(super) nats_url: Option<String>,
    /// What NATS is for: `stream` publishes every stored event to a stream for
    /// other consumers; `cluster` makes a replicated JetStream stream the log several
    /// hookvault nodes share (docs/cluster.md).
    #[arg(
        long,
        env = "HOOKVAULT_NATS_MODE",
        default_value = "stream",
        global = true
    )]
    pub(super) nats_mode: String,
    /// The JetStream stream (created when missing): default HOOKVAULT_EVENTS, or
    /// HOOKVAULT_LOG in cluster mode.
    #[arg(long, env = "HOOKVAULT_NATS_STREAM", global = true)]
    pub(super) nats_stream: Option<String>,
    /// NATS authentication token.
    #[arg(
        long,
        env = "HOOKVAULT_NATS_TOKEN",
        hide_env_values = true,
        global = true
    )]
    pub(super) nats_token: Option<String>,
    /// NATS user name (with --nats-password).
    #[arg(long, env = "HOOKVAULT_NATS_USER", global = true)]
    pub(super) nats_user: Option<String>,
    /// NATS password (with --nats-user).
    #[arg(
        long,
        env = "HOOKVAULT_NATS_PASSWORD",
        hide_env_values = true,
        global = true
    )]
    pub(super) nats_password: Option<String>,
    /// NKey seed (`SU…`) to authenticate to NATS with.
    #[arg(
        long,
        env = "HOOKVAULT_NATS_NKEY_SEED",
        hide_env_values = true,
        global = true
    )]
    pub(super) nats_nkey_seed: Option<String>,
    /// NATS credentials file (JWT and NKey seed, `.creds`).
    #[arg(long, env = "HOOKVAULT_NATS_CREDS", global = true)]
    pub(super) nats_creds: Option<PathBuf>,
    /// PEM file of the CA certificates that sign the NATS servers' certificates.
    #[arg(long, env = "HOOKVAULT_NATS_TLS_CA", global = true)]
    pub(super) nats_tls_ca: Option<PathBuf>,
    /// PEM client certificate for NATS (with --nats-tls-key).
    #[arg(long, env = "HOOKVAULT_NATS_TLS_CERT", global = true)]
    pub(super) nats_tls_cert: Option<PathBuf>,
    /// PEM private key of the NATS client certificate.
    #[arg(long, env = "HOOKVAULT_NATS_TLS_KEY", global = true)]
    pub(super) nats_tls_key: Option<PathBuf>,
    /// Replicas of the stream, when hookvault creates it (1 to 5): default 1, or 3
    /// in cluster mode.
    #[arg(long, env = "HOOKVAULT_NATS_REPLICAS", global = true)]
    pub(super) nats_replicas: Option<String>,
    /// Days JetStream keeps a message, when hookvault creates the stream (default:
    /// no limit).
    #[arg(long, env = "HOOKVAULT_NATS_MAX_AGE_DAYS", global = true)]
    pub(super) nats_max_age_days: Option<String>,
    /// URLs to forward every stored delivery to, comma-separated (more targets, with
    /// filters, through /api/forwarding/targets; docs/forwarding.md).
    #[arg(long, env = "HOOKVAULT_FORWARD", hide_env_values = true, global = true)]
    pub(super) forward: Option<String>,
    /// PEM certificate chain to serve HTTPS with (with --tls-key); reloaded on SIGHUP
    /// and when the file changes.
    #[arg(long, env = "HOOKVAULT_TLS_CERT", global = true)]
    pub(super) tls_cert: Option<PathBuf>,
    /// PEM private key of --tls-cert.
    #[arg(long, env = "HOOKVAULT_TLS_KEY", global = true)]
    pub(super) tls_key: Option<PathBuf>,
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
    pub(super) github_token: Option<String>,
    /// GitHub App id, for the app's hook deliveries (with --github-app-key).
    #[arg(long, env = "HOOKVAULT_GITHUB_APP_ID", global = true)]
    pub(super) github_app_id: Option<String>,
    /// The GitHub App's private key, a PEM file.
    #[arg(long, env = "HOOKVAULT_GITHUB_APP_KEY", global = true)]
    pub(super) github_app_key: Option<PathBuf>,
    /// GitHub's REST API (GHES: https://HOST/api/v3).
    #[arg(
        long,
        env = "HOOKVAULT_GITHUB_API_URL",
        default_value = backfill::DEFAULT_API_URL,
        global = true
    )]
    pub(super) github_api_url: String,
    /// Hooks to reconcile, comma-separated: repo:OWNER/NAME:ID, org:NAME:ID, app
    /// (default: those named by the stored deliveries' X-GitHub-Hook-* headers).
    #[arg(long, env = "HOOKVAULT_BACKFILL_HOOKS", global = true)]
    pub(super) backfill_hooks: Option<String>,
    /// Minutes between reconciles with GitHub's delivery log (the first at startup);
    /// 0: only on demand.
    #[arg(
        long,
        env = "HOOKVAULT_BACKFILL_INTERVAL",
        default_value = "15",
        global = true
    )]
    pub(super) backfill_interval: String,
    /// Keep only deliveries matching one of these `field:glob` rules (fields event,
    /// action, repository, organization; comma-separated); others answer `ignored`.
    #[arg(long, env = "HOOKVAULT_INGEST_ALLOW", global = true)]
    pub(super) ingest_allow: Option<String>,
    /// Ignore deliveries matching any of these `field:glob` rules, e.g.
    /// event:status,repository:octo-org/sandbox-* (docs/api.md#ingest-filters).
    #[arg(long, env = "HOOKVAULT_INGEST_DENY", global = true)]
    pub(super) ingest_deny: Option<String>,
    #[arg(long, env = "HOOKVAULT_LOG_SEGMENT_KB", default_value_t = (crate::log::SEGMENT_BYTES >> 10).to_string(), global = true, hide = true)]
    pub(super) log_segment_kb: String,
}
