//! The publishing loop: reads the events after the cursor, publishes them pipelined
//! (many acknowledgements awaited at once), and moves the cursor to the highest seq
//! below which every event is acknowledged or skipped.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_nats::connection::State;
use async_nats::jetstream;
use futures::StreamExt;
use futures::future::BoxFuture;
use futures::stream::FuturesOrdered;

use super::connect::{ensure_stream, jetstream};
use super::message::outgoing;
use super::{CURSOR, MAX_BACKOFF, Status};
use crate::config::NatsConfig;
use crate::store::Store;

/// Publishes awaiting their acknowledgement at most. One at a time would cost a round
/// trip per event; this many keep a 32-connection ingest load (a few thousand a
/// second) flowing over a link with milliseconds of latency.
const MAX_IN_FLIGHT: usize = 256;

/// Body bytes read from the store at once (besides the first event, whatever its size).
const READ_BYTES: usize = 16 << 20;

/// The cursor is saved at most this often, or every `SAVE_EVERY_MESSAGES`: each save
/// is a write request, and a crash only repeats what was sent since (JetStream drops
/// those as duplicates).
const SAVE_EVERY: Duration = Duration::from_millis(100);
const SAVE_EVERY_MESSAGES: u64 = 1_000;

/// Under load the store commits every few milliseconds (and processing adds a change
/// per event): waiting this long after a change before reading takes the events of
/// several commits in one read, instead of a read and a wake-up for each.
const COALESCE: Duration = Duration::from_millis(5);

/// After a failure, the first pause before trying again (doubling up to `MAX_BACKOFF`).
const MIN_BACKOFF: Duration = Duration::from_millis(100);

/// Seq of an event and whether it was published (`false`: skipped), or why not.
type Acked = BoxFuture<'static, (u64, Result<bool, String>)>;

pub struct Sink {
    store: Store,
    client: async_nats::Client,
    js: jetstream::Context,
    config: NatsConfig,
    status: Arc<Status>,
    /// Every event up to here is acknowledged or skipped.
    cursor: u64,
    /// Every event up to here is published or queued in `in_flight`.
    read: u64,
    in_flight: FuturesOrdered<Acked>,
    saved: u64,
    saved_at: Instant,
    /// The stream is known to be there and to take our subjects.
    stream_ready: bool,
    backoff: Duration,
}

impl Sink {
    pub fn new(
        store: Store,
        client: async_nats::Client,
        config: NatsConfig,
        status: Arc<Status>,
    ) -> Self {
        let cursor = status.cursor();
        Self {
            store,
            js: jetstream(client.clone()),
            client,
            config,
            status,
            cursor,
            read: cursor,
            in_flight: FuturesOrdered::new(),
            saved: cursor,
            saved_at: Instant::now(),
            stream_ready: false,
            backoff: MIN_BACKOFF,
        }
    }

    pub async fn run(mut self, shutdown: impl std::future::Future<Output = ()>) {
        tokio::pin!(shutdown);
        let mut feed = self.store.subscribe();
        // Starts signalled: what was stored while it was away goes out first.
        let mut more = true;
        loop {
            let connected = self.client.connection_state() == State::Connected;
            self.status
                .connected
                .store(connected, std::sync::atomic::Ordering::Relaxed);
            if !connected {
                self.status.note("not connected to NATS");
                // What was in flight may have gone with the connection: sent again
                // from the cursor once connected, rather than after its ack timeout.
                if !self.in_flight.is_empty() {
                    self.in_flight = FuturesOrdered::new();
                    self.read = self.cursor;
                    more = true;
                }
            }
            let ready = connected && (self.stream_ready || self.check_stream().await);
            if !ready {
                tokio::select! {
                    _ = &mut shutdown => break,
                    _ = tokio::time::sleep(self.backoff) => {}
                }
                self.backoff = (self.backoff * 2).min(MAX_BACKOFF);
                continue;
            }
            if more && self.in_flight.len() <= MAX_IN_FLIGHT / 2 {
                // Marked seen before the read: a commit after it wakes us again.
                feed.borrow_and_update();
                let filled = tokio::select! {
                    _ = &mut shutdown => break,
                    filled = self.fill() => filled,
                };
                match filled {
                    Ok(read_some) => more = read_some,
                    Err(error) => {
                        if self.failed(error, &mut shutdown).await {
                            break;
                        }
                        more = true;
                    }
                }
                continue;
            }
            let save_due = self.saved_at + SAVE_EVERY;
            tokio::select! {
                biased;
                _ = &mut shutdown => break,
                Some((seq, outcome)) = self.in_flight.next(), if !self.in_flight.is_empty() => {
                    match outcome {
                        Ok(published) => self.acked(seq, published).await,
                        Err(error) => {
                            if self.failed(error, &mut shutdown).await {
                                break;
                            }
                            more = true;
                        }
                    }
                }
                changed = feed.changed(), if !more => match changed {
                    Ok(()) => {
                        tokio::time::sleep(COALESCE).await;
                        more = true;
                    }
                    Err(_) => break,
                },
                _ = tokio::time::sleep_until(save_due.into()), if self.cursor > self.saved => {
                    self.save().await;
                }
            }
        }
        self.stop().await;
    }

