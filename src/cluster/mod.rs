//! Cluster mode (`HOOKVAULT_NATS_MODE=cluster`): several hookvault nodes share one
//! log, a JetStream stream replicated across a NATS cluster, in place of each node's
//! local acknowledgement log.
//!
//! - **Append** ([`log::ClusterLog`]): a node's ingest publishes the prepared
//!   delivery to `hookvault.log.delivery` with `Nats-Msg-Id` = the delivery id, and
//!   JetStream's publish acknowledgement (the stream's replicas hold it) is the
//!   durable append. A copy inside JetStream's duplicate window is refused there.
//! - **Materialize** ([`materializer`]): every node follows the whole stream with an
//!   ordered consumer from the last message its store applied, and hands each
//!   message, in stream order, to its store's log writer, which decides it
//!   (delivery-id duplicate, content duplicate, new) and applies it exactly as it
//!   would a local append. Same messages, same order, same state: same decisions and
//!   the same seqs on every node.
//! - **Answer**: the acknowledging node answers once its own materializer has decided
//!   the message, so the delivery reads back from it at once.
//!
//! - **Forward once** ([`lease`]): forwarding's changes (targets, cursors, failed
//!   deliveries) are messages of the log like any other, and the node holding the
//!   cluster's lease runs the targets' workers.
//!
//! The store knows none of this: it sees a [`crate::store::SharedLog`] and the
//! messages handed to [`crate::store::Store::materialize`].

mod lease;
mod log;
mod materializer;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use crate::config::NatsConfig;
use crate::forward;
use crate::process::Processor;
use crate::store::Store;

/// The subjects of the cluster's log stream.
pub const SUBJECTS: &str = "hookvault.log.>";
/// A delivery appended to the log.
const DELIVERY_SUBJECT: &str = "hookvault.log.delivery";
/// Any other change of stored state (a processing outcome, retention, removing the
/// test events), applied by every node.
const CHANGE_SUBJECT: &str = "hookvault.log.change";

/// Longest pause between two attempts to follow the stream after a failure.
const MAX_BACKOFF: Duration = Duration::from_secs(2);

/// Where this node stands in the cluster, for health and `/metrics`.
#[derive(Default)]
pub struct Status {
    /// The stream's last sequence, as last seen.
    stream_last: AtomicU64,
    following: AtomicBool,
    last_error: Mutex<Option<String>>,
}

impl Status {
    /// Messages of the stream this node has not decided yet.
    pub fn lag(&self, store: &Store) -> u64 {
        self.stream_last().saturating_sub(Self::decided(store))
    }

    pub fn stream_last(&self) -> u64 {
        self.stream_last.load(Ordering::Relaxed)
    }

    /// The last message of the stream this node decided.
    pub fn decided(store: &Store) -> u64 {
        store.log_progress().stream_decided.load(Ordering::Relaxed)
    }

    /// True while the materializer follows the stream.
    pub fn following(&self) -> bool {
        self.following.load(Ordering::Relaxed)
    }

    pub fn last_error(&self) -> Option<String> {
        self.last_error.lock().expect("not poisoned").clone()
    }

    fn failed(&self, error: String) {
        self.following.store(false, Ordering::Relaxed);
        tracing::warn!(%error, "following the cluster's log");
        *self.last_error.lock().expect("not poisoned") = Some(error);
    }

    fn follows(&self) {
        self.following.store(true, Ordering::Relaxed);
        if self
            .last_error
            .lock()
            .expect("not poisoned")
            .take()
            .is_some()
        {
            tracing::info!("following the cluster's log again");
        }
    }

    fn saw(&self, stream_seq: u64) {
        self.stream_last.fetch_max(stream_seq, Ordering::Relaxed);
    }
}

/// The log stream exists and has a leader (a stream just made in a cluster takes a
/// moment to choose one, and takes no message before).
async fn ready(js: &async_nats::jetstream::Context, config: &NatsConfig) -> Result<(), String> {
    crate::stream::ensure(js, config, SUBJECTS, "hookvault cluster log").await?;
    let mut stream = js
        .get_stream(&config.stream)
        .await
        .map_err(|e| format!("cannot find the stream {}: {e}", config.stream))?;
    let info = stream
        .info()
        .await
        .map_err(|e| format!("cannot read the stream {}: {e}", config.stream))?;
    let led = info.cluster.as_ref().is_none_or(|c| c.leader.is_some());
    if led {
        Ok(())
    } else {
        Err(format!("the stream {} has no leader yet", config.stream))
    }
}

/// A running cluster node's part in it.
pub struct Node {
    pub status: Arc<Status>,
    /// Whether this node runs forwarding, and what the other nodes changed of it.
    pub forwarding: forward::Shared,
    /// Changes each time a token change from the log is applied (made, revoked or
    /// used on any node): the tokens held in memory are read again.
    pub tokens_changed: watch::Receiver<u64>,
    /// Following the log, and holding the cluster's lease: both end on the
    /// `shutdown` given to [`start`] (the lease released first).
    pub task: JoinHandle<()>,
}

/// Connects to NATS, makes sure the log stream is there, makes it the store's log
/// and starts following it. Returns once the store can take deliveries; a NATS
/// cluster that is unreachable at start keeps it waiting (and retrying), since a
/// cluster node without its log can acknowledge nothing.
pub async fn start(
    store: Store,
    processor: Processor,
    config: NatsConfig,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<Node> {
    let client = crate::stream::connect(&config)
        .await
        .map_err(anyhow::Error::msg)?;
    let js = crate::stream::jetstream(client);
    let status = Arc::new(Status::default());
    let mut backoff = Duration::from_millis(100);
    loop {
        match ready(&js, &config).await {
            Ok(()) => break,
            Err(error) => status.failed(error),
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
    let waiting = Arc::new(log::Waiting::default());
    store.use_shared_log(Arc::new(Arc::new(log::ClusterLog::new(
        js.clone(),
        waiting.clone(),
        status.clone(),
    ))));
    let (notify, notices) = mpsc::unbounded_channel();
    let (leads, leading) = watch::channel(false);
    let (tokens_changed, tokens_seen) = watch::channel(0);
    let lease = lease::Lease {
        js: js.clone(),
        stream: config.stream.clone(),
        replicas: config.replicas,
        node: waiting.node().to_owned(),
        store: store.clone(),
    };
    let follower = materializer::Materializer {
        store,
        processor,
        js,
        stream: config.stream.clone(),
        waiting,
        status: status.clone(),
        notices: notify,
        tokens_changed,
    };
    let task = tokio::spawn(async move {
        let (stop, stopped) = watch::channel(false);
        let until_stopped = async move {
            let mut stopped = stopped;
            let _ = stopped.wait_for(|stop| *stop).await;
        };
        let following = tokio::spawn(follower.run(until_stopped));
        // The lease goes first; the log is followed until then, for the cursors
        // forwarding saves through it while it stops.
        lease.hold(leads, shutdown).await;
        let _ = stop.send(true);
        let _ = following.await;
    });
    Ok(Node {
        status,
        forwarding: forward::Shared { leading, notices },
        tokens_changed: tokens_seen,
        task,
    })
}
