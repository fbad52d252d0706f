//! The binary's startup contract: bad settings stop it with one line and exit code 2;
//! a generated secret is printed once and saved privately; secrets never reach logs.

use std::net::TcpListener;
use std::process::Output;

use crate::helpers::{Delivery, new_id};
use crate::process::{Binary, command};
use hookvault::ingest::Signature;

fn assert_startup_error(output: Output, setting: &str) {
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "one line: {stderr}");
    assert!(lines[0].contains(setting), "names {setting}: {stderr}");
}

#[test]
fn bad_settings_stop_startup_with_exit_code_2() {
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str], env: &[(&str, &str)]| {
        let mut cmd = command(dir.path());
        cmd.args(args).envs(env.iter().copied());
        cmd.output().unwrap()
    };
    assert_startup_error(run(&["--dedup-ttl", "soon"], &[]), "WEBHOOK_DEDUP_TTL");
    assert_startup_error(
        run(&[], &[("WEBHOOK_MAX_RETRIES", "-1")]),
        "WEBHOOK_MAX_RETRIES",
    );
    assert_startup_error(run(&["--listen", "localhost"], &[]), "HOOKVAULT_LISTEN");
    assert_startup_error(run(&[], &[("PORT", "99999")]), "PORT");

    let file = dir.path().join("a-file");
    std::fs::write(&file, b"").unwrap();
    let output = command(&file.join("sub")).output().unwrap();
    assert_startup_error(output, "HOOKVAULT_DATA_DIR");
}

#[test]
fn a_port_in_use_stops_startup_with_exit_code_2() {
    let dir = tempfile::tempdir().unwrap();
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = taken.local_addr().unwrap().to_string();
    let output = command(dir.path())
        .args(["--listen", &address])
        .output()
        .unwrap();
    assert_startup_error(output, "HOOKVAULT_LISTEN");
}

#[tokio::test]
async fn a_generated_secret_is_printed_once_and_works() {
    let dir = tempfile::tempdir().unwrap();
    let first = Binary::start(command(dir.path()));
    let secret = std::fs::read_to_string(dir.path().join("webhook-secret")).unwrap();
    let body = br#"{"zen":"Design for failure.","hook_id":1}"#;
    let signature = Signature::compute(secret.as_bytes(), body).to_header();
    let delivery = Delivery::new("ping", &new_id(), body).with("X-Hub-Signature-256", &signature);
    let mut request =
        crate::helpers::client().post(format!("{}/api/webhooks/github", first.address));
    for (name, value) in &delivery.headers {
        request = request.header(name.as_str(), value.as_str());
    }
    let response = request.body(delivery.body.clone()).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let (stdout, stderr) = first.terminate();
    assert_eq!(
        stdout.matches(secret.as_str()).count(),
        1,
        "printed once: {stdout}"
    );
    assert!(!stderr.contains(secret.as_str()), "never in the log");

    let second = Binary::start(command(dir.path()));
    let (stdout, stderr) = second.terminate();
    assert!(!stdout.contains(secret.as_str()) && !stderr.contains(secret.as_str()));
}

/// Without HOOKVAULT_API_TOKEN the first start generates an API token like the
/// secret: saved 0600 in the data directory, printed once with the dashboard URL,
/// never logged. Callers on this machine still need none; a caller that is not
/// (here: one behind a proxy) needs it, and is told in words where to find it.
#[tokio::test]
async fn a_generated_api_token_is_printed_once_and_lets_other_machines_in() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let first = Binary::start(command(dir.path()));
    let path = dir.path().join("api-token");
    let token = std::fs::read_to_string(&path).unwrap();
    assert_eq!(token.len(), 64);
    let mode = std::fs::metadata(&path).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    let client = crate::helpers::client();
    let events = format!("{}/api/webhooks/events", first.address);
    let local = client.get(&events).send().await.unwrap();
    assert_eq!(local.status(), 200, "this machine needs no token");
    let health: serde_json::Value = client
        .get(format!("{}/api/webhooks/health", first.address))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(health["data"]["tokenRequired"], false, "{health}");
    let remote = || client.get(&events).header("x-forwarded-for", "192.0.2.7");
    let refused = remote().send().await.unwrap();
    assert_eq!(refused.status(), 401);
    let body: serde_json::Value = refused.json().await.unwrap();
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("api-token"),
        "says where the token is: {message}"
    );
    let admitted = remote().bearer_auth(&token).send().await.unwrap();
    assert_eq!(admitted.status(), 200, "the token lets other machines in");
    let wrong = client
        .get(&events)
        .bearer_auth("not-the-token-0123456789")
        .send()
        .await
        .unwrap();
    assert_eq!(
        wrong.status(),
        401,
        "a wrong token is refused, also locally"
    );
    let (stdout, stderr) = first.terminate();
    assert_eq!(
        stdout.matches(token.as_str()).count(),
        1,
        "printed once: {stdout}"
    );
    assert!(
        stdout.contains("/dashboard"),
        "with the dashboard URL: {stdout}"
    );
    assert!(!stderr.contains(token.as_str()), "never in the log");

    let second = Binary::start(command(dir.path()));
    let (stdout, stderr) = second.terminate();
    assert!(!stdout.contains(token.as_str()) && !stderr.contains(token.as_str()));
    assert_eq!(std::fs::read_to_string(&path).unwrap(), token, "kept");
}

