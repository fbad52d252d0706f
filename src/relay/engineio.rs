//! The little of Engine.IO v4 and Socket.IO v5 the relay speaks, over a WebSocket
//! (one packet per text frame): the open handshake, the server's pings, and the
//! CONNECT, CONNECT_ERROR, DISCONNECT, EVENT and ACK packets of one namespace.
//! Binary packets are never sent on `/webhooks` and are ignored.

use serde_json::Value;

/// The pong answering a server ping (Engine.IO v4: the server pings).
pub const PONG: &str = "3";

/// What one text frame from the server says.
#[derive(Debug, Clone, PartialEq)]
pub enum Frame {
    /// The Engine.IO handshake: how often the server pings, and how long it waits.
    Open {
        ping_interval_ms: u64,
        ping_timeout_ms: u64,
    },
    Ping,
    /// The server closes the Engine.IO session.
    Close,
    /// A Socket.IO packet of our namespace.
    Packet(Packet),
    /// Anything else: other namespaces, noops, binary packets.
    Ignored,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Packet {
    Connected,
    /// The server refused the namespace, with its reason (a wrong token…).
    ConnectError(String),
    Disconnect,
    Event {
        name: String,
        data: Value,
    },
    Ack {
        id: u64,
        data: Vec<Value>,
    },
}

/// Reads one text frame of the Engine.IO session; `namespace` is ours (`/webhooks`).
pub fn parse(frame: &str, namespace: &str) -> Frame {
    let mut chars = frame.chars();
    match chars.next() {
        Some('0') => {
            let open: Value = serde_json::from_str(chars.as_str()).unwrap_or(Value::Null);
            let ms =
                |key: &str, default: u64| open.get(key).and_then(Value::as_u64).unwrap_or(default);
            Frame::Open {
                ping_interval_ms: ms("pingInterval", 25_000),
                ping_timeout_ms: ms("pingTimeout", 20_000),
            }
        }
        Some('1') => Frame::Close,
        Some('2') => Frame::Ping,
        Some('4') => parse_packet(chars.as_str(), namespace).map_or(Frame::Ignored, Frame::Packet),
        _ => Frame::Ignored,
    }
}

fn parse_packet(text: &str, namespace: &str) -> Option<Packet> {
    let (kind, rest) = text.split_at_checked(1)?;
    let rest = match rest.strip_prefix('/') {
        Some(_) => {
            let (ns, rest) = rest.split_once(',').unwrap_or((rest, ""));
            if ns != namespace {
                return None;
            }
            rest
        }
        None if namespace == "/" => rest,
        None => return None,
    };
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    let (id, data) = rest.split_at(digits);
    let id: Option<u64> = id.parse().ok();
    let json = || serde_json::from_str::<Value>(data).ok();
    match kind {
        "0" => Some(Packet::Connected),
        "1" => Some(Packet::Disconnect),
        "2" => match json()? {
            Value::Array(mut items) if !items.is_empty() => {
                let name = items.remove(0).as_str()?.to_owned();
                let data = items.into_iter().next().unwrap_or(Value::Null);
                Some(Packet::Event { name, data })
            }
            _ => None,
        },
        "3" => match json()? {
            Value::Array(data) => Some(Packet::Ack { id: id?, data }),
            _ => None,
        },
        "4" => {
            let message = json()
                .and_then(|v| v.get("message").and_then(Value::as_str).map(str::to_owned))
                .unwrap_or_else(|| data.to_owned());
            Some(Packet::ConnectError(message))
        }
        _ => None,
    }
}

/// The CONNECT packet for `namespace` with the `auth` payload.
pub fn connect(namespace: &str, auth: &Value) -> String {
    format!("40{namespace},{auth}")
}

/// An EVENT packet asking for an acknowledgement with `id`.
pub fn event_with_ack(namespace: &str, id: u64, name: &str, data: &Value) -> String {
    let payload = Value::Array(vec![Value::String(name.to_owned()), data.clone()]);
    format!("42{namespace},{id}{payload}")
}

/// The DISCONNECT packet for `namespace`.
pub fn disconnect(namespace: &str) -> String {
    format!("41{namespace},")
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const NS: &str = "/webhooks";

    #[test]
    fn reads_the_engine_io_frames() {
        let open =
            r#"0{"sid":"x","upgrades":[],"pingInterval":300,"pingTimeout":200,"maxPayload":1000}"#;
        assert_eq!(
            parse(open, NS),
            Frame::Open {
                ping_interval_ms: 300,
                ping_timeout_ms: 200
            }
        );
        assert_eq!(parse("2", NS), Frame::Ping);
        assert_eq!(parse("1", NS), Frame::Close);
        assert_eq!(parse("6", NS), Frame::Ignored);
    }

    #[test]
    fn reads_the_socket_io_packets_of_its_namespace_only() {
        assert_eq!(
            parse(r#"40/webhooks,{"sid":"abc"}"#, NS),
            Frame::Packet(Packet::Connected)
        );
        assert_eq!(
            parse(
                r#"44/webhooks,{"message":"missing or wrong API token"}"#,
                NS
            ),
            Frame::Packet(Packet::ConnectError("missing or wrong API token".into()))
        );
        assert_eq!(
            parse(r#"42/webhooks,["event",{"id":7}]"#, NS),
            Frame::Packet(Packet::Event {
                name: "event".into(),
                data: json!({"id": 7})
            })
        );
        assert_eq!(
            parse("43/webhooks,12[true]", NS),
            Frame::Packet(Packet::Ack {
                id: 12,
                data: vec![json!(true)]
            })
        );
        assert_eq!(parse("41/webhooks,", NS), Frame::Packet(Packet::Disconnect));
        assert_eq!(parse(r#"42["webhook-event",{}]"#, NS), Frame::Ignored);
        assert_eq!(parse(r#"42/monitoring,["update",{}]"#, NS), Frame::Ignored);
        assert_eq!(parse("42/webhooks,not json", NS), Frame::Ignored);
    }

    #[test]
    fn writes_what_socket_io_servers_read() {
        assert_eq!(
            connect(NS, &json!({"token": "t"})),
            r#"40/webhooks,{"token":"t"}"#
        );
        assert_eq!(
            event_with_ack(NS, 1, "subscribe:webhook-events", &json!({"since": 5})),
            r#"42/webhooks,1["subscribe:webhook-events",{"since":5}]"#
        );
        assert_eq!(disconnect(NS), "41/webhooks,");
    }
}
