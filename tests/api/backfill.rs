//! Backfill against a fake GitHub API on loopback (`github_fake`): what hookvault
//! missed while it was stopped comes back, signed, through the ingest endpoint after
//! one reconcile; rate limits are waited out; a dry run changes nothing; the
//! `hookvault backfill` command drives a running server; the startup run catches up
//! a GitHub App's hook found in the stored headers.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use hookvault::backfill::hooks::HookRef;
use hookvault::config::{BackfillConfig, GitHubApp, Secret};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::github_fake::{APP_ID, FakeGitHub, Fault, Hook, TOKEN};
use crate::helpers::{TestApp, client, fixtures, new_id};

const REPO: &str = "Codertocat/Hello-World";

/// Backfill on, pointed at the fake, with no schedule (runs only when asked) and no
/// pause between redelivery requests.
fn settings(fake: &FakeGitHub, hooks: Option<&str>) -> BackfillConfig {
    BackfillConfig {
        api_url: fake.url.clone(),
        token: Some(Secret::new(TOKEN)),
        hooks: hooks.map(|h| HookRef::parse_list(h).unwrap()),
        interval: None,
        pace: Duration::ZERO,
        ..BackfillConfig::default()
    }
}

/// hookvault with content dedup off (the corpus repeats payloads under new ids).
async fn spawn(fake: &FakeGitHub, backfill: BackfillConfig) -> TestApp {
    let app = TestApp::spawn_with(|config| {
        config.dedup_ttl = Duration::ZERO;
        config.backfill = backfill;
    })
    .await;
    fake.set_target(&app.url("/api/webhooks/github"));
    app
}

/// Real payloads of one repository, so the stored deliveries name the repo hook.
fn corpus(repository: &str) -> Vec<(String, Vec<u8>)> {
    fixtures()
        .into_iter()
        .filter(|f| f.repository() == Some(repository))
        .map(|f| (f.event, f.bytes))
        .collect()
}

/// GitHub delivers `count` new deliveries through `hook`; their ids.
async fn deliver(fake: &FakeGitHub, hook: &Hook, count: usize, expect: Option<u16>) -> Vec<String> {
    let corpus = corpus(REPO);
    let mut ids = Vec::new();
    for i in 0..count {
        let id = new_id();
        let (event, body) = &corpus[i % corpus.len()];
        let status = fake.deliver(hook, event, &id, body).await;
        if let Some(expected) = expect {
            assert_eq!(status, expected, "delivery {i}");
        }
        ids.push(id);
    }
    ids
}

