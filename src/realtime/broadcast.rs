//! The `/` namespace's broadcasts, as a processing stage: after an event's first
//! processing is committed, its message goes to the sockets subscribed to its
//! repository or organization (`webhook-event` and the per-type event), and security
//! alerts go to every socket. Replays and retries do not broadcast again.

use std::sync::Arc;

use serde_json::value::RawValue;
use socketioxide::SocketIo;

use super::messages::{channel, is_security_alert, message};
use super::{Hub, send};
use crate::process::{ProcessedEvent, Stage};

pub struct Broadcast {
    pub io: SocketIo,
    pub hub: Arc<Hub>,
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
        let alerted = if is_security_alert(&record.event) {
            namespace.clone().sockets()
        } else {
            Vec::new()
        };
        let rooms: Vec<String> = [
            record.repository.as_ref().map(|r| format!("repo:{r}")),
            record.organization.as_ref().map(|o| format!("org:{o}")),
        ]
        .into_iter()
        .flatten()
        .collect();
        let subscribed = if rooms.is_empty() {
            Vec::new()
        } else {
            namespace.to(rooms).sockets()
        };
        // Nobody listening is the common case under load: then no message is built.
        if alerted.is_empty() && subscribed.is_empty() {
            return;
        }
        // Serialized once, sent to every socket as is.
        let Ok(data) =
            RawValue::from_string(message(event.seq, record, event.payload.whole()).to_string())
        else {
            return;
        };
        for socket in &alerted {
            send(&self.hub, socket, "security-alert", &data);
        }
        for socket in &subscribed {
            send(&self.hub, socket, "webhook-event", &data);
            if let Some(name) = channel(&record.event) {
                send(&self.hub, socket, name, &data);
            }
        }
    }
}
