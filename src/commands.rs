//! The commands besides `serve`: on a stopped instance `verify`, `reindex`,
//! `export`, `import`, `compact` and `restore`, each opening the store the one way
//! [`open_stopped`] does (which refuses a missing store instead of creating one, and
//! says what to do when a running server holds it); `backup`, a client of a running
//! one; and `relay`, which needs no store: it follows a server.

use std::io::BufRead;
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;

use crate::backup::{self, RestoreError};
use crate::config::{
    BackupArgs, Config, ExportArgs, ImportArgs, RelayArgs, RestoreArgs, SECRET_FILE,
};
use crate::domain::timestamp;
use crate::process::{Processor, RetryPolicy};
use crate::search::{Indexer, SearchIndex};
use crate::store::{self, Status, Store, StoreError, StoreOptions, WriterHandle};
use crate::transfer::{self, ExportFilter};

/// Threads for blocking work (store reads, large-body verification, search). tokio's
/// default of 512 let a burst of reads grow hundreds of threads, each with its own
/// stack and allocator caches, on a machine with two cores to run them.
const BLOCKING_THREADS: usize = 32;

/// The runtime of the server and of every command.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .max_blocking_threads(BLOCKING_THREADS)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// One line, exit code 2: a setting or a data directory that stops a command.
pub fn refuse(error: impl std::fmt::Display) -> ExitCode {
    eprintln!("hookvault: {error}");
    ExitCode::from(2)
}

/// Whether a command may start from an empty data directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Existing {
    Required,
    /// `import` fills a new data directory.
    MayCreate,
}

/// Opens the store of a stopped instance, or says in one line why it cannot.
fn open_stopped(config: &Config, existing: Existing) -> Result<(Store, WriterHandle), ExitCode> {
    let dir = &config.data_dir;
    let file = dir.join(store::DB_FILE);
    if existing == Existing::Required && !file.exists() {
        let what = if dir.exists() {
            format!(
                "{} holds no hookvault store ({} not found)",
                dir.display(),
                store::DB_FILE
            )
        } else {
            format!("there is no data directory {}", dir.display())
        };
        return Err(refuse(format!(
            "{what}; point --data-dir (HOOKVAULT_DATA_DIR) at the directory the server uses"
        )));
    }
    if existing == Existing::MayCreate
        && let Err(e) = std::fs::create_dir_all(dir)
    {
        return Err(refuse(format!("cannot create {}: {e}", dir.display())));
    }
    let options = StoreOptions {
        cache_bytes: config.cache_bytes,
        dedup_ttl: std::time::Duration::ZERO,
        on_commit: None,
        on_append: None,
        log_segment_bytes: config.log_segment_bytes,
        cluster: false,
    };
    Store::open(dir, &options).map_err(|e| match e {
        StoreError::InUse => refuse(format!(
            "the store in {} is in use by a running hookvault: stop the server first \
             (or use its API: GET /api/webhooks/events, /api/webhooks/search)",
            dir.display()
        )),
        other => refuse(format!(
            "cannot open the store in {}: {other}",
            dir.display()
        )),
    })
}

/// Runs `work` on an open stopped store, then closes it cleanly.
fn with_store<T>(
    config: &Config,
    existing: Existing,
    work: impl FnOnce(&Store) -> T,
) -> Result<T, ExitCode> {
    let (store, writer) = open_stopped(config, existing)?;
    let result = work(&store);
    drop(store);
    writer.join();
    Ok(result)
}

fn finish(name: &str, result: anyhow::Result<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("hookvault: {name} failed: {e:#}");
            ExitCode::FAILURE
        }
    }
}

pub fn verify(config: &Config) -> ExitCode {
    let result = with_store(config, Existing::Required, |store| {
        runtime().block_on(store.verify())
    });
    match result {
        Err(code) => code,
        Ok(Ok(differences)) if differences.is_empty() => {
            println!("verify: every counter and index entry matches the stored events");
            ExitCode::SUCCESS
        }
        Ok(Ok(differences)) => {
            for difference in &differences {
                println!("mismatch: {difference}");
            }
            println!("verify: {} difference(s)", differences.len());
            ExitCode::from(1)
        }
        Ok(Err(e)) => finish("verify", Err(e.into())),
    }
}

