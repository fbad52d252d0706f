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
        // Serialized once, sent to every socket as is.
        let Ok(data) =
            RawValue::from_string(message(event.seq, &event.record, &event.payload).to_string())
        else {
            return;
        };
        let record = &event.record;
        if is_security_alert(&record.event) {
            for socket in namespace.clone().sockets() {
                send(&self.hub, &socket, "security-alert", &data);
            }
        }
        let mut rooms = Vec::new();
        if let Some(repository) = &record.repository {
            rooms.push(format!("repo:{repository}"));
        }
        if let Some(organization) = &record.organization {
            rooms.push(format!("org:{organization}"));
        }
        if rooms.is_empty() {
            return;
        }
        for socket in namespace.to(rooms).sockets() {
            send(&self.hub, &socket, "webhook-event", &data);
            if let Some(name) = channel(&record.event) {
                send(&self.hub, &socket, name, &data);
            }
        }
    }
}
