//! The `/` namespace's broadcasts, as a processing stage: after an event's first
//! processing is committed, its message goes to the sockets subscribed to its
//! repository or organization (`webhook-event` and the per-type event), and security
//! alerts go to every socket. Replays and retries do not broadcast again.
//!
//! The stage only picks the recipients; building the message and handing it to each
//! socket happen on the fan-out thread, after the delivery is acknowledged. A
//! security alert is one encoding per connected client, and GitHub's acknowledgement
//! must not wait for a thousand of them. The hand-off is bounded ([`Outbox`]): when
//! a storm outruns the fan-out, live messages are skipped and counted, deliveries
//! never are (they are stored, and `/webhooks` resumes from the change log).

use std::panic::{self, AssertUnwindSafe};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};

use serde_json::value::RawValue;
use socketioxide::SocketIo;
use socketioxide::extract::SocketRef;

use super::messages::{channel, is_security_alert, message};
use super::{Hub, send};
use crate::ingest::Payload;
use crate::process::{ProcessedEvent, Stage};
use crate::store::EventRecord;

/// Events waiting for the fan-out thread, at most.
pub const FANOUT_QUEUE_EVENTS: usize = 1024;
/// Payload bytes those events may hold, at most (each holds its request body).
pub const FANOUT_QUEUE_BYTES: usize = 32 * 1024 * 1024;

pub struct Broadcast {
    io: SocketIo,
    hub: Arc<Hub>,
    outbox: Outbox<Fanout>,
}

impl Broadcast {
    /// The stage, and the fan-out thread behind it; the thread ends once the stage
    /// is dropped and what it queued is sent.
    pub fn start(io: SocketIo, hub: Arc<Hub>) -> std::io::Result<Self> {
        let (outbox, inbox) = Outbox::<Fanout>::new(FANOUT_QUEUE_EVENTS, FANOUT_QUEUE_BYTES);
        let sender_hub = hub.clone();
        std::thread::Builder::new()
            .name("socketio-fanout".into())
            .spawn(move || {
                for fanout in inbox {
                    let seq = fanout.seq;
                    // One message that cannot be built must not end live events for good.
                    let sent = panic::catch_unwind(AssertUnwindSafe(|| fanout.send(&sender_hub)));
                    if sent.is_err() {
                        tracing::error!(seq, "socket.io fan-out of an event panicked; skipped");
                    }
                }
            })?;
        Ok(Self { io, hub, outbox })
    }
}

impl Stage for Broadcast {
    fn committed(&self, event: &ProcessedEvent) {
        if event.record.attempts != 1 {
            return;
        }
        let Some(namespace) = self.io.of("/") else {
            return;
        };
        let record = &event.record;
        let mut alerted = if is_security_alert(&record.origin.event) {
            namespace.clone().sockets()
        } else {
            Vec::new()
        };
        let rooms: Vec<String> = [
            record
                .origin
                .repository
                .as_ref()
                .map(|r| format!("repo:{r}")),
            record
                .origin
                .organization
                .as_ref()
                .map(|o| format!("org:{o}")),
        ]
        .into_iter()
        .flatten()
        .collect();
        let mut subscribed = if rooms.is_empty() {
            Vec::new()
        } else {
            namespace.to(rooms).sockets()
        };
        // A socket of a limited token gets only its own organizations' events.
        let admissions = &self.hub.admissions;
        alerted.retain(|socket| admissions.sees(socket, record));
        subscribed.retain(|socket| admissions.sees(socket, record));
        // Nobody listening is the common case under load: then nothing is queued.
        if alerted.is_empty() && subscribed.is_empty() {
            return;
        }
        let fanout = Fanout {
            seq: event.seq,
            record: record.clone(),
            payload: event.payload.clone(),
            alerted,
            subscribed,
        };
        if !self.outbox.offer(fanout, record.body_len as usize) {
            self.hub.skipped_broadcasts.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(
                seq = event.seq,
                "socket.io fan-out queue full; live message skipped"
            );
        }
    }
}

/// One event's message and who gets it.
struct Fanout {
    seq: u64,
    record: EventRecord,
    payload: Arc<Payload>,
    alerted: Vec<SocketRef>,
    subscribed: Vec<SocketRef>,
}

