//! Size and time limits on the ingest endpoint: the 25 MiB cap (above axum's 2 MB
//! default), stalled bodies and stalled headers.

use std::time::Duration;

use reqwest::StatusCode;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::{Delivery, TestApp, fixture, new_id, sign};

const LIMIT: usize = 25 * 1024 * 1024;

fn host(app: &TestApp) -> String {
    app.address.trim_start_matches("http://").to_owned()
}

/// Request head for a delivery of `body_len` bytes (or chunked when `None`).
fn head(body_len: Option<usize>, signature: &str) -> String {
    let length = match body_len {
        Some(len) => format!("Content-Length: {len}\r\n"),
        None => "Transfer-Encoding: chunked\r\n".into(),
    };
    format!(
        "POST /api/webhooks/github HTTP/1.1\r\nHost: test\r\nX-GitHub-Event: push\r\n\
         X-GitHub-Delivery: {}\r\nUser-Agent: GitHub-Hookshot/1\r\nContent-Type: application/json\r\n\
         X-Hub-Signature-256: {signature}\r\n{length}\r\n",
        new_id()
    )
}

async fn read_status(stream: &mut TcpStream) -> Option<u16> {
    let mut response = vec![0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(20), stream.read(&mut response))
        .await
        .ok()?
        .ok()?;
    let text = String::from_utf8_lossy(&response[..n]);
    text.split(' ').nth(1)?.parse().ok()
}

#[tokio::test]
async fn a_body_of_exactly_25_mib_is_accepted() {
    let app = TestApp::spawn().await;
    let prefix = b"{\"pad\":\"";
    let suffix = b"\"}";
    let mut body = prefix.to_vec();
    body.resize(LIMIT - suffix.len(), b'x');
    body.extend_from_slice(suffix);
    assert_eq!(body.len(), LIMIT);
    let (status, response) = app.post(Delivery::new("push", &new_id(), &body)).await;
    assert_eq!(status, StatusCode::OK, "{response}");
    assert_eq!(app.count("").await, 1);
}

#[tokio::test]
async fn a_declared_length_over_25_mib_is_413_before_the_body_is_read() {
    let app = TestApp::spawn().await;
    let mut stream = TcpStream::connect(host(&app)).await.unwrap();
    stream
        .write_all(head(Some(LIMIT + 1), &sign(b"")).as_bytes())
        .await
        .unwrap();
    assert_eq!(read_status(&mut stream).await, Some(413));
    assert_eq!(app.count("").await, 0);
}

#[tokio::test]
async fn a_chunked_body_growing_past_25_mib_is_413() {
    let app = TestApp::spawn().await;
    let mut stream = TcpStream::connect(host(&app)).await.unwrap();
    stream
        .write_all(head(None, &sign(b"")).as_bytes())
        .await
        .unwrap();
    let chunk = vec![b' '; 1024 * 1024];
    for _ in 0..26 {
        let mut frame = format!("{:x}\r\n", chunk.len()).into_bytes();
        frame.extend_from_slice(&chunk);
        frame.extend_from_slice(b"\r\n");
        if stream.write_all(&frame).await.is_err() {
            break; // the server answered and stopped reading
        }
    }
    assert_eq!(read_status(&mut stream).await, Some(413));
    assert_eq!(app.count("").await, 0);
}

#[tokio::test]
async fn a_stalled_body_times_out_with_408() {
    let app = TestApp::spawn_with(|c| c.body_timeout = Duration::from_secs(1)).await;
    let body = fixture("ping", 0).bytes;
    let mut stream = TcpStream::connect(host(&app)).await.unwrap();
    stream
        .write_all(head(Some(body.len()), &sign(&body)).as_bytes())
        .await
        .unwrap();
    stream.write_all(&body[..10]).await.unwrap();
    // The configured second, not the 30 s default: `read_status` waits 20 s at most.
    assert_eq!(read_status(&mut stream).await, Some(408));
    assert_eq!(app.count("").await, 0);
}

