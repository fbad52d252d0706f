//! Debian's nginx in front of the real binary, configured by `deploy/nginx.conf`
//! with its ports substituted: behind a trusted proxy hookvault sees the client's own
//! address, not the proxy's nor one the client made up; behind a proxy it does not
//! trust it sees the proxy; and nothing that came through either is ever local.

use std::io::{Read, Write};
use std::net::{IpAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{Delivery, SECRET, new_id};
use crate::process::{Binary, command};

/// The client's own source address: loopback, but neither the proxy's (127.0.0.1)
/// nor trusted, as a visitor on the internet would be.
const CLIENT: &str = "127.0.0.7";

/// nginx in the foreground on a free loopback port, all its files in a temp dir.
struct Nginx {
    child: Child,
    address: String,
    dir: tempfile::TempDir,
}

fn nginx_binary() -> Option<PathBuf> {
    let found = ["/usr/sbin/nginx", "nginx"].into_iter().find(|candidate| {
        Command::new(candidate)
            .arg("-v")
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    });
    if found.is_none() {
        crate::skips::skip("nginx is not installed (apt-get install nginx)");
    }
    found.map(PathBuf::from)
}

impl Nginx {
    /// Starts nginx with the recipe, proxying to `upstream` (`host:port`).
    fn start(binary: &Path, upstream: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let recipe = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/nginx.conf"),
        )
        .unwrap();
        let mut site = recipe.clone();
        for (from, to) in [
            (
                "    listen 80;\n",
                format!("    listen 127.0.0.1:{port};\n"),
            ),
            ("    listen [::]:80;\n", String::new()),
            ("server 127.0.0.1:3000;", format!("server {upstream};")),
        ] {
            assert!(site.contains(from), "deploy/nginx.conf has {from:?}");
            site = site.replace(from, &to);
        }
        let d = dir.path().display();
        std::fs::write(dir.path().join("hookvault.conf"), site).unwrap();
        // One process (no workers to switch users or outlive a kill), files in `d`
        // instead of /var: it runs as whoever runs the tests.
        let main = format!(
            "daemon off;\nmaster_process off;\npid {d}/nginx.pid;\nerror_log {d}/error.log;\n\
             events {{ worker_connections 256; }}\n\
             http {{\n  access_log {d}/access.log;\n  client_body_temp_path {d}/body;\n  \
             proxy_temp_path {d}/proxy;\n  fastcgi_temp_path {d}/fastcgi;\n  \
             uwsgi_temp_path {d}/uwsgi;\n  scgi_temp_path {d}/scgi;\n  \
             include {d}/hookvault.conf;\n}}\n"
        );
        std::fs::write(dir.path().join("nginx.conf"), main).unwrap();
        let child = Command::new(binary)
            .arg("-p")
            .arg(dir.path())
            .arg("-c")
            .arg(dir.path().join("nginx.conf"))
            .arg("-e")
            .arg(dir.path().join("error.log"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nginx starts");
        let mut nginx = Self {
            child,
            address: format!("http://127.0.0.1:{port}"),
            dir,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if nginx.child.try_wait().unwrap().is_some() || Instant::now() > deadline {
                panic!("nginx did not start: {}", nginx.errors());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        nginx
    }

    fn errors(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("error.log")).unwrap_or_default()
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A visitor's client: every connection from [`CLIENT`].
fn visitor() -> reqwest::Client {
    crate::helpers::client_builder()
        .local_address(CLIENT.parse::<IpAddr>().unwrap())
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

async fn post(client: &reqwest::Client, base: &str, delivery: Delivery) -> StatusCode {
    let mut request = client.post(format!("{base}/api/webhooks/github"));
    for (name, value) in &delivery.headers {
        request = request.header(name.as_str(), value.as_str());
    }
    let response = request.body(delivery.body).send().await.unwrap();
    response.status()
}

/// The `source` of the newest rejected delivery, read directly (a local client).
async fn rejected_source(binary: &Binary, delivery_id: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let body: Value = reqwest::get(format!("{}/api/webhooks/rejected", binary.address))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let entries = body["data"]["entries"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        if let Some(entry) = entries.iter().find(|e| e["deliveryId"] == delivery_id) {
            return entry["source"].as_str().unwrap().to_owned();
        }
        assert!(Instant::now() < deadline, "not logged: {body}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// An unsigned delivery through the proxy, with a client-address header the
/// visitor made up; returns the address hookvault logged for it.
async fn refused_source_through(nginx: &Nginx, binary: &Binary) -> String {
    let id = new_id();
    let delivery = Delivery::new("ping", &id, br#"{"zen":"x"}"#)
        .without("X-Hub-Signature-256")
        .with("X-Forwarded-For", "203.0.113.66");
    let status = post(&visitor(), &nginx.address, delivery).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{}", nginx.errors());
    rejected_source(binary, &id).await
}

/// Local-only routes through the proxy, even with a made-up loopback address.
async fn assert_never_local_through(nginx: &Nginx, binary: &Binary) {
    let direct = reqwest::get(format!("{}/api/webhooks/events", binary.address))
        .await
        .unwrap();
    assert_eq!(direct.status(), StatusCode::OK, "direct loopback is local");
    for claimed in [None, Some("127.0.0.1")] {
        let mut request = visitor().get(format!("{}/api/webhooks/events", nginx.address));
        if let Some(claimed) = claimed {
            request = request.header("X-Forwarded-For", claimed);
        }
        let response = request.send().await.unwrap();
        assert_eq!(
            response.status(),
            StatusCode::UNAUTHORIZED,
            "claiming {claimed:?}"
        );
    }
}

fn hookvault(trusted_proxies: Option<&str>) -> (tempfile::TempDir, Binary) {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = command(dir.path());
    cmd.env("GITHUB_WEBHOOK_SECRET", SECRET)
        .env_remove("HOOKVAULT_TRUSTED_PROXIES")
        .env_remove("HOOKVAULT_API_TOKEN");
    if let Some(trusted) = trusted_proxies {
        cmd.env("HOOKVAULT_TRUSTED_PROXIES", trusted);
    }
    let binary = Binary::start(cmd);
    (dir, binary)
}

fn upstream(binary: &Binary) -> &str {
    binary.address.trim_start_matches("http://")
}

#[tokio::test]
async fn behind_a_trusted_nginx_the_client_address_is_the_real_one() {
    let Some(nginx_binary) = nginx_binary() else {
        return;
    };
    let (_dir, binary) = hookvault(Some("127.0.0.1"));
    let nginx = Nginx::start(&nginx_binary, upstream(&binary));

    assert_eq!(refused_source_through(&nginx, &binary).await, CLIENT);
    assert_never_local_through(&nginx, &binary).await;

    // A signed delivery above nginx's default body limit (1 MiB) gets through.
    let body = format!(r#"{{"zen":"{}"}}"#, "x".repeat(3 << 20));
    let status = post(
        &visitor(),
        &nginx.address,
        Delivery::new("ping", &new_id(), body.as_bytes()),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{}", nginx.errors());

    // Socket.IO's WebSocket upgrade passes through.
    let handshake = websocket_handshake(&nginx);
    assert!(handshake.starts_with("HTTP/1.1 101"), "{handshake}");
    assert!(
        handshake.contains("\"sid\""),
        "engine.io open packet: {handshake}"
    );
}

#[tokio::test]
async fn behind_an_untrusted_nginx_the_client_is_the_proxy_and_never_local() {
    let Some(nginx_binary) = nginx_binary() else {
        return;
    };
    let (_dir, binary) = hookvault(None);
    let nginx = Nginx::start(&nginx_binary, upstream(&binary));

    assert_eq!(refused_source_through(&nginx, &binary).await, "127.0.0.1");
    assert_never_local_through(&nginx, &binary).await;
}

/// A raw engine.io WebSocket upgrade through nginx: the status line and the first
/// frame (engine.io's open packet, which carries the session id).
fn websocket_handshake(nginx: &Nginx) -> String {
    let authority = nginx.address.trim_start_matches("http://");
    let mut stream = TcpStream::connect(authority).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write!(
        stream,
        "GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: {authority}\r\n\
         Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
    )
    .unwrap();
    let mut seen = Vec::new();
    let mut buf = [0u8; 1024];
    while !String::from_utf8_lossy(&seen).contains("\"sid\"") {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => seen.extend_from_slice(&buf[..n]),
        }
    }
    String::from_utf8_lossy(&seen).into_owned()
}
