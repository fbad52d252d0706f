//! Built-in TLS: HTTPS ingest and API over HTTP/1.1 and HTTP/2 with a certificate
//! made in the test, and certificates replaced on disk while connections stay open.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::{StatusCode, Version};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};
use tokio_rustls::rustls::{ClientConfig, RootCertStore};

use crate::helpers::{Delivery, SECRET, TestApp, client_builder, fixture, new_id};
use crate::process::{Binary, command};
use hookvault::config::TlsFiles;

/// A self-signed certificate for 127.0.0.1, as PEM, and its DER for comparisons.
struct Cert {
    pem: String,
    key_pem: String,
    der: CertificateDer<'static>,
}

fn self_signed() -> Cert {
    let made = rcgen::generate_simple_self_signed(vec!["127.0.0.1".into(), "localhost".into()])
        .expect("certificate");
    Cert {
        pem: made.cert.pem(),
        key_pem: made.signing_key.serialize_pem(),
        der: made.cert.der().clone(),
    }
}

/// Writes the pair the way renewal tools do: new files renamed over the old ones.
fn install(cert: &Cert, dir: &Path) -> TlsFiles {
    let files = TlsFiles {
        cert: dir.join("cert.pem"),
        key: dir.join("key.pem"),
    };
    for (path, text) in [(&files.cert, &cert.pem), (&files.key, &cert.key_pem)] {
        let tmp = path.with_extension("new");
        std::fs::write(&tmp, text).unwrap();
        std::fs::rename(&tmp, path).unwrap();
    }
    files
}

fn https(address: &str) -> String {
    address.replacen("http://", "https://", 1)
}

/// A raw TLS connection trusting `roots`, kept open across requests.
async fn connect(address: &str, roots: &[&Cert]) -> TlsStream<TcpStream> {
    let mut store = RootCertStore::empty();
    for cert in roots {
        store.add(cert.der.clone()).unwrap();
    }
    let config = ClientConfig::builder_with_provider(hookvault::server::tls::provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(store)
        .with_no_client_auth();
    let host = address.trim_start_matches("http://");
    let tcp = TcpStream::connect(host).await.unwrap();
    let name = ServerName::try_from("127.0.0.1").unwrap();
    TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
        .expect("TLS handshake")
}

fn served_certificate(stream: &TlsStream<TcpStream>) -> CertificateDer<'static> {
    stream.get_ref().1.peer_certificates().unwrap()[0].clone()
}

/// One HTTP/1.1 request on an open connection; the status code.
async fn get_status(stream: &mut TlsStream<TcpStream>, path: &str) -> u16 {
    let request = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut byte = [0u8];
        stream.read_exact(&mut byte).await.expect("a response");
        head.push(byte[0]);
    }
    let head = String::from_utf8(head).unwrap();
    let length: usize = head
        .lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse().unwrap())
        })
        .expect("content-length");
    let mut body = vec![0; length];
    stream.read_exact(&mut body).await.unwrap();
    head[9..12].parse().unwrap()
}