pub fn reindex(config: &Config) -> ExitCode {
    let result = with_store(config, Existing::Required, |store| {
        runtime().block_on(async {
            let dir = SearchIndex::dir(&config.data_dir);
            if dir.exists() {
                std::fs::remove_dir_all(&dir)?;
            }
            let (index, _, _) = SearchIndex::open(&config.data_dir)?;
            let mut indexer = Indexer::new(store.clone(), index.clone(), None)?;
            let started = std::time::Instant::now();
            indexer
                .catch_up(|docs, _| eprint!("\rreindex: {docs} events indexed"))
                .await?;
            eprintln!(
                "\rreindex: {} events indexed in {:.1} s",
                index.num_docs(),
                started.elapsed().as_secs_f64()
            );
            anyhow::Ok(())
        })
    });
    result.map_or_else(|code| code, |r| finish("reindex", r))
}

pub fn compact(config: &Config) -> ExitCode {
    if let Err(code) = with_store(config, Existing::Required, |_| ()) {
        return code;
    }
    match store::compact(&config.data_dir) {
        Ok((before, after)) => {
            eprintln!("compact: {before} bytes before, {after} bytes after");
            ExitCode::SUCCESS
        }
        Err(e) => finish("compact", Err(e.into())),
    }
}

fn export_filter(args: &ExportArgs) -> Result<ExportFilter, String> {
    let date = |setting: &str, raw: &Option<String>| match raw {
        None => Ok(None),
        Some(raw) => timestamp::parse(raw).map(Some).ok_or_else(|| {
            format!(
                "invalid setting {setting}: {raw:?} is not an RFC 3339 time or a YYYY-MM-DD date"
            )
        }),
    };
    let status = match &args.status {
        None => None,
        Some(raw) => Some(Status::parse(raw).ok_or_else(|| {
            format!(
                "invalid setting --status: {raw:?} is not pending, processed, failed or duplicate"
            )
        })?),
    };
    Ok(ExportFilter {
        repository: args.repository.clone(),
        event: args.event.clone(),
        action: args.action.clone(),
        statuses: status.into_iter().collect(),
        start_ms: date("--start-date", &args.start_date)?,
        end_ms: date("--end-date", &args.end_date)?,
        visibility: crate::domain::Visibility::All,
    })
}

pub fn export(config: &Config, args: &ExportArgs) -> ExitCode {
    let filter = match export_filter(args) {
        Ok(filter) => filter,
        Err(message) => return refuse(message),
    };
    let result = with_store(config, Existing::Required, |store| match &args.output {
        Some(path) => std::fs::File::create(path)
            .map_err(transfer::TransferError::from)
            .and_then(|file| transfer::export(store, &filter, &mut std::io::BufWriter::new(file))),
        None => transfer::export(
            store,
            &filter,
            &mut std::io::BufWriter::new(std::io::stdout().lock()),
        ),
    });
    match result {
        Err(code) => code,
        Ok(Ok(count)) => {
            eprintln!("export: {count} deliveries written");
            ExitCode::SUCCESS
        }
        Ok(Err(e)) => finish("export", Err(e.into())),
    }
}

pub fn import(config: &Config, args: &ImportArgs) -> ExitCode {
    let input: Box<dyn BufRead> = match &args.input {
        Some(path) => match std::fs::File::open(path) {
            Ok(file) => Box::new(std::io::BufReader::new(file)),
            Err(e) => return refuse(format!("cannot read {}: {e}", path.display())),
        },
        None => Box::new(std::io::stdin().lock()),
    };
    let policy = RetryPolicy::from_config(config);
    let result = with_store(config, Existing::MayCreate, |store| {
        if let Some(position) = store.applied_cluster_log() {
            anyhow::bail!(
                "{} belongs to a cluster node (it applied the cluster's log up to message \
                 {position}): what it holds comes from that log alone",
                config.data_dir.display()
            );
        }
        runtime().block_on(import_and_process(store, input, policy))
    });
    let code = result.map_or_else(|code| code, |r| finish("import", r));
    if code == ExitCode::SUCCESS && config.secrets.is_empty() {
        remind_of_the_secret(&config.data_dir);
    }
    code
}