    /// Publishes (or skips) what follows `read`, up to the in-flight cap; returns
    /// whether it found anything (then there may be more).
    async fn fill(&mut self) -> Result<bool, String> {
        let room = MAX_IN_FLIGHT - self.in_flight.len();
        let events = self
            .store
            .events_after(self.read, room, READ_BYTES)
            .await
            .map_err(|e| format!("cannot read the store: {e}"))?;
        let found = !events.is_empty();
        for event in events {
            let seq = event.seq;
            match outgoing(event) {
                None => self
                    .in_flight
                    .push_back(Box::pin(async move { (seq, Ok(false)) })),
                Some(message) => {
                    let ack = self
                        .js
                        .publish_with_headers(message.subject, message.headers, message.body)
                        .await
                        .map_err(|e| format!("cannot publish event {seq}: {e}"))?;
                    self.in_flight.push_back(Box::pin(async move {
                        let acked = ack
                            .await
                            .map(|_| true)
                            .map_err(|e| format!("event {seq} was not acknowledged: {e}"));
                        (seq, acked)
                    }));
                }
            }
            self.read = seq;
        }
        Ok(found)
    }

    async fn acked(&mut self, seq: u64, published: bool) {
        self.cursor = seq;
        self.status.advanced(seq);
        if published {
            self.status.published.inc();
            self.backoff = MIN_BACKOFF;
            self.status.recovered();
        }
        if self.cursor - self.saved >= SAVE_EVERY_MESSAGES || self.saved_at.elapsed() >= SAVE_EVERY
        {
            self.save().await;
        }
    }

    /// After any failure everything in flight is given up and sent again from the
    /// cursor, after a pause: JetStream drops what it had stored already. True when
    /// `shutdown` came meanwhile.
    async fn failed(
        &mut self,
        error: String,
        shutdown: &mut (impl Future<Output = ()> + Unpin),
    ) -> bool {
        self.status.failed(error);
        self.in_flight = FuturesOrdered::new();
        self.read = self.cursor;
        // The stream may be what is missing (deleted, or its subjects changed).
        self.stream_ready = false;
        let stopping = tokio::select! {
            _ = shutdown => true,
            _ = tokio::time::sleep(self.backoff) => false,
        };
        self.backoff = (self.backoff * 2).min(MAX_BACKOFF);
        stopping
    }

    async fn check_stream(&mut self) -> bool {
        match ensure_stream(&self.js, &self.config).await {
            Ok(()) => {
                self.stream_ready = true;
                true
            }
            Err(error) => {
                self.status.failed(error);
                false
            }
        }
    }

    async fn save(&mut self) {
        if let Err(error) = self.store.save_cursor(CURSOR, self.cursor).await {
            tracing::warn!(%error, "cannot save the NATS cursor");
        }
        self.saved = self.cursor;
        self.saved_at = Instant::now();
    }

    /// Takes the acknowledgements that come within a moment, then saves the cursor.
    async fn stop(&mut self) {
        let drain = async {
            while let Some((seq, outcome)) = self.in_flight.next().await {
                match outcome {
                    Ok(published) => {
                        self.cursor = seq;
                        if published {
                            self.status.published.inc();
                        }
                    }
                    Err(_) => break,
                }
            }
        };
        let _ = tokio::time::timeout(Duration::from_secs(2), drain).await;
        self.status.advanced(self.cursor);
        if self.cursor > self.saved {
            self.save().await;
        }
    }
}
