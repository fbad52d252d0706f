//! The docs name only what exists: every metric the README and `docs/*.md` name is in
//! a running server's `/metrics`, every `HOOKVAULT_…` setting is on the command line,
//! and every `/api/…` endpoint is in the OpenAPI description.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use clap::CommandFactory;
use hookvault::config::{BackfillConfig, Cli, NatsConfig, Secret};
use reqwest::StatusCode;
use serde_json::json;
use tokio::io::AsyncReadExt;

use crate::github_fake::{FakeGitHub, TOKEN};
use crate::helpers::{TestApp, fixture, new_id};
use crate::receiver::{Answer, Receiver};

/// The README and every page under `docs/`, as (file name, text).
fn pages() -> Vec<(String, String)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = vec![root.join("README.md")];
    let mut docs: Vec<_> = std::fs::read_dir(root.join("docs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    docs.sort();
    files.extend(docs);
    files
        .into_iter()
        .map(|p| {
            let name = p.strip_prefix(root).unwrap().display().to_string();
            (name, std::fs::read_to_string(&p).unwrap())
        })
        .collect()
}

/// Every word starting with `prefix` (and not preceded by a word character), as far
/// as `allowed` characters go; trailing `.`, `-` and `/` are sentence punctuation.
fn words(text: &str, prefix: &str, allowed: impl Fn(char) -> bool) -> Vec<String> {
    let mut found = Vec::new();
    for (at, _) in text.match_indices(prefix) {
        let before = text[..at].chars().next_back();
        if before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_') {
            continue;
        }
        let word: String = text[at..].chars().take_while(|&c| allowed(c)).collect();
        let word = word.trim_end_matches(['.', '-', ':']).to_owned();
        found.push(word);
    }
    found
}

/// What every page names with `prefix` and is not in `known`, as `file: name`.
fn unknown(
    prefix: &str,
    allowed: impl Fn(char) -> bool + Copy,
    known: impl Fn(&str) -> bool,
) -> BTreeSet<String> {
    let mut missing = BTreeSet::new();
    for (file, text) in pages() {
        for word in words(&text, prefix, allowed) {
            if !known(&word) {
                missing.insert(format!("{file}: {word}"));
            }
        }
    }
    missing
}

#[test]
fn every_setting_the_docs_name_is_on_the_command_line() {
    let mut settings = BTreeSet::new();
    let mut commands = vec![Cli::command()];
    while let Some(command) = commands.pop() {
        for arg in command.get_arguments() {
            if let Some(env) = arg.get_env() {
                settings.insert(env.to_string_lossy().into_owned());
            }
            // A default value is not a setting, but the docs name it too.
            for value in arg.get_default_values() {
                settings.insert(value.to_string_lossy().into_owned());
            }
        }
        commands.extend(command.get_subcommands().cloned());
    }
    // The stream names hookvault picks when the setting is not given.
    settings.extend([
        hookvault::config::DEFAULT_STREAM.to_owned(),
        hookvault::config::DEFAULT_CLUSTER_STREAM.to_owned(),
    ]);
    let env_char = |c: char| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_';
    let missing = unknown("HOOKVAULT_", env_char, |name| {
        // `HOOKVAULT_FORWARD_*`-style mentions name a group of settings.
        settings.contains(name)
            || (name.ends_with('_') && settings.iter().any(|s| s.starts_with(name)))
    });
    assert!(
        missing.is_empty(),
        "settings the docs name that the command line does not have:\n{}",
        missing.into_iter().collect::<Vec<_>>().join("\n")
    );
}