async fn backfill(app: &TestApp, body: Value) -> (StatusCode, Value) {
    // No client timeout: a run may wait out a rate limit.
    let response = client()
        .post(app.url("/api/backfill"))
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn stored(app: &TestApp) -> u64 {
    app.applied().await;
    app.count("limit=1").await
}

fn ids(value: &Value) -> BTreeSet<String> {
    value
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn one_reconcile_brings_back_what_was_missed_while_stopped_and_a_second_asks_for_nothing() {
    let fake = FakeGitHub::start().await;
    let hook = Hook::repo(REPO, 101);
    // No hooks configured: the stored deliveries' X-GitHub-Hook-* headers name it.
    let mut app = spawn(&fake, settings(&fake, None)).await;
    let mut delivered = deliver(&fake, &hook, 190, Some(200)).await;
    app.stop().await;
    let missed = deliver(&fake, &hook, 120, Some(502)).await;
    app.start_again_on_same_port().await;
    delivered.extend(deliver(&fake, &hook, 190, Some(200)).await);
    assert_eq!(stored(&app).await, 380);

    let (status, body) = backfill(&app, json!({"since": "3d"})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let run = &body["data"];
    assert_eq!(run["trigger"], "api");
    assert_eq!(run["dryRun"], false);
    assert_eq!(run["checked"], 500, "{run}");
    assert_eq!(run["missing"], 120, "{run}");
    assert_eq!(ids(&run["missingIds"]), missed.iter().cloned().collect());
    assert_eq!(run["requested"], 120, "{run}");
    assert_eq!(run["confirmed"], 120, "{run}");
    assert_eq!(run["errors"], json!([]), "{run}");
    assert_eq!(run["hooks"][0]["hook"], format!("repo:{REPO}:101"));
    // Exactly the missed ones were asked for, once each, a page of 100 at a time.
    let asked: Vec<String> = fake.redelivered();
    assert_eq!(asked.len(), 120);
    assert_eq!(
        asked.iter().cloned().collect::<BTreeSet<_>>(),
        missed.iter().cloned().collect()
    );
    assert!(fake.per_pages().iter().all(|p| p.as_deref() == Some("100")));
    assert_eq!(stored(&app).await, 500);
    for id in missed.iter().take(3) {
        let event = app.wait_for(id, |e| e["status"] == "processed").await;
        assert_eq!(event["headers"]["x-github-hook-id"], "101", "{event}");
    }

    let (status, body) = backfill(&app, json!({})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let second = &body["data"];
    assert_eq!(
        (second["checked"].as_u64(), second["missing"].as_u64()),
        (Some(500), Some(0)),
        "{second}"
    );
    assert_eq!(second["requested"], 0);
    assert_eq!(fake.redelivered().len(), 120);
    assert_eq!(stored(&app).await, 500);

    // The last run shows in GET /api/backfill, health and /metrics.
    let (_, status) = app.get_json("/api/backfill").await;
    let status = &status["data"];
    assert_eq!(status["enabled"], true);
    assert_eq!(status["auth"], "token");
    assert_eq!(status["hooksFrom"], "discovered");
    assert_eq!(status["hooks"], json!([format!("repo:{REPO}:101")]));
    assert_eq!(status["running"], false);
    assert_eq!(status["lastRun"]["checked"], 500);
    assert!(!status.to_string().contains(TOKEN));
    let (_, health) = app.get_json("/api/webhooks/health").await;
    assert_eq!(health["data"]["backfill"]["lastRunClean"], true, "{health}");
    assert_eq!(health["data"]["backfill"]["missing"], 0);
    let metrics = app.metrics().await;
    for line in [
        "hookvault_backfill_requested_total 120",
        "hookvault_backfill_confirmed_total 120",
        "hookvault_backfill_missing_total 120",
        "hookvault_backfill_runs_total{outcome=\"ok\"} 2",
    ] {
        assert!(metrics.contains(line), "{line} in\n{metrics}");
    }
}

#[tokio::test]
async fn a_rate_limited_run_waits_and_completes_and_a_second_run_meanwhile_is_refused() {
    let fake = FakeGitHub::start().await;
    let hook = Hook::org("Octocoders", 202);
    let app = spawn(&fake, settings(&fake, Some("org:Octocoders:202"))).await;
    deliver(&fake, &hook, 110, Some(200)).await;
    fake.set_target("http://127.0.0.1:9/gone");
    let missed = deliver(&fake, &hook, 5, Some(502)).await;
    fake.set_target(&app.url("/api/webhooks/github"));
    deliver(&fake, &hook, 10, Some(200)).await;
    // The log answers "rate limit used up" once; the first redelivery request meets
    // a secondary limit, the next one a 422.
    fake.fail_lists(&[Fault::PrimaryLimit]);
    fake.fail_redeliveries(&[Fault::SecondaryLimit, Fault::Spammed]);
    fake.hold_lists();

    let running = {
        let app_url = app.url("/api/backfill");
        tokio::spawn(async move {
            let response = client()
                .post(app_url)
                .json(&json!({}))
                .send()
                .await
                .unwrap();
            (response.status(), response.json::<Value>().await.unwrap())
        })
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while fake.waiting_lists() == 0 {
        assert!(Instant::now() < deadline, "the run never read the log");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let (status, body) = backfill(&app, json!({})).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["error"]["code"], "backfill_running");
    let (_, now) = app.get_json("/api/backfill").await;
    assert_eq!(now["data"]["running"], true);
    fake.release_lists();

    let (status, body) = running.await.unwrap();
    assert_eq!(status, StatusCode::OK, "{body}");
    let run = &body["data"];
    assert_eq!(run["checked"], 125, "{run}");
    assert_eq!(ids(&run["missingIds"]), missed.iter().cloned().collect());
    assert_eq!(run["requested"], 5, "{run}");
    assert_eq!(run["confirmed"], 5, "{run}");
    assert_eq!(run["errors"], json!([]), "{run}");
    assert!(run["rateLimitWaits"].as_u64().unwrap() >= 2, "{run}");
    assert_eq!(
        fake.faults_answered(),
        [Fault::PrimaryLimit, Fault::SecondaryLimit, Fault::Spammed]
    );
    assert_eq!(stored(&app).await, 125);
}

#[tokio::test]
async fn a_dry_run_lists_the_missing_ids_and_changes_nothing_through_the_api_and_the_command() {
    let fake = FakeGitHub::start().await;
    let hook = Hook::repo(REPO, 303);
    let app = spawn(&fake, settings(&fake, Some(&format!("repo:{REPO}:303")))).await;
    deliver(&fake, &hook, 20, Some(200)).await;
    fake.set_target("http://127.0.0.1:9/gone");
    let missed: BTreeSet<String> = deliver(&fake, &hook, 4, Some(502))
        .await
        .into_iter()
        .collect();
    fake.set_target(&app.url("/api/webhooks/github"));

    let (status, body) = backfill(&app, json!({"since": "1d", "dryRun": true})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"]["dryRun"], true);
    assert_eq!(body["data"]["missing"], 4);
    assert_eq!(ids(&body["data"]["missingIds"]), missed);
    assert_eq!(body["data"]["requested"], 0);
    assert!(fake.redelivered().is_empty());
    assert_eq!(stored(&app).await, 20);

    let command = |args: &[&str]| {
        let dir = tempfile::tempdir().unwrap();
        let mut command = crate::process::command(dir.path());
        command
            .env_remove("HOOKVAULT_API_TOKEN")
            .arg("backfill")
            .arg("--url")
            .arg(&app.address)
            .args(args);
        let output = tokio::process::Command::from(command).output();
        async move {
            let output = output.await.unwrap();
            drop(dir);
            (
                output.status.code(),
                String::from_utf8(output.stdout).unwrap(),
                String::from_utf8(output.stderr).unwrap(),
            )
        }
    };
    let (code, stdout, stderr) = command(&["--dry-run"]).await;
    assert_eq!(code, Some(0), "{stderr}");
    let listed: BTreeSet<String> = stdout.lines().map(str::to_owned).collect();
    assert_eq!(listed, missed, "{stdout}");
    assert!(
        stderr.contains("(dry run)") && stderr.contains("4 missing"),
        "{stderr}"
    );
    assert!(fake.redelivered().is_empty());
    assert_eq!(stored(&app).await, 20);

    let (code, _, stderr) = command(&["--since", "1d"]).await;
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        stderr.contains("4 redeliveries requested, 4 arrived"),
        "{stderr}"
    );
    assert_eq!(stored(&app).await, 24);
    let (code, _, stderr) = command(&["--since", "forever"]).await;
    assert_eq!(code, Some(2), "{stderr}");
}

#[tokio::test]
async fn the_startup_run_catches_up_the_app_hook_found_in_the_stored_headers() {
    let fake = FakeGitHub::start().await;
    let hook = Hook::app(404);
    let key = include_str!("../keys/github-app-test.pem");
    let app_settings = BackfillConfig {
        token: None,
        app: Some(GitHubApp {
            id: APP_ID.into(),
            key: Secret::new(key),
        }),
        ..settings(&fake, None)
    };
    let mut app = spawn(&fake, app_settings).await;
    deliver(&fake, &hook, 3, Some(200)).await;
    app.stop().await;
    let missed: BTreeSet<String> = deliver(&fake, &hook, 2, Some(502))
        .await
        .into_iter()
        .collect();
    // Back with a schedule: its first run is at startup.
    app.config.backfill.interval = Some(Duration::from_secs(3600));
    app.start_again_on_same_port().await;

    let deadline = Instant::now() + Duration::from_secs(60);
    let last = loop {
        let (_, body) = app.get_json("/api/backfill").await;
        if !body["data"]["lastRun"].is_null() {
            break body["data"]["lastRun"].clone();
        }
        assert!(Instant::now() < deadline, "no startup run: {body}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(last["trigger"], "startup");
    assert_eq!(last["hooks"][0]["hook"], "app", "{last}");
    assert_eq!(ids(&last["missingIds"]), missed);
    assert_eq!(
        (last["requested"].as_u64(), last["confirmed"].as_u64()),
        (Some(2), Some(2)),
        "{last}"
    );
    assert_eq!(stored(&app).await, 5);
    let (_, status) = app.get_json("/api/backfill").await;
    assert_eq!(status["data"]["auth"], "app");
    assert_eq!(status["data"]["intervalMinutes"], 60);
}

#[tokio::test]
async fn without_credentials_backfill_is_off_and_says_how_to_turn_it_on() {
    let app = TestApp::spawn().await;
    let (status, body) = app.get_json("/api/backfill").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["data"]["enabled"], false);
    assert_eq!(body["data"]["auth"], "none");
    assert_eq!(body["data"]["intervalMinutes"], Value::Null);
    assert_eq!(body["data"]["lastRun"], Value::Null);
    let (status, body) = backfill(&app, json!({})).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["error"]["code"], "backfill_not_configured");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("HOOKVAULT_GITHUB_TOKEN")
    );
    for bad in [
        json!({"since": "3 weeks"}),
        json!({"since": "0d"}),
        json!({"dryrun": true}),
    ] {
        let (status, body) = backfill(&app, bad.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {body}");
        assert_eq!(body["error"]["code"], "invalid_body");
    }
    let (_, health) = app.get_json("/api/webhooks/health").await;
    assert!(health["data"]["backfill"].is_null(), "{health}");
}

/// The dashboard's Backfill view, in Debian's Chromium: a dry run lists
/// exactly the deliveries missed while hookvault could not take them and stores
/// nothing; "Backfill now" brings them back and shows them arrived; axe finds nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_backfill_view_lists_what_was_missed_and_brings_it_back() {
    if !crate::dashboard::browser_ready() {
        return;
    }
    let fake = FakeGitHub::start().await;
    let hook = Hook::repo(REPO, 505);
    let hooks = format!("repo:{REPO}:505");
    let app = spawn(&fake, settings(&fake, Some(&hooks))).await;
    deliver(&fake, &hook, 6, Some(200)).await;
    fake.set_target("http://127.0.0.1:9/gone");
    let missed = deliver(&fake, &hook, 3, Some(502)).await;
    fake.set_target(&app.url("/api/webhooks/github"));
    assert_eq!(stored(&app).await, 6);

    crate::dashboard::run_script(
        &app,
        "backfill.mjs",
        "backfill",
        &[
            ("HOOK", hooks),
            ("MISSING_IDS", missed.join(",")),
            ("CHECKED", "9".to_owned()),
        ],
    )
    .await;
    assert_eq!(fake.redelivered().len(), 3);
    assert_eq!(stored(&app).await, 9);
}
