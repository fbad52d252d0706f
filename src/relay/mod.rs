//! `hookvault relay`: follows a (remote) hookvault's `/webhooks` Socket.IO stream
//! and POSTs every stored event to a local URL as GitHub sent it, one at a time in
//! sequence order, resuming after the last one the local URL accepted:
//! - [`state`]: the state file, the last sequence id delivered, written atomically
//!   after each accepted delivery;
//! - [`socket`]: the subscription (`auth: {token}`, `since`), reconnected by [`run`]
//!   with backoff whenever it ends, from the state's sequence id;
//! - [`source`]: a stored delivery's raw body and headers from the server's API;
//! - [`deliver`]: one POST to the local URL;
//! - [`engineio`]: the Engine.IO v4 / Socket.IO v5 framing `socket` speaks;
//! - [`backoff`]: the waits between tries.
//!
//! Exactly once, in order: an event is POSTed until the local URL answers 2xx (a
//! refusal, a refused connection or a timeout is tried again with backoff, never
//! skipped), then the state file records it before the next one starts. Only a stop
//! between that 2xx and the state file's rename (a SIGKILL, a power cut) sends the
//! one delivery again at the next start.
//!
//! Every event the stream shows is passed on, content duplicates and synthesized
//! test events included: the relay stands in for the webhook endpoint, so the local
//! app gets what GitHub sent to it (the NATS sink, a feed of distinct events, skips
//! both). An event deleted on the server before it was delivered (retention) is the
//! one thing skipped, with a warning.

mod backoff;
mod deliver;
mod engineio;
mod socket;
mod source;
pub mod state;

use std::future::Future;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use reqwest::Url;
use tokio::sync::watch;

use self::backoff::Backoff;
use self::deliver::{Outcome, Target};
use self::socket::{OpenError, Subscription, Summary};
use self::source::{Source, SourceError};
use self::state::{State, StateError};
use crate::config::Secret;

/// Each request to the server's API, at most.
const API_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, Clone)]
pub struct Options {
    /// The hookvault to follow (its base URL).
    pub from: Url,
    /// Where each delivery is POSTed.
    pub to: Url,
    pub token: Option<Secret>,
    /// Signs each delivery again with this secret instead of passing GitHub's
    /// signatures through.
    pub secret: Option<Secret>,
    pub state_file: PathBuf,
    /// Where to start without a state file: after this sequence id (0: every
    /// stored event). `None`: after the newest stored event.
    pub since: Option<u64>,
    /// Each POST to the local URL, at most.
    pub timeout: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    /// The server does not let the relay in: nothing changes that but a new token.
    #[error("{0}")]
    Refused(String),
    #[error(transparent)]
    State(#[from] StateError),
    #[error(
        "the state file {} belongs to the relay from {theirs}, not from {ours}: pass another \
         --state file (or, if it is the same server under a new address, edit its \"from\")",
        path.display()
    )]
    OtherServer {
        path: PathBuf,
        theirs: String,
        ours: String,
    },
    #[error("cannot set up an HTTP client: {0}")]
    Client(String),
}

/// Relays until `shutdown` resolves (finishing the POST in flight), or until the
/// server refuses the token.
pub async fn run(
    options: Options,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), RelayError> {
    // reqwest and the WebSocket use rustls with ring (see Cargo.toml).
    crate::tls::install_provider();
    let mut stop = Stop::new(shutdown);
    let client_error = |e: reqwest::Error| RelayError::Client(describe(e.without_url()));
    let source = Source::new(options.from.clone(), options.token.clone(), API_TIMEOUT)
        .map_err(client_error)?;
    let target = Target::new(options.to.clone(), options.secret.clone(), options.timeout)
        .map_err(client_error)?;
    let Some(mut state) = initial_state(&options, &source, &mut stop).await? else {
        return Ok(());
    };
    tracing::info!(
        from = %shown(&options.from),
        to = %shown(&options.to),
        state_file = %options.state_file.display(),
        after_seq = state.seq,
        signatures = if options.secret.is_some() { "signed again with --secret" } else { "GitHub's, passed through" },
        "relaying"
    );
    let mut reconnect = Backoff::default();
    loop {
        let opened = tokio::select! {
            biased;
            () = stop.requested() => return Ok(()),
            opened = Subscription::open(&options.from, options.token.as_ref(), state.seq) => opened,
        };
        let mut subscription = match opened {
            Ok(subscription) => {
                tracing::info!(
                    after_seq = state.seq,
                    "subscribed to the server's /webhooks stream"
                );
                reconnect.reset();
                subscription
            }
            Err(OpenError::Refused(message)) => {
                return Err(RelayError::Refused(format!(
                    "the server refused the relay: {message}"
                )));
            }
            Err(OpenError::Failed(error)) => {
                let wait = reconnect.next_wait();
                tracing::warn!(%error, retry_in_ms = wait.as_millis() as u64, "cannot subscribe to the server; trying again");
                if !stop.pause(wait).await {
                    return Ok(());
                }
                continue;
            }
        };
        loop {
            // A stop wins over the next event: the POST in flight was the last.
            let next = tokio::select! {
                biased;
                () = stop.requested() => return Ok(()),
                next = subscription.next() => next,
            };
            let Some(summary) = next else { break };
            if summary.seq <= state.seq {
                tracing::debug!(seq = summary.seq, "delivered before; not sent again");
                continue;
            }
            if !relay_one(&source, &target, &summary, &mut stop).await? {
                return Ok(());
            }
            state.seq = summary.seq;
            state.delivery_id = Some(summary.delivery_id);
            state::save(&options.state_file, &state)?;
        }
        let wait = reconnect.next_wait();
        tracing::info!(
            after_seq = state.seq,
            retry_in_ms = wait.as_millis() as u64,
            "the stream ended; subscribing again"
        );
        if !stop.pause(wait).await {
            return Ok(());
        }
    }
}