/// A server on which every metric family has a sample: families with labels appear
/// in `/metrics` only once something happened, the streaming ones only with NATS on.
async fn busy_app() -> TestApp {
    let fake = FakeGitHub::start().await;
    let app = TestApp::spawn_with(|config| {
        // Streaming on (its sink keeps trying a server that is not there).
        config.nats = Some(NatsConfig::new("nats://127.0.0.1:1"));
        config.header_timeout = Duration::from_millis(300);
        // `ping` deliveries are ignored by the ingest filter.
        config.ingest_filter =
            hookvault::domain::IngestFilter::from_lists("", "event:ping").expect("a valid rule");
        config.backfill = BackfillConfig {
            api_url: fake.url.clone(),
            token: Some(Secret::new(TOKEN)),
            interval: None,
            pace: Duration::ZERO,
            ..BackfillConfig::default()
        };
    })
    .await;
    fake.set_target(&app.url("/api/webhooks/github"));
    // Two forwarding targets: one takes the delivery, one fails it.
    let (taking, failing) = (Receiver::start().await, Receiver::start().await);
    failing.answer(|_| Answer::Status(500));
    for (name, url, attempts) in [("taking", &taking.url, 3), ("failing", &failing.url, 1)] {
        let spec = json!({"name": name, "url": url, "start": "beginning", "maxAttempts": attempts,
            "timeoutMs": 500, "backoffMs": 10, "maxBackoffMs": 100});
        let (status, body) = app.post_json("/api/forwarding/targets", spec).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    let push = fixture("push", 0);
    app.post_signed("push", &new_id(), &push.bytes).await;
    let ping = fixture("ping", 0);
    app.post_signed("ping", &new_id(), &ping.bytes).await;
    // A delivery refused at ingest (no headers at all).
    let refused = app
        .client
        .post(app.url("/api/webhooks/github"))
        .body("{}")
        .send();
    assert_eq!(refused.await.unwrap().status(), StatusCode::BAD_REQUEST);
    // A connection that never sends a request, closed by the header timeout.
    let mut idle = tokio::net::TcpStream::connect(app.address.trim_start_matches("http://"))
        .await
        .unwrap();
    let mut buf = [0u8; 1];
    let closed = tokio::time::timeout(Duration::from_secs(10), idle.read(&mut buf));
    assert!(
        closed.await.is_ok(),
        "the header timeout closes the connection"
    );
    // A backfill run (a dry run: it asks GitHub for nothing).
    let (status, body) = app
        .post_json("/api/backfill", json!({"dryRun": true}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    app.settle().await;
    for name in ["taking", "failing"] {
        let path = format!("/api/forwarding/targets/{name}");
        let mut tries = 0;
        loop {
            let (_, body) = app.get_json(&path).await;
            if body["data"]["delivered"] == 1 || body["data"]["failed"] == 1 {
                break;
            }
            tries += 1;
            assert!(tries < 200, "target {name} never settled: {body}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    app
}

#[tokio::test]
async fn every_metric_the_docs_name_is_served() {
    let app = busy_app().await;
    // A cluster node's own metrics (the cluster tests check a node serves them).
    let cluster = hookvault::metrics::Metrics::with_nats(false, true).encode();
    let text = app.metrics().await + &cluster;
    let metric_char = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_';
    let served: BTreeSet<String> = words(&text, "hookvault_", metric_char)
        .into_iter()
        .collect();
    // The families (`# TYPE name kind`), so a doc may name a counter without `_total`.
    let families: BTreeSet<&str> = text
        .lines()
        .filter_map(|line| line.strip_prefix("# TYPE "))
        .filter_map(|line| line.split(' ').next())
        .collect();
    let missing = unknown("hookvault_", metric_char, |name| {
        let family = ["_total", "_bucket", "_sum", "_count", "_created", "_info"]
            .iter()
            .find_map(|suffix| name.strip_suffix(suffix))
            .unwrap_or(name);
        served.contains(name)
            || families.contains(name)
            || families.contains(family)
            // `hookvault_forward_*`: a group of metrics.
            || (name.ends_with('_') && served.iter().any(|s| s.starts_with(name)))
    });
    assert!(
        missing.is_empty(),
        "metrics the docs name that /metrics does not serve:\n{}",
        missing.into_iter().collect::<Vec<_>>().join("\n")
    );
}

#[tokio::test]
async fn every_endpoint_the_docs_name_is_described() {
    let app = TestApp::spawn().await;
    let (status, description) = app.get_json("/api/openapi.json").await;
    assert_eq!(status, 200);
    let paths: Vec<String> = description["paths"]
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect();
    // A described path matches a named one segment by segment; `{param}` matches any
    // segment, and a doc's `{id}`, `<id>` or `…` stands for one too.
    let matches = |described: &str, named: &str| {
        let d: Vec<&str> = described.split('/').collect();
        let n: Vec<&str> = named.split('/').collect();
        d.len() == n.len()
            && d.iter().zip(&n).all(|(d, n)| {
                d == n
                    || d.starts_with('{')
                    || n.starts_with('{')
                    || n.starts_with('<')
                    || *n == "…"
            })
    };
    let path_char = |c: char| c.is_ascii_alphanumeric() || "/_-.{}<>…".contains(c);
    let missing = unknown("/api/", path_char, |named| {
        let named = named.trim_end_matches('/');
        // The description itself, and prefixes that name a group of endpoints.
        named == "/api/openapi.json"
            || named == "/api"
            || paths.iter().any(|p| matches(p, named))
            || paths.iter().any(|p| p.starts_with(&format!("{named}/")))
    });
    assert!(
        missing.is_empty(),
        "endpoints the docs name that the OpenAPI description lacks:\n{}",
        missing.into_iter().collect::<Vec<_>>().join("\n")
    );
}