async fn import_and_process(
    store: &Store,
    input: Box<dyn BufRead>,
    policy: RetryPolicy,
) -> anyhow::Result<()> {
    let report = transfer::import(store, input, |r| {
        eprint!(
            "\rimport: {} imported, {} duplicates, {} skipped",
            r.imported,
            r.duplicates,
            r.skipped.len()
        )
    })
    .await?;
    eprintln!();
    for (line, reason) in &report.skipped {
        eprintln!("import: line {line} skipped: {reason}");
    }
    let processor = Processor::new(store.clone(), Vec::new(), policy);
    let mut processed = 0;
    loop {
        match processor.run_once().await? {
            0 => break,
            step => processed += step,
        }
    }
    eprintln!("import: {processed} events processed");
    Ok(())
}

/// A data directory filled by `import` has no webhook secret: the first `serve`
/// would generate one GitHub does not know, and refuse every delivery.
fn remind_of_the_secret(dir: &Path) {
    if !dir.join(SECRET_FILE).exists() {
        eprintln!(
            "hookvault: {} has no webhook secret yet. Copy {SECRET_FILE} from the old data \
             directory into it (mode 0600), or start the server with GITHUB_WEBHOOK_SECRET \
             set to the secret GitHub has; otherwise the first start generates a new one \
             and GitHub's deliveries fail their signature check.",
            dir.display()
        );
    }
}

/// Where a command that talks to a running instance finds it: `--url`, or the local
/// address of `--listen`; and the token it sends: `--token`, or the configured one.
pub fn running_instance(
    config: &Config,
    url: Option<&str>,
    token: Option<&str>,
) -> (String, Option<String>) {
    let base = match url {
        Some(url) => url.trim_end_matches('/').to_owned(),
        None => crate::banner::Banner::new(config, config.listen)
            .local_url()
            .to_owned(),
    };
    let token = token
        .map(str::to_owned)
        .or_else(|| config.api_token.as_ref().map(|t| t.expose().to_owned()));
    (base, token)
}

/// One API call to a running instance, for the commands that talk to it: the
/// answer's `data`, or an error naming the URL, the status and the server's message.
/// `timeout` bounds the whole call (none for a call that may wait, like a backfill
/// run waiting out GitHub's rate limits).
pub async fn ask_instance(
    method: reqwest::Method,
    url: &str,
    token: Option<String>,
    body: Option<serde_json::Value>,
    timeout: Option<Duration>,
) -> anyhow::Result<serde_json::Value> {
    crate::tls::install_provider();
    let mut client = reqwest::Client::builder().connect_timeout(Duration::from_secs(10));
    if let Some(timeout) = timeout {
        client = client.timeout(timeout);
    }
    let mut request = client.build()?.request(method, url);
    if let Some(body) = body {
        request = request
            .header("Content-Type", "application/json")
            .body(body.to_string());
    }
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request
        .send()
        .await
        .with_context(|| format!("cannot reach {url}"))?;
    let status = response.status();
    let answer: serde_json::Value =
        serde_json::from_slice(&response.bytes().await?).unwrap_or_default();
    if !status.is_success() {
        let message = answer["error"]["message"].as_str().unwrap_or("no message");
        anyhow::bail!("{url} answered {status}: {message}");
    }
    Ok(answer["data"].clone())
}

/// Downloads `GET /api/backup` into `--to`, checks the archive whole, then puts it
/// in place: a file at `--to` is always a complete backup.
pub fn backup(config: &Config, args: &BackupArgs) -> ExitCode {
    let (base, token) = running_instance(config, args.url.as_deref(), args.token.as_deref());
    let url = format!("{base}/api/backup");
    match runtime().block_on(download(&url, token, &args.to)) {
        Ok(manifest) => {
            eprintln!(
                "backup: {} events (through #{}), store copy of {} bytes, written to {}",
                manifest.events,
                manifest.last_seq,
                manifest.database_bytes,
                args.to.display()
            );
            ExitCode::SUCCESS
        }
        Err(e) => finish("backup", Err(e)),
    }
}

