//! Who each socket is: every namespace connection is admitted like a REST request
//! ([`authorize`]), and what it was admitted as (its scoped token, its
//! [`Visibility`]) is kept here until it disconnects. The broadcasts and the
//! `/webhooks` stream send a socket only what its visibility allows, and revoking
//! a token disconnects its sockets at once ([`disconnect_token`]).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Mutex;

use axum::extract::ConnectInfo;
use serde_json::Value;
use socketioxide::SocketIo;
use socketioxide::extract::{SocketRef, State, TryData};
use socketioxide::socket::Sid;

use super::{Ctx, lock};
use crate::domain::Visibility;
use crate::guard::ClientIp;
use crate::guard::access::Denied;
use crate::store::EventRecord;

/// Namespaces that concern the whole instance, refused to limited tokens.
const INSTANCE_NAMESPACES: &[&str] = &["/monitoring"];

/// What one namespace connection was admitted as.
struct Admitted {
    token: Option<String>,
    visibility: Visibility,
}

/// Every open namespace connection's admission, by namespace and session id (one
/// engine.io session may join several namespaces, each with its own `auth`).
#[derive(Default)]
pub struct Admissions {
    sockets: Mutex<HashMap<(String, Sid), Admitted>>,
}

impl Admissions {
    fn add(&self, socket: &SocketRef, admitted: Admitted) {
        lock(&self.sockets).insert((socket.ns().to_owned(), socket.id), admitted);
    }

    /// Forgets a socket that disconnected.
    pub(super) fn remove(&self, socket: &SocketRef) {
        lock(&self.sockets).remove(&(socket.ns().to_owned(), socket.id));
    }

    /// The visibility `socket` was admitted with; nothing for an unknown socket.
    pub fn visibility(&self, socket: &SocketRef) -> Visibility {
        lock(&self.sockets)
            .get(&(socket.ns().to_owned(), socket.id))
            .map_or_else(Visibility::nothing, |a| a.visibility.clone())
    }

    /// Whether `socket` may see `record`.
    pub fn sees(&self, socket: &SocketRef, record: &EventRecord) -> bool {
        lock(&self.sockets)
            .get(&(socket.ns().to_owned(), socket.id))
            .is_some_and(|a| record.visible_to(&a.visibility))
    }

    /// The open connections admitted with the token named `name`.
    fn of_token(&self, name: &str) -> Vec<(String, Sid)> {
        lock(&self.sockets)
            .iter()
            .filter(|(_, a)| a.token.as_deref() == Some(name))
            .map(|(key, _)| key.clone())
            .collect()
    }
}

/// Connect middleware: the same access rule as the REST API; the token comes from
/// the handshake's `auth: {token}`. A token limited to some organizations is
/// refused the namespaces about the whole instance.
pub(super) async fn authorize(
    socket: SocketRef,
    State(ctx): State<Ctx>,
    TryData(auth): TryData<Value>,
) -> Result<(), Denied> {
    let token = auth
        .ok()
        .and_then(|a| a.get("token").and_then(Value::as_str).map(str::to_owned));
    let parts = socket.req_parts();
    let peer = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0);
    let client = parts.extensions.get::<ClientIp>().map(|c| c.0);
    let grant = ctx
        .access
        .admit(client, peer, &parts.headers, token.as_deref())?;
    if grant.is_limited() && INSTANCE_NAMESPACES.contains(&socket.ns()) {
        return Err(Denied::Limited);
    }
    let admitted = Admitted {
        token: grant.token_name().map(str::to_owned),
        visibility: grant.visibility(),
    };
    ctx.hub.admissions.add(&socket, admitted);
    Ok(())
}

/// Disconnects every socket admitted with the token named `name` (just revoked);
/// answers how many.
pub fn disconnect_token(io: &SocketIo, hub: &super::Hub, name: &str) -> usize {
    let mut disconnected = 0;
    for (namespace, sid) in hub.admissions.of_token(name) {
        let socket = io.of(&namespace).and_then(|ns| ns.get_socket(sid));
        if namespace == "/webhooks" {
            hub.feed.remove(sid);
        }
        if let Some(socket) = socket {
            hub.admissions.remove(&socket);
            if socket.disconnect().is_ok() {
                disconnected += 1;
            }
        }
    }
    disconnected
}
