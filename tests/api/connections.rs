//! Connections that never send a request: silent, one byte, or an
//! HTTP/2 preface and SETTINGS, closed by the deadline from accept to the first
//! request; keep-alive connections closed when idle; and, out of file descriptors,
//! the longest idle connection closed to make room, so deliveries keep coming in.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::{TestApp, fixture, new_id, sign};
use crate::process::Binary;

/// The client connection preface and an empty SETTINGS frame.
const H2_PREFACE_AND_SETTINGS: &[u8] =
    b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00";

/// Waits (generously) until the server closes `stream`; false if it never did.
async fn closed_by_server(stream: &mut TcpStream, within: Duration) -> bool {
    let mut buf = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => continue, // an HTTP/2 SETTINGS or GOAWAY frame: keep reading
            Err(_) => return false,
        }
    }
}

fn metric(text: &str, name_and_labels: &str) -> f64 {
    text.lines()
        .find(|l| l.starts_with(name_and_labels))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_thousand_silent_connections_are_closed_while_deliveries_go_through() {
    let app = TestApp::spawn_with(|c| c.header_timeout = Duration::from_secs(2)).await;
    let host = app.address.trim_start_matches("http://").to_owned();
    let mut idle = Vec::new();
    for i in 0..2000 {
        let mut stream = TcpStream::connect(&host).await.unwrap();
        match i % 3 {
            0 => {}
            1 => stream.write_all(b"P").await.unwrap(),
            _ => stream.write_all(H2_PREFACE_AND_SETTINGS).await.unwrap(),
        }
        idle.push(stream);
    }

    // A delivery loop while they are open.
    let body = fixture("ping", 0).bytes;
    let mut latencies = Vec::new();
    for _ in 0..100 {
        let started = Instant::now();
        let (status, answer) = app.post_signed("ping", &new_id(), &body).await;
        latencies.push(started.elapsed());
        assert_eq!(status, StatusCode::OK, "{answer}");
    }
    latencies.sort();
    println!(
        "deliveries among 2,000 idle connections: p50 {:?}, p99 {:?}",
        latencies[49], latencies[98]
    );

    for (i, stream) in idle.iter_mut().enumerate() {
        assert!(
            closed_by_server(stream, Duration::from_secs(30)).await,
            "idle connection {i} (kind {}) was never closed",
            i % 3
        );
    }
    let metrics = app.metrics().await;
    let closed = metric(
        &metrics,
        "hookvault_http_connections_closed_total{reason=\"first_request_timeout\"}",
    );
    assert!(closed >= 2000.0, "{closed}");
}

#[tokio::test]
async fn a_keep_alive_connection_is_closed_once_idle() {
    let app = TestApp::spawn_with(|c| {
        c.header_timeout = Duration::from_secs(60);
        c.idle_timeout = Duration::from_secs(1);
    })
    .await;
    let host = app.address.trim_start_matches("http://").to_owned();
    let mut stream = TcpStream::connect(&host).await.unwrap();
    // The request comes after the server has started waiting for it (60 s): its end
    // must still bring the deadline forward to the idle timeout.
    tokio::time::sleep(Duration::from_millis(500)).await;
    stream
        .write_all(b"GET /api/webhooks/health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        .await
        .unwrap();
    let mut buf = vec![0u8; 65536];
    let n = stream.read(&mut buf).await.unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
    // Well under the 60 s header timeout, well over the idle timeout.
    assert!(closed_by_server(&mut stream, Duration::from_secs(20)).await);
}

/// The probe of the issue: under `ulimit -n 1024`, 1,100 silent connections made
/// every signed delivery time out. Now the cap (three quarters of the limit) holds
/// and the longest idle connection makes room for each new one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn out_of_file_descriptors_deliveries_still_get_in() {
    let dir = tempfile::tempdir().unwrap();
    let bin = env!("CARGO_BIN_EXE_hookvault");
    let mut command = std::process::Command::new("sh");
    command
        .args(["-c", "ulimit -n 1024 && exec \"$0\" \"$@\"", bin])
        .arg("--data-dir")
        .arg(dir.path())
        .env("GITHUB_WEBHOOK_SECRET", crate::helpers::SECRET)
        .env_remove("HOOKVAULT_LISTEN")
        .env_remove("PORT")
        .env_remove("RUST_LOG")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let binary = Binary::start(command);
    let host = binary.address.trim_start_matches("http://").to_owned();
    let mut silent = Vec::new();
    for _ in 0..1100 {
        silent.push(TcpStream::connect(&host).await.unwrap());
    }
    let client = crate::helpers::client_builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let body = fixture("ping", 0).bytes;
    for _ in 0..20 {
        let response = client
            .post(format!("{}/api/webhooks/github", binary.address))
            .header("X-GitHub-Event", "ping")
            .header("X-GitHub-Delivery", new_id())
            .header("User-Agent", "GitHub-Hookshot/test")
            .header("Content-Type", "application/json")
            .header("X-Hub-Signature-256", sign(&body))
            .body(body.clone())
            .send()
            .await
            .expect("a delivery is answered although 1,100 connections are idle");
        assert_eq!(response.status(), StatusCode::OK);
    }
    let metrics = client
        .get(format!("{}/metrics", binary.address))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let max = metric(&metrics, "hookvault_http_connections_max ");
    assert_eq!(max, 768.0, "three quarters of 1,024");
    assert!(metric(&metrics, "hookvault_http_connections_open ") <= max);
    assert!(
        metric(
            &metrics,
            "hookvault_http_connections_closed_total{reason=\"evicted\"}"
        ) >= 1.0
    );
    drop(silent);
    let (_, stderr) = binary.terminate();
    assert!(
        !stderr.contains("Too many open files"),
        "accepting never ran out of descriptors: {}",
        &stderr[..stderr.len().min(2000)]
    );
}