async fn download(url: &str, token: Option<String>, to: &Path) -> anyhow::Result<backup::Manifest> {
    use anyhow::Context;
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    // No overall timeout: a large store takes as long as it takes to send.
    let client = reqwest::Client::builder()
        .connect_timeout(std::time::Duration::from_secs(10))
        .build()?;
    let mut request = client.get(url);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let mut response = request
        .send()
        .await
        .with_context(|| format!("cannot reach {url}"))?;
    let status = response.status();
    if !status.is_success() {
        let body = response.bytes().await.unwrap_or_default();
        let body: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
        let message = body["error"]["message"].as_str().unwrap_or("no message");
        anyhow::bail!("{url} answered {status}: {message}");
    }
    let name = to.file_name().context("--to names no file")?;
    let partial = to.with_file_name(format!(".{}.partial", name.to_string_lossy()));
    let written = async {
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&partial)
            .with_context(|| format!("cannot write {}", partial.display()))?;
        while let Some(chunk) = response.chunk().await.context("the download broke off")? {
            file.write_all(&chunk)?;
        }
        file.sync_all()?;
        let archive = std::io::BufReader::new(std::fs::File::open(&partial)?);
        let manifest = backup::check(archive).context("the downloaded backup is not whole")?;
        std::fs::rename(&partial, to)?;
        anyhow::Ok(manifest)
    }
    .await;
    if written.is_err() {
        let _ = std::fs::remove_file(&partial);
    }
    written
}

/// Lays out a backup in the data directory of a stopped instance.
pub fn restore(config: &Config, args: &RestoreArgs) -> ExitCode {
    let file = match std::fs::File::open(&args.from) {
        Ok(file) => std::io::BufReader::new(file),
        Err(e) => return refuse(format!("cannot read {}: {e}", args.from.display())),
    };
    match backup::restore(file, &config.data_dir) {
        Ok(manifest) => {
            eprintln!(
                "restore: {} events (through #{}, backed up {} by hookvault {}) are in {}; \
                 the search index is rebuilt at the first start",
                manifest.events,
                manifest.last_seq,
                manifest.created_at,
                manifest.hookvault_version,
                config.data_dir.display()
            );
            if config.secrets.is_empty() {
                remind_of_the_secret(&config.data_dir);
            }
            ExitCode::SUCCESS
        }
        Err(e @ RestoreError::NotEmpty(_)) => refuse(e),
        Err(e) => finish("restore", Err(e.into())),
    }
}

/// `hookvault relay`: runs until `shutdown` resolves (exit 0). A server that refuses
/// the token, or a state file that cannot be used, stops it with one line and exit
/// code 2; anything that may pass (the server or the local URL down) is retried.
pub fn relay<F>(config: &Config, args: &RelayArgs, shutdown: impl FnOnce() -> F) -> ExitCode
where
    F: std::future::Future<Output = ()> + Send + 'static,
{
    let url = |setting: &str, raw: &str| match reqwest::Url::parse(raw) {
        Ok(url) if matches!(url.scheme(), "http" | "https") && url.has_host() => Ok(url),
        _ => Err(format!(
            "invalid setting {setting}: {raw:?} is not an http:// or https:// URL"
        )),
    };
    let (from, to) = match (url("--from", &args.from), url("--to", &args.to)) {
        (Ok(from), Ok(to)) => (from, to),
        (Err(message), _) | (_, Err(message)) => return refuse(message),
    };
    let state_file = args.state.clone().unwrap_or_else(|| {
        let dir = |name: &str| std::env::var_os(name).map(std::path::PathBuf::from);
        crate::relay::state::default_path(
            from.as_str(),
            to.as_str(),
            dir("XDG_STATE_HOME").as_deref(),
            dir("HOME").as_deref(),
        )
    });
    let options = crate::relay::Options {
        from,
        to,
        token: args.token.clone().or_else(|| config.api_token.clone()),
        secret: config.secrets.first().cloned(),
        state_file,
        since: args.since,
        timeout: std::time::Duration::from_secs(args.timeout.max(1)),
    };
    runtime().block_on(async move {
        match crate::relay::run(options, shutdown()).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(error) => refuse(error),
        }
    })
}