#[tokio::test]
async fn stalled_headers_are_cut_off_and_do_not_block_real_deliveries() {
    let app = TestApp::spawn_with(|c| c.header_timeout = Duration::from_secs(1)).await;
    let mut stalled = Vec::new();
    for _ in 0..50 {
        let mut stream = TcpStream::connect(host(&app)).await.unwrap();
        stream
            .write_all(b"POST /api/webhooks/github HTTP/1.1\r\nHost: x\r\n")
            .await
            .unwrap();
        stalled.push(stream);
    }

    // A real delivery still goes through while they hang.
    let (status, body) = app
        .post_signed("ping", &new_id(), &fixture("ping", 0).bytes)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // Each stalled connection is closed by the server after the header timeout.
    for mut stream in stalled {
        let mut buf = [0u8; 1024];
        let read = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut buf)).await;
        match read {
            Ok(Ok(n)) => assert!(
                n == 0 || String::from_utf8_lossy(&buf[..n]).contains("408"),
                "server kept talking"
            ),
            Ok(Err(_)) => {} // reset: closed
            Err(_) => panic!("a connection with stalled headers was never closed"),
        }
    }
}

/// A slowloris: 1,000 connections trickling their headers or their bodies, one
/// byte at a time. Real deliveries are answered while every one of them still
/// hangs: each took every byte written to it and, once the deliveries are answered,
/// is still open with no answer. Their timeouts are longer than any run of this
/// test, so deliveries that waited behind them would never be answered.
#[tokio::test]
async fn a_thousand_trickling_connections_do_not_hold_up_real_deliveries() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

    let app = TestApp::spawn_with(|c| {
        c.header_timeout = Duration::from_secs(3600);
        c.body_timeout = Duration::from_secs(3600);
    })
    .await;
    let body = fixture("ping", 0).bytes;
    let mut tricklers = Vec::new();
    for i in 0..1000 {
        let mut stream = TcpStream::connect(host(&app)).await.unwrap();
        let opening = if i % 2 == 0 {
            b"POST /api/webhooks/github HTTP/1.1\r\nHost: x\r\n".to_vec()
        } else {
            head(Some(body.len()), &sign(&body)).into_bytes()
        };
        stream.write_all(&opening).await.unwrap();
        tricklers.push(stream);
    }
    let (stop, rounds) = (
        Arc::new(AtomicBool::new(false)),
        Arc::new(AtomicUsize::new(0)),
    );
    let trickle = tokio::spawn({
        let (stop, rounds) = (stop.clone(), rounds.clone());
        async move {
            let mut failed = Vec::new();
            for round in 0usize.. {
                for (i, stream) in tricklers.iter_mut().enumerate() {
                    // Headers get more header bytes, bodies more body bytes: never done.
                    let byte: &[u8] = if round % 2 == 0 { b"X" } else { b" " };
                    if let Err(error) = stream.write_all(byte).await {
                        failed.push((i, error.kind()));
                    }
                }
                rounds.fetch_add(1, Ordering::SeqCst);
                if stop.load(Ordering::SeqCst) {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            (tricklers, failed)
        }
    });

    for _ in 0..20 {
        let (status, answer) = app.post_signed("ping", &new_id(), &body).await;
        assert_eq!(status, StatusCode::OK, "{answer}");
    }
    // A full round after the last answer, then the tricklers are looked at.
    let after = rounds.load(Ordering::SeqCst) + 1;
    while rounds.load(Ordering::SeqCst) <= after {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stop.store(true, Ordering::SeqCst);
    let (tricklers, failed) = trickle.await.unwrap();
    assert!(failed.is_empty(), "writes to tricklers failed: {failed:?}");
    let mut buf = [0u8; 1024];
    for (i, stream) in tricklers.iter().enumerate() {
        match stream.try_read(&mut buf) {
            Err(error) if error.kind() == std::io::ErrorKind::WouldBlock => {}
            Ok(0) => panic!("trickler {i} was closed"),
            Ok(n) => panic!(
                "trickler {i} was answered: {}",
                String::from_utf8_lossy(&buf[..n])
            ),
            Err(error) => panic!("trickler {i}: {error}"),
        }
    }
    assert_eq!(app.count("").await, 20);
}
