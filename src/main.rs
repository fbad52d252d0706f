//! The `hookvault` binary: command line → settings → tracing → the command. `serve`
//! binds its listener here and hands it to [`hookvault::run`]; every other command
//! lives in [`hookvault::commands`].

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;
use hookvault::banner::{self, Banner};
use hookvault::commands::{self, refuse};
use hookvault::config::{Cli, Command, Config};
use hookvault::store::StoreError;
use tracing_subscriber::EnvFilter;

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing();
    hookvault::tls::install_provider();
    let command = cli.command.unwrap_or(Command::Serve);
    let config = match command {
        Command::Serve => Config::from_cli(cli.settings),
        _ => Config::offline(cli.settings),
    };
    let config = match config {
        Ok(config) => config,
        Err(error) => return refuse(error),
    };
    match command {
        Command::Serve => serve(config),
        Command::Verify => commands::verify(&config),
        Command::Reindex => commands::reindex(&config),
        Command::Export(args) => commands::export(&config, &args),
        Command::Import(args) => commands::import(&config, &args),
        Command::Compact => commands::compact(&config),
        Command::Backup(args) => commands::backup(&config, &args),
        Command::Restore(args) => commands::restore(&config, &args),
        Command::Relay(args) => commands::relay(&config, &args, shutdown_signal),
        Command::Backfill(args) => hookvault::backfill::command::run(&config, &args),
        Command::Token(args) => hookvault::tokens::command::run(&config, &args),
    }
}

fn serve(config: Config) -> ExitCode {
    commands::runtime().block_on(async move {
        let listener = match tokio::net::TcpListener::bind(config.listen).await {
            Ok(listener) => listener,
            Err(e) => {
                return refuse(format!(
                    "invalid setting HOOKVAULT_LISTEN (--listen): cannot listen on {}: {e}",
                    config.listen
                ));
            }
        };
        match listener.local_addr() {
            Ok(bound) => {
                let banner = Banner::new(&config, bound);
                banner::announce(&banner);
                banner::announce_token(&config, &banner);
            }
            Err(e) => tracing::warn!("cannot tell the bound address: {e}"),
        }
        banner::announce_secret(&config);
        match hookvault::run(config, listener, shutdown_signal()).await {
            Ok(()) => ExitCode::SUCCESS,
            // A store from a newer release: a refusal to start, like a bad setting.
            Err(e)
                if e.chain()
                    .any(|c| matches!(c.downcast_ref(), Some(StoreError::NewerSchema { .. }))) =>
            {
                refuse(format!("{e:#}"))
            }
            Err(e) => {
                eprintln!("hookvault: {e:#}");
                ExitCode::FAILURE
            }
        }
    })
}

/// `RUST_LOG` wins; otherwise `info`, plus debug logs for the webhook path when
/// `DEBUG` names `GitHubWebhook*` (the original service's switch).
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

/// SIGTERM or Ctrl-C. The handlers are installed here, before the server starts,
/// not when the future is first polled: a SIGTERM right after the "listening" line
/// would otherwise still find the default action and kill the process unclean.
fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    use tokio::signal::unix::{SignalKind, signal};
    let terminate = signal(SignalKind::terminate()).ok();
    let interrupt = signal(SignalKind::interrupt()).ok();
    async move {
        let wait = |s: Option<tokio::signal::unix::Signal>| async move {
            match s {
                Some(mut s) => {
                    s.recv().await;
                }
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            () = wait(interrupt) => {},
            () = wait(terminate) => {},
        }
        tracing::info!("shutdown requested; finishing in-flight requests");
    }
}