/// The state file's state, or a new one starting at `--since` or after the newest
/// stored event (saved at once, so what arrives from now on is not missed even if
/// the relay stops before delivering anything). `None`: stopped meanwhile.
async fn initial_state(
    options: &Options,
    source: &Source,
    stop: &mut Stop,
) -> Result<Option<State>, RelayError> {
    let from = options.from.to_string();
    if let Some(state) = state::load(&options.state_file)? {
        if state.from != from {
            return Err(RelayError::OtherServer {
                path: options.state_file.clone(),
                theirs: state.from,
                ours: shown(&options.from),
            });
        }
        return Ok(Some(state));
    }
    let mut backoff = Backoff::default();
    let seq = loop {
        let newest = match options.since {
            Some(seq) => Ok(seq),
            None => source.newest_seq().await,
        };
        match newest {
            Ok(seq) => break seq,
            Err(SourceError::Refused(message)) => return Err(RelayError::Refused(message)),
            Err(error) => {
                let wait = backoff.next_wait();
                tracing::warn!(%error, retry_in_ms = wait.as_millis() as u64, "cannot ask the server for its newest event; trying again");
                if !stop.pause(wait).await {
                    return Ok(None);
                }
            }
        }
    };
    let state = State {
        from,
        seq,
        delivery_id: None,
    };
    state::save(&options.state_file, &state)?;
    tracing::info!(
        state_file = %options.state_file.display(),
        after_seq = seq,
        "no state file yet; starting after this sequence id"
    );
    Ok(Some(state))
}

/// Passes one event on; false if stopped before the local URL accepted it.
async fn relay_one(
    source: &Source,
    target: &Target,
    summary: &Summary,
    stop: &mut Stop,
) -> Result<bool, RelayError> {
    let (seq, delivery_id, event) = (summary.seq, &summary.delivery_id, &summary.event);
    let mut backoff = Backoff::default();
    let stored = loop {
        match source.fetch(delivery_id).await {
            Ok(stored) => break stored,
            Err(SourceError::Gone) => {
                tracing::warn!(seq, %delivery_id, %event, "deleted on the server before it was delivered; skipped");
                return Ok(true);
            }
            Err(SourceError::Refused(message)) => return Err(RelayError::Refused(message)),
            Err(SourceError::Failed(error)) => {
                let wait = backoff.next_wait();
                tracing::warn!(seq, %delivery_id, %error, retry_in_ms = wait.as_millis() as u64, "cannot fetch the delivery from the server; trying again");
                if !stop.pause(wait).await {
                    return Ok(false);
                }
            }
        }
    };
    backoff.reset();
    let mut attempt = 0;
    loop {
        attempt += 1;
        let started = Instant::now();
        let outcome = target.post(&stored, seq, attempt).await;
        let ms = started.elapsed().as_millis() as u64;
        let wait = backoff.next_wait();
        let retry_in_ms = wait.as_millis() as u64;
        match outcome {
            Outcome::Accepted(status) => {
                tracing::info!(seq, %delivery_id, %event, stored_status = %summary.status, status = status.as_u16(), attempt, ms, "delivered");
                return Ok(true);
            }
            Outcome::Refused(status, answer) => {
                tracing::warn!(seq, %delivery_id, %event, status = status.as_u16(), %answer, attempt, ms, retry_in_ms, "the local URL refused the delivery; trying again");
            }
            Outcome::Unreachable(error) => {
                tracing::warn!(seq, %delivery_id, %event, %error, attempt, ms, retry_in_ms, "the local URL did not answer; trying again");
            }
        }
        if !stop.pause(wait).await {
            return Ok(false);
        }
    }
}

/// Becomes true once the shutdown future resolves.
struct Stop(watch::Receiver<bool>);

impl Stop {
    fn new(shutdown: impl Future<Output = ()> + Send + 'static) -> Self {
        let (tx, rx) = watch::channel(false);
        tokio::spawn(async move {
            shutdown.await;
            let _ = tx.send(true);
        });
        Self(rx)
    }

    async fn requested(&mut self) {
        let _ = self.0.wait_for(|stop| *stop).await;
    }

    /// Waits `wait` unless stopped first; false if stopped.
    async fn pause(&mut self, wait: Duration) -> bool {
        tokio::select! {
            biased;
            () = self.requested() => false,
            () = tokio::time::sleep(wait) => true,
        }
    }
}

/// A URL for the log: without a password it may carry.
fn shown(url: &Url) -> String {
    let mut url = url.clone();
    let _ = url.set_password(None);
    url.to_string()
}

/// An error with its causes ("error sending request: connection refused"), which
/// the top error alone leaves out.
fn describe(error: impl std::error::Error) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(inner) = cause {
        let line = inner.to_string();
        if !text.contains(&line) {
            text.push_str(": ");
            text.push_str(&line);
        }
        cause = inner.source();
    }
    text
}