#[tokio::test]
async fn configured_secrets_never_appear_in_debug_logs() {
    let dir = tempfile::tempdir().unwrap();
    let secret = "s3cr3t-value-for-the-log-test";
    let mut cmd = command(dir.path());
    cmd.env("GITHUB_WEBHOOK_SECRET", format!("old-{secret},{secret}"))
        .env("DEBUG", "GitHubWebhook*");
    let binary = Binary::start(cmd);
    let client = crate::helpers::client();
    for signing_secret in [secret, "wrong"] {
        let body = br#"{"zen":"x"}"#;
        let delivery = Delivery::new("ping", &new_id(), body).with(
            "X-Hub-Signature-256",
            &Signature::compute(signing_secret.as_bytes(), body).to_header(),
        );
        let mut request = client.post(format!("{}/api/webhooks/github", binary.address));
        for (name, value) in &delivery.headers {
            request = request.header(name.as_str(), value.as_str());
        }
        request.body(delivery.body).send().await.unwrap();
    }
    let (stdout, stderr) = binary.terminate();
    assert!(
        stderr.contains("delivery acknowledged"),
        "debug logs are on: {stderr}"
    );
    assert!(
        !stdout.contains(secret) && !stderr.contains(secret),
        "{stderr}"
    );
}

/// The data directory is private whatever the umask, and a store
/// that cannot be opened is named in the error.
#[test]
fn the_data_dir_and_store_are_private_whatever_the_umask() {
    use std::os::unix::fs::PermissionsExt;
    let parent = tempfile::tempdir().unwrap();
    let data = parent.path().join("data");
    let mode =
        |path: &std::path::Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
    let umask_000 = |data: &std::path::Path| {
        let mut command = std::process::Command::new("sh");
        command
            .args([
                "-c",
                "umask 000 && exec \"$0\" \"$@\"",
                env!("CARGO_BIN_EXE_hookvault"),
            ])
            .arg("--data-dir")
            .arg(data)
            .env_remove("GITHUB_WEBHOOK_SECRET")
            .env_remove("HOOKVAULT_LISTEN")
            .env_remove("PORT")
            .env_remove("RUST_LOG")
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        command
    };
    // Answered once, so its SIGTERM handler is in place before it is stopped.
    let answered = |binary: &Binary| {
        use std::io::{Read, Write};
        let mut stream =
            std::net::TcpStream::connect(binary.address.trim_start_matches("http://")).unwrap();
        stream
            .write_all(b"GET /api/webhooks/health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            .unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).unwrap();
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    };
    let binary = Binary::start(umask_000(&data));
    answered(&binary);
    binary.terminate();
    assert_eq!(mode(&data), 0o700, "data dir");
    assert_eq!(mode(&data.join("webhook-secret")), 0o600, "secret");
    assert_eq!(mode(&data.join("hookvault.redb")), 0o600, "store");
    assert_eq!(mode(&data.join("search-index")), 0o700, "index dir");
    let log = data.join("log");
    assert_eq!(mode(&log), 0o700, "ack log dir");
    for segment in std::fs::read_dir(&log).unwrap() {
        assert_eq!(mode(&segment.unwrap().path()), 0o600, "ack log segment");
    }

    // An existing world-readable data dir and store (an older version, or a umask of
    // 000) are made private at the next start.
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(
        data.join("hookvault.redb"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    let binary = Binary::start(umask_000(&data));
    answered(&binary);
    binary.terminate();
    assert_eq!(mode(&data), 0o700);
    assert_eq!(mode(&data.join("hookvault.redb")), 0o600);

    // A store that cannot be opened: the error says which file.
    let broken = parent.path().join("broken");
    std::fs::create_dir_all(broken.join("hookvault.redb")).unwrap();
    let output = command(&broken)
        .arg("--listen")
        .arg("127.0.0.1:0")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&broken.join("hookvault.redb").display().to_string()),
        "{stderr}"
    );
}

/// The value of `field=` in a log line (up to the next space).
fn logged_field<'a>(log: &'a str, field: &str) -> &'a str {
    let start = log
        .find(&format!("{field}="))
        .unwrap_or_else(|| panic!("{field} is logged: {log}"))
        + field.len()
        + 1;
    log[start..].split_whitespace().next().unwrap()
}

