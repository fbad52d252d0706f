//! The `hookvault` binary: command line → settings → tracing → bind → [`hookvault::run`].

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;
use hookvault::config::{Cli, Command, Config, ExportArgs, ImportArgs, SecretSource};
use hookvault::domain::timestamp;
use hookvault::process::{Processor, RetryPolicy};
use hookvault::search::{Indexer, SearchIndex};
use hookvault::store::Status;
use hookvault::store::{Store, StoreOptions, WriterHandle};
use hookvault::transfer::{self, ExportFilter};
use tracing_subscriber::EnvFilter;

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing();
    let config = match Config::from_cli(cli.settings) {
        Ok(config) => config,
        Err(error) => return startup_error(error),
    };
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => serve(config),
        Command::Verify => verify(config),
        Command::Reindex => reindex(config),
        Command::Export(args) => export(config, args),
        Command::Import(args) => import(config, args),
        Command::Compact => match hookvault::store::compact(&config.data_dir) {
            Ok((before, after)) => {
                eprintln!("compact: {before} bytes before, {after} bytes after");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("hookvault: compact failed: {e}");
                ExitCode::FAILURE
            }
        },
    }
}

fn export(config: Config, args: ExportArgs) -> ExitCode {
    let date = |setting: &'static str, raw: &Option<String>| match raw {
        None => Ok(None),
        Some(raw) => timestamp::parse(raw).map(Some).ok_or_else(|| {
            format!(
                "invalid setting {setting}: {raw:?} is not an RFC 3339 time or a YYYY-MM-DD date"
            )
        }),
    };
    let filter = (|| -> Result<ExportFilter, String> {
        Ok(ExportFilter {
            repository: args.repository.clone(),
            event: args.event.clone(),
            action: args.action.clone(),
            status: match &args.status {
                None => None,
                Some(raw) => Some(Status::parse(raw).ok_or_else(|| {
                    format!("invalid setting --status: {raw:?} is not pending, processed or failed")
                })?),
            },
            start_ms: date("--start-date", &args.start_date)?,
            end_ms: date("--end-date", &args.end_date)?,
        })
    })();
    let filter = match filter {
        Ok(filter) => filter,
        Err(message) => return startup_error(message),
    };
    let (store, writer) = match open_store(&config) {
        Ok(opened) => opened,
        Err(code) => return code,
    };
    let result = match &args.output {
        Some(path) => std::fs::File::create(path)
            .map_err(hookvault::transfer::TransferError::from)
            .and_then(|file| transfer::export(&store, &filter, &mut std::io::BufWriter::new(file))),
        None => transfer::export(
            &store,
            &filter,
            &mut std::io::BufWriter::new(std::io::stdout().lock()),
        ),
    };
    drop(store);
    writer.join();
    match result {
        Ok(count) => {
            eprintln!("export: {count} deliveries written");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("hookvault: export failed: {e}");
            ExitCode::FAILURE
        }
    }
}

fn import(config: Config, args: ImportArgs) -> ExitCode {
    let input: Box<dyn std::io::BufRead> = match &args.input {
        Some(path) => match std::fs::File::open(path) {
            Ok(file) => Box::new(std::io::BufReader::new(file)),
            Err(e) => return startup_error(format!("cannot read {}: {e}", path.display())),
        },
        None => Box::new(std::io::stdin().lock()),
    };
    let (store, writer) = match open_store(&config) {
        Ok(opened) => opened,
        Err(code) => return code,
    };
    let policy = RetryPolicy {
        max_retries: config.max_retries,
        base: config.retry_base,
        cap: config.retry_base.saturating_mul(300),
    };
    let result = runtime().block_on(async {
        let report = transfer::import(&store, input, |r| {
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
            let step = processor.run_once().await?;
            if step == 0 {
                break;
            }
            processed += step;
        }
        eprintln!("import: {processed} events processed");
        anyhow::Ok(())
    });
    drop(store);
    writer.join();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("hookvault: import failed: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Threads for blocking work (store reads, large-body verification, search). tokio's
/// default of 512 let a burst of reads grow hundreds of threads, each with its own
/// stack and allocator caches, on a machine with two cores to run them.
const BLOCKING_THREADS: usize = 32;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .max_blocking_threads(BLOCKING_THREADS)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// Opens the store for an offline command (no dedup window needed).
fn open_store(config: &Config) -> Result<(Store, WriterHandle), ExitCode> {
    let options = StoreOptions {
        cache_bytes: config.cache_bytes,
        dedup_ttl: std::time::Duration::ZERO,
        on_commit: None,
    };
    Store::open(&config.data_dir, &options).map_err(|e| {
        startup_error(format!(
            "cannot open the store in {}: {e}",
            config.data_dir.display()
        ))
    })
}

fn reindex(config: Config) -> ExitCode {
    let (store, writer) = match open_store(&config) {
        Ok(opened) => opened,
        Err(code) => return code,
    };
    let result = runtime().block_on(async {
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
    });
    drop(store);
    writer.join();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("hookvault: reindex failed: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn verify(config: Config) -> ExitCode {
    let (store, writer) = match open_store(&config) {
        Ok(opened) => opened,
        Err(code) => return code,
    };
    let result = runtime().block_on(store.verify());
    drop(store);
    writer.join();
    match result {
        Ok(differences) if differences.is_empty() => {
            println!("verify: every counter and index entry matches the stored events");
            ExitCode::SUCCESS
        }
        Ok(differences) => {
            for difference in &differences {
                println!("mismatch: {difference}");
            }
            println!("verify: {} difference(s)", differences.len());
            ExitCode::from(1)
        }
        Err(e) => {
            eprintln!("hookvault: verify failed: {e}");
            ExitCode::FAILURE
        }
    }
}

fn serve(config: Config) -> ExitCode {
    runtime().block_on(async move {
        let listener = match tokio::net::TcpListener::bind(config.listen).await {
            Ok(listener) => listener,
            Err(e) => {
                return startup_error(format!(
                    "invalid setting HOOKVAULT_LISTEN (--listen): cannot listen on {}: {e}",
                    config.listen
                ));
            }
        };
        announce_secret(&config);
        match hookvault::run(config, listener, shutdown_signal()).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("hookvault: {e:#}");
                ExitCode::FAILURE
            }
        }
    })
}

/// One line, exit code 2: the contract for a setting that stops startup.
fn startup_error(error: impl std::fmt::Display) -> ExitCode {
    eprintln!("hookvault: {error}");
    ExitCode::from(2)
}

/// Says where the webhook secret comes from. The value itself is shown only once,
/// when it is generated, and never through the logger.
fn announce_secret(config: &Config) {
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
        SecretSource::Configured => {
            tracing::info!(
                count = config.secrets.len(),
                "using the configured webhook secret(s)"
            )
        }
    }
}

/// `RUST_LOG` wins; otherwise `info`, plus debug logs for the webhook path when
/// `DEBUG` names `GitHubWebhook*` (the seed's switch).
fn init_tracing() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        let debug_webhooks = std::env::var("DEBUG").is_ok_and(|d| d.contains("GitHubWebhook"));
        EnvFilter::new(if debug_webhooks {
            "info,hookvault::ingest=debug,hookvault::api::webhooks=debug,hookvault::store=debug"
        } else {
            "info"
        })
    });
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutdown requested; finishing in-flight requests");
}