impl Fanout {
    fn send(self, hub: &Hub) {
        let record = &self.record;
        // Serialized once, sent to every socket as is.
        let Ok(data) =
            RawValue::from_string(message(self.seq, record, self.payload.whole()).to_string())
        else {
            return;
        };
        for socket in &self.alerted {
            send(hub, socket, "security-alert", &data);
        }
        for socket in &self.subscribed {
            send(hub, socket, "webhook-event", &data);
            if let Some(name) = channel(&record.origin.event) {
                send(hub, socket, name, &data);
            }
        }
    }
}

/// A queue bounded both in items and in the bytes they hold; offering to a full one
/// fails at once instead of waiting.
struct Outbox<T> {
    sender: SyncSender<(T, usize)>,
    held: Arc<AtomicUsize>,
    max_bytes: usize,
}

/// The receiving end: gives back each item's bytes as it is taken.
struct Inbox<T> {
    receiver: Receiver<(T, usize)>,
    held: Arc<AtomicUsize>,
}

impl<T> Outbox<T> {
    fn new(max_items: usize, max_bytes: usize) -> (Self, Inbox<T>) {
        let (sender, receiver) = sync_channel(max_items);
        let held = Arc::new(AtomicUsize::new(0));
        let inbox = Inbox {
            receiver,
            held: held.clone(),
        };
        let outbox = Self {
            sender,
            held,
            max_bytes,
        };
        (outbox, inbox)
    }

    /// Queues `item`, which holds `bytes`, unless that would pass either bound.
    fn offer(&self, item: T, bytes: usize) -> bool {
        let before = self.held.fetch_add(bytes, Ordering::AcqRel);
        // One item alone may hold more than the bound (a 25 MiB payload): an empty
        // queue takes it, so a big event still reaches its subscribers when all is calm.
        if before > 0 && before + bytes > self.max_bytes {
            self.held.fetch_sub(bytes, Ordering::AcqRel);
            return false;
        }
        match self.sender.try_send((item, bytes)) {
            Ok(()) => true,
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                self.held.fetch_sub(bytes, Ordering::AcqRel);
                false
            }
        }
    }
}

impl<T> Iterator for Inbox<T> {
    type Item = T;

    /// Waits for the next item; `None` once every outbox is dropped and all is taken.
    fn next(&mut self) -> Option<T> {
        let (item, bytes) = self.receiver.recv().ok()?;
        self.held.fetch_sub(bytes, Ordering::AcqRel);
        Some(item)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_outbox_refuses_at_once_and_takes_again_once_drained() {
        let (outbox, mut inbox) = Outbox::new(3, 1000);
        assert!((0..3).all(|i| outbox.offer(i, 10)));
        assert!(!outbox.offer(3, 10), "a fourth item passes the item bound");
        assert_eq!(inbox.next(), Some(0));
        assert!(outbox.offer(4, 10));
        assert_eq!(inbox.by_ref().take(3).collect::<Vec<_>>(), [1, 2, 4]);
        assert_eq!(inbox.held.load(Ordering::Acquire), 0);
    }

    #[test]
    fn the_byte_bound_counts_what_is_held_and_lets_one_big_item_through() {
        let (outbox, mut inbox) = Outbox::new(100, 1000);
        assert!(
            outbox.offer("big", 5000),
            "an empty queue takes any one item"
        );
        assert!(!outbox.offer("small", 1), "nothing more while it is held");
        assert_eq!(inbox.next(), Some("big"));
        assert!(outbox.offer("a", 600));
        assert!(!outbox.offer("b", 600), "600 + 600 passes 1000");
        assert!(outbox.offer("c", 400));
        assert_eq!(inbox.held.load(Ordering::Acquire), 1000);
        assert_eq!(inbox.next(), Some("a"));
        assert_eq!(inbox.held.load(Ordering::Acquire), 400);
    }

    #[test]
    fn the_inbox_ends_once_the_outbox_is_gone_and_drained() {
        let (outbox, inbox) = Outbox::new(4, 1000);
        assert!(outbox.offer(1, 1));
        assert!(outbox.offer(2, 1));
        drop(outbox);
        assert_eq!(inbox.collect::<Vec<_>>(), [1, 2]);
    }
}