#[tokio::test]
async fn https_ingest_and_api_over_http1_and_http2() {
    let certs = tempfile::tempdir().unwrap();
    let cert = self_signed();
    let files = install(&cert, certs.path());
    let app = TestApp::spawn_with(|c| c.tls = Some(files)).await;
    let base = https(&app.address);
    let root = reqwest::Certificate::from_pem(cert.pem.as_bytes()).unwrap();

    for (client, version) in [
        (client_builder().http1_only(), Version::HTTP_11),
        (client_builder(), Version::HTTP_2),
    ] {
        let client = client.add_root_certificate(root.clone()).build().unwrap();
        let ping = fixture("ping", 1);
        let id = new_id();
        let mut request = client.post(format!("{base}/api/webhooks/github"));
        for (name, value) in &Delivery::new("ping", &id, &ping.bytes).headers {
            request = request.header(name.as_str(), value.as_str());
        }
        let response = request.body(ping.bytes.clone()).send().await.unwrap();
        assert_eq!(response.version(), version, "ALPN picks {version:?}");
        assert_eq!(response.status(), StatusCode::OK);
        let answer: serde_json::Value = response.json().await.unwrap();
        assert_eq!(answer["data"]["status"], "stored", "{answer}");

        let response = client
            .get(format!("{base}/api/webhooks/events/{id}"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let event: serde_json::Value = response.json().await.unwrap();
        assert_eq!(event["data"]["event"], "ping", "{event}");
    }

    // Plain HTTP on the TLS port gets no answer.
    let plain = app.client.get(app.url("/api/webhooks/health")).send().await;
    assert!(plain.is_err(), "plain HTTP is not served: {plain:?}");
}

fn binary_with(files: &TlsFiles, data: &Path) -> Binary {
    let mut cmd = command(data);
    cmd.env("GITHUB_WEBHOOK_SECRET", SECRET)
        .arg("--tls-cert")
        .arg(&files.cert)
        .env("HOOKVAULT_TLS_KEY", &files.key);
    Binary::start(cmd)
}

fn hang_up(binary: &Binary) {
    let pid = binary.child.id().to_string();
    let sent = std::process::Command::new("kill")
        .args(["-HUP", &pid])
        .status()
        .unwrap();
    assert!(sent.success());
}

/// Waits until the log has `needle` `count` times.
fn wait_logged(binary: &mut Binary, needle: &str, count: usize) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while binary.logged().matches(needle).count() < count {
        assert!(
            Instant::now() < deadline,
            "never logged {needle:?}: {}",
            binary.logged()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[tokio::test]
async fn after_sighup_new_connections_get_the_new_certificate_and_open_ones_go_on() {
    let (certs, data) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (old, new) = (self_signed(), self_signed());
    let files = install(&old, certs.path());
    let mut binary = binary_with(&files, data.path());

    let mut before = connect(&binary.address, &[&old, &new]).await;
    assert_eq!(served_certificate(&before), old.der);
    assert_eq!(get_status(&mut before, "/api/webhooks/health").await, 200);

    install(&new, certs.path());
    hang_up(&binary);
    // Each signal logs one line naming it (the files' poll may reload first).
    wait_logged(&mut binary, "SIGHUP", 1);
    assert!(binary.logged().contains("TLS certificate reloaded"));
    let after = connect(&binary.address, &[&old, &new]).await;
    assert_eq!(served_certificate(&after), new.der, "the new certificate");
    assert_eq!(
        get_status(&mut before, "/api/webhooks/events?limit=1").await,
        200,
        "a connection opened before the swap still works"
    );

    // A broken renewal keeps the certificate in use.
    std::fs::write(&files.key, "-----BEGIN PRIVATE KEY-----\nbroken\n").unwrap();
    hang_up(&binary);
    wait_logged(&mut binary, "SIGHUP", 2);
    assert!(binary.logged().contains("kept the TLS certificate in use"));
    let still = connect(&binary.address, &[&old, &new]).await;
    assert_eq!(served_certificate(&still), new.der);

    let (stdout, stderr) = binary.terminate();
    assert!(stdout.contains("https://127.0.0.1:"), "{stdout}");
    assert!(!stdout.contains("http://"), "every URL is https: {stdout}");
    assert!(!stderr.contains("BEGIN"), "no key material in the log");
}

#[tokio::test]
async fn a_renewed_certificate_is_picked_up_without_a_signal() {
    let certs = tempfile::tempdir().unwrap();
    let (old, new) = (self_signed(), self_signed());
    let files = install(&old, certs.path());
    let app = TestApp::spawn_with(|c| c.tls = Some(files)).await;
    assert_eq!(
        served_certificate(&connect(&app.address, &[&old]).await),
        old.der
    );
    install(&new, certs.path());
    // The files are looked at every few seconds.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let stream = connect(&app.address, &[&old, &new]).await;
        if served_certificate(&stream) == new.der {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the renewed certificate was never served"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[test]
fn a_bad_certificate_stops_startup_naming_the_setting() {
    let (certs, data) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let cert: PathBuf = certs.path().join("cert.pem");
    std::fs::write(&cert, "junk").unwrap();
    let output = command(data.path())
        .arg("--tls-cert")
        .arg(&cert)
        .arg("--tls-key")
        .arg(certs.path().join("missing.pem"))
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("HOOKVAULT_TLS_CERT"), "{stderr}");
}

/// `systemctl reload` sends SIGHUP to an instance without TLS too.
#[tokio::test]
async fn sighup_without_tls_leaves_the_server_running() {
    let data = tempfile::tempdir().unwrap();
    let mut cmd = command(data.path());
    cmd.env("GITHUB_WEBHOOK_SECRET", SECRET);
    let mut binary = Binary::start(cmd);
    hang_up(&binary);
    wait_logged(&mut binary, "nothing to reload", 1);
    let health = crate::helpers::client()
        .get(format!("{}/api/webhooks/health", binary.address))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), StatusCode::OK);
    binary.terminate();
}
