//! What runs once per cluster: one node at a time holds the cluster's lease and runs
//! every forwarding target's worker and the scheduled backfill. The others keep the
//! same targets, cursors and failed deliveries (forwarding's changes go through the
//! cluster's log) and take over when the holder stops renewing.
//!
//! The lease is a key in a JetStream key-value bucket replicated like the log, whose
//! entries expire [`TTL`] after they were last written. A node takes it with a
//! create (refused while the key exists) and keeps it with updates that name the
//! revision it last wrote (refused once another node took it). A holder that cannot
//! renew for longer than [`TTL`] less a margin gives it up on its own, before the
//! key can expire under it. The seqs are the same on every node, so a cursor saved by
//! one node means the same to the next; what was in flight at a handover is sent
//! again (at least once).

use std::sync::atomic::Ordering;
use std::time::Duration;

use async_nats::jetstream::{self, kv, stream};
use tokio::sync::watch;
use tokio::time::Instant;

use crate::store::Store;

/// The bucket of leases, and the cluster's lease's key in it.
const BUCKET: &str = "hookvault-leases";
const KEY: &str = "singletons";
/// A lease not renewed for this long is gone: how long forwarding pauses when its
/// node dies.
pub const TTL: Duration = Duration::from_secs(5);
/// How often the holder renews, and others try to take it.
const RENEW: Duration = Duration::from_secs(1);
/// A holder that could not renew for `TTL - MARGIN` stops first, so two nodes never
/// both believe they hold it (clocks are not compared: only elapsed times). A turn
/// of renewing takes at most `RENEW + PATIENCE`, inside the margin.
const MARGIN: Duration = Duration::from_secs(2);
/// Longest wait for the bucket's answer to a renewal.
const PATIENCE: Duration = Duration::from_millis(500);

/// The cluster's lease as this node sees it.
pub struct Lease {
    pub js: jetstream::Context,
    /// The cluster's log stream, and its replicas (the bucket's too).
    pub stream: String,
    pub replicas: usize,
    /// This node's id (`Hookvault-Node`).
    pub node: String,
    pub store: Store,
}

/// This node's hold on the lease.
#[derive(Clone, Copy)]
struct Held {
    revision: u64,
    renewed: Instant,
    /// The log's last message when the lease was taken: this node leads once it has
    /// applied it, so it resumes from the cursors its predecessor saved last.
    caught_up_at: u64,
}

impl Lease {
    /// Takes and keeps the lease until `shutdown`; `leading` is true while this node
    /// holds it and has caught up. Released at the end.
    pub async fn hold(
        self,
        leading: watch::Sender<bool>,
        shutdown: impl std::future::Future<Output = ()>,
    ) {
        tokio::pin!(shutdown);
        let mut bucket = None;
        let mut held: Option<Held> = None;
        loop {
            if bucket.is_none() {
                match self.open().await {
                    Ok(kv) => bucket = Some(kv),
                    Err(error) => {
                        tracing::warn!(%error, "cannot open the bucket of the cluster's lease")
                    }
                }
            }
            if let Some(kv) = &bucket {
                held = match held {
                    None => self.take(kv).await,
                    Some(held) => self.renew(kv, held).await,
                };
            }
            let decided = self
                .store
                .log_progress()
                .stream_decided
                .load(Ordering::Acquire);
            let leads = held.is_some_and(|h| decided >= h.caught_up_at);
            leading.send_if_modified(|was| std::mem::replace(was, leads) != leads);
            tokio::select! {
                () = &mut shutdown => break,
                () = tokio::time::sleep(RENEW) => {}
            }
        }
        leading.send_replace(false);
        if let (Some(kv), Some(held)) = (bucket, held) {
            // The next node takes over now, not once the key expires.
            match kv.delete_expect_revision(KEY, Some(held.revision)).await {
                Ok(()) => tracing::info!("cluster's lease released"),
                Err(error) => {
                    tracing::warn!(%error, "cannot release the cluster's lease; it expires")
                }
            }
        }
    }

    /// The bucket, made if it is not there. Made as the stream a bucket is
    /// (`KV_<bucket>`), because async-nats' `create_key_value` first reads the
    /// account's limits in a form nats-server 2.9 does not answer.
    async fn open(&self) -> Result<kv::Store, String> {
        if let Ok(kv) = self.js.get_key_value(BUCKET).await {
            return Ok(kv);
        }
        self.js
            .create_stream(stream::Config {
                name: format!("KV_{BUCKET}"),
                description: Some("hookvault: which node runs forwarding and backfill".into()),
                subjects: vec![format!("$KV.{BUCKET}.>")],
                max_messages_per_subject: 1,
                max_age: TTL,
                duplicate_window: TTL,
                storage: stream::StorageType::File,
                num_replicas: self.replicas,
                allow_rollup: true,
                deny_delete: true,
                allow_direct: true,
                discard: stream::DiscardPolicy::New,
                ..Default::default()
            })
            .await
            .map_err(|e| e.to_string())?;
        self.js
            .get_key_value(BUCKET)
            .await
            .map_err(|e| e.to_string())
    }

    /// Takes the lease if nobody holds it.
    async fn take(&self, kv: &kv::Store) -> Option<Held> {
        let taken = Instant::now();
        let revision = match kv.create(KEY, self.node.clone().into()).await {
            Ok(revision) => revision,
            Err(error) if error.kind() == kv::CreateErrorKind::AlreadyExists => return None,
            Err(error) => {
                tracing::warn!(%error, "cannot take the cluster's lease");
                return None;
            }
        };
        let last = match self.log_last().await {
            Ok(last) => last,
            Err(error) => {
                tracing::warn!(%error, "cannot read the cluster's log; the cluster's lease goes back");
                let _ = kv.delete_expect_revision(KEY, Some(revision)).await;
                return None;
            }
        };
        tracing::info!(caught_up_at = last, "this node took the cluster's lease");
        Some(Held {
            revision,
            renewed: taken,
            caught_up_at: last,
        })
    }

    async fn log_last(&self) -> Result<u64, String> {
        let mut stream = self
            .js
            .get_stream(&self.stream)
            .await
            .map_err(|e| e.to_string())?;
        let info = stream.info().await.map_err(|e| e.to_string())?;
        Ok(info.state.last_sequence)
    }

    /// Renews the lease; `None` once it is lost.
    async fn renew(&self, kv: &kv::Store, held: Held) -> Option<Held> {
        let attempt = Instant::now();
        let update = kv.update(KEY, self.node.clone().into(), held.revision);
        let updated = match tokio::time::timeout(PATIENCE, update).await {
            Ok(updated) => updated.map_err(|e| (Some(e.kind()), e.to_string())),
            Err(_) => Err((None, "no answer".to_owned())),
        };
        match updated {
            Ok(revision) => Some(Held {
                revision,
                renewed: attempt,
                ..held
            }),
            Err((Some(kv::UpdateErrorKind::WrongLastRevision), _)) => {
                tracing::warn!(
                    "the cluster's lease went to another node; forwarding and backfill stop here"
                );
                None
            }
            Err((_, error)) if held.renewed.elapsed() >= TTL - MARGIN => {
                tracing::warn!(%error, "cannot renew the cluster's lease; forwarding and backfill stop here");
                None
            }
            Err((_, error)) => {
                tracing::warn!(%error, "cannot renew the cluster's lease; trying again");
                Some(held)
            }
        }
    }
}