/// The startup banner, once on standard output and once in the log,
/// with the port actually bound (`--listen 127.0.0.1:0`), and URLs that answer.
#[tokio::test]
async fn the_banner_names_the_bound_port_and_urls_that_answer() {
    let dir = tempfile::tempdir().unwrap();
    let mut binary = Binary::start(command(dir.path()));
    let bound = binary.address.trim_start_matches("http://").to_owned();
    assert!(!bound.ends_with(":0"), "{bound}");
    let log = binary.logged();
    let payload_url = logged_field(&log, "payload_url").to_owned();
    let dashboard_url = logged_field(&log, "dashboard_url").to_owned();
    assert_eq!(payload_url, format!("http://{bound}/api/webhooks/github"));
    assert_eq!(dashboard_url, format!("http://{bound}/dashboard"));
    assert_eq!(log.matches("payload_url=").count(), 1, "once: {log}");

    let secret = std::fs::read_to_string(dir.path().join("webhook-secret")).unwrap();
    let body = br#"{"zen":"Keep it logically awesome.","hook_id":1}"#;
    let delivery = Delivery::new("ping", &new_id(), body).with(
        "X-Hub-Signature-256",
        &Signature::compute(secret.as_bytes(), body).to_header(),
    );
    let client = crate::helpers::client();
    let mut request = client.post(&payload_url);
    for (name, value) in &delivery.headers {
        request = request.header(name.as_str(), value.as_str());
    }
    let response = request.body(delivery.body).send().await.unwrap();
    assert_eq!(response.status(), 200, "the Payload URL ingests");
    let dashboard = client.get(&dashboard_url).send().await.unwrap();
    assert_eq!(dashboard.status(), 200, "the dashboard URL serves it");

    let (stdout, stderr) = binary.terminate();
    let data_dir = std::fs::canonicalize(dir.path()).unwrap();
    for line in [
        format!("hookvault is listening on {bound} (this machine only)"),
        format!(
            "  Payload URL for GitHub: the public URL of the proxy or tunnel that forwards to {payload_url}"
        ),
        format!("  Dashboard:              {dashboard_url}"),
        format!("  Data directory:         {}", data_dir.display()),
    ] {
        assert_eq!(
            stdout.matches(&line).count(),
            1,
            "{line:?} once in {stdout}"
        );
    }
    assert!(
        stdout.contains(&format!(
            "  API token:              in {}/api-token (mode 0600): clients on this machine need none",
            data_dir.display()
        )),
        "{stdout}"
    );
    assert!(
        stderr.contains("api_token=\"in the data directory\""),
        "{stderr}"
    );

    // With a token: said to be set, never shown.
    let token = "banner-test-token-0123456789";
    let mut with_token = command(dir.path());
    with_token.env("HOOKVAULT_API_TOKEN", token);
    let (stdout, stderr) = Binary::start(with_token).terminate();
    assert!(
        stdout.contains(
            "  API token:              set; other machines reach the dashboard through the proxy"
        ),
        "{stdout}"
    );
    assert!(stderr.contains("api_token=\"set\""), "{stderr}");
    assert!(!stdout.contains(token) && !stderr.contains(token));
}

/// A refused delivery leaves one `info` line at the default log level: the reason
/// code, the delivery id, the event and the sender's address; never the body, the
/// signature sent or the secret.
#[tokio::test]
async fn a_rejected_delivery_is_logged_without_secret_or_body() {
    let dir = tempfile::tempdir().unwrap();
    let mut binary = Binary::start(command(dir.path()));
    let secret = std::fs::read_to_string(dir.path().join("webhook-secret")).unwrap();
    let id = new_id();
    let body = br#"{"zen":"a-body-word-that-must-not-be-logged","hook_id":1}"#;
    let forged = Signature::compute(b"not-the-secret", body).to_header();
    let delivery = Delivery::new("ping", &id, body).with("X-Hub-Signature-256", &forged);
    let client = crate::helpers::client();
    let mut request = client.post(format!("{}/api/webhooks/github", binary.address));
    for (name, value) in &delivery.headers {
        request = request.header(name.as_str(), value.as_str());
    }
    let response = request.body(delivery.body).send().await.unwrap();
    assert_eq!(response.status(), 401);

    let mut line = None;
    for _ in 0..100 {
        line = binary
            .logged()
            .lines()
            .find(|l| l.contains("delivery rejected"))
            .map(str::to_owned);
        if line.is_some() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let line = line.expect("a log line for the rejected delivery");
    assert!(line.contains("INFO"), "{line}");
    assert!(line.contains(&id), "names the delivery: {line}");
    assert!(
        line.contains("signature_mismatch"),
        "names the reason: {line}"
    );
    assert!(
        line.contains("remote=127.0.0.1"),
        "names the sender: {line}"
    );
    assert!(line.contains("ping"), "names the event: {line}");
    let log = binary.logged();
    for private in [
        secret.trim(),
        "a-body-word-that-must-not-be-logged",
        forged.trim_start_matches("sha256="),
    ] {
        assert!(!log.contains(private), "{private} is not logged: {log}");
    }
}
