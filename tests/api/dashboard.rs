//! The embedded dashboard: HTTP caching behaviour, and the whole UI driven in
//! Debian's Chromium by `tests/browser/dashboard.mjs` (playwright-core). `.ci/run`
//! installs both; outside CI a missing browser skips the browser test (named on
//! standard output when the run ends), under CI it fails.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use hookvault::ingest::Payload;
use hookvault::process::Stage;
use hookvault::store::EventRecord;
use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{Delivery, SECRET, TestApp, fixture, new_id};
use crate::receiver::{Answer, Receiver};

/// Fails a payload marked `fail_until_replay` on its first attempt only: a
/// forwarding target that was down and is back by the time someone replays.
struct DownOnce;

impl Stage for DownOnce {
    fn process(&self, record: &EventRecord, payload: &Payload) -> Result<(), String> {
        if payload.whole()["fail_until_replay"] == true && record.attempts == 0 {
            return Err("forwarding target unreachable".into());
        }
        Ok(())
    }
}

#[tokio::test]
async fn the_dashboard_is_served_with_etags_and_fingerprinted_assets() {
    let app = TestApp::spawn().await;
    let client = crate::helpers::client_builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let root = client.get(app.url("/")).send().await.unwrap();
    assert_eq!(root.status(), StatusCode::TEMPORARY_REDIRECT);
    assert_eq!(root.headers()["location"], "/dashboard");

    let page = client.get(app.url("/dashboard")).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    assert!(
        page.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    assert_eq!(page.headers()["cache-control"], "no-cache");
    let etag = page.headers()["etag"].to_str().unwrap().to_owned();
    assert!(
        etag.starts_with('"') && etag.len() > 10,
        "strong etag: {etag}"
    );
    let html = page.text().await.unwrap();
    let again = client
        .get(app.url("/dashboard"))
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), StatusCode::NOT_MODIFIED);

    let script = html
        .split("src=\"/dashboard/assets/")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap();
    assert!(
        script.starts_with("app.") && script.ends_with(".js") && script.len() > "app..js".len(),
        "{script}"
    );
    let asset = client
        .get(app.url(&format!("/dashboard/assets/{script}")))
        .send()
        .await
        .unwrap();
    assert_eq!(asset.status(), StatusCode::OK);
    assert!(
        asset.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/javascript")
    );
    assert_eq!(
        asset.headers()["cache-control"],
        "public, max-age=31536000, immutable"
    );
    let stale = client
        .get(app.url("/dashboard/assets/app.000000000000.js"))
        .send()
        .await
        .unwrap();
    assert_eq!(stale.status(), StatusCode::NOT_FOUND);
    for external in ["http://", "https://"] {
        assert!(
            !html.contains(&format!("src=\"{external}"))
                && !html.contains(&format!("href=\"{external}")),
            "no CDN"
        );
    }
}

pub(crate) fn browser_ready() -> bool {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/browser");
    let ready = dir.join("node_modules/playwright-core").exists()
        && PathBuf::from("/usr/bin/chromium").exists();
    if !ready {
        crate::skips::skip(
            "chromium or playwright-core (npm ci --prefix tests/browser) is not installed",
        );
    }
    ready
}

async fn run_browser(app: &TestApp, token: Option<&str>) {
    let shots = if token.is_some() { "token" } else { "open" };
    let mut env = vec![("HOOKVAULT_SECRET", SECRET.to_owned())];
    if let Some(token) = token {
        env.push(("HOOKVAULT_TOKEN", token.to_owned()));
    }
    run_script(app, "dashboard.mjs", shots, &env).await;
}

/// Runs `tests/browser/<script>` against the app; it must end with "all checks passed".
pub(crate) async fn run_script(app: &TestApp, script: &str, shots: &str, env: &[(&str, String)]) {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let shots = dir.join("target/screenshots").join(shots);
    let mut command = tokio::process::Command::new("node");
    command
        .arg(dir.join("tests/browser").join(script))
        .arg(&shots)
        .env("HOOKVAULT_URL", &app.address)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .kill_on_drop(true);
    let output = tokio::time::timeout(std::time::Duration::from_secs(120), command.output())
        .await
        .expect("browser run finished in time")
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "browser checks failed:\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains("all checks passed"), "{stdout}");
    println!("screenshots in {}", shots.display());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_works_in_a_real_browser() {
    if !browser_ready() {
        return;
    }
    let app = TestApp::spawn_full(|c| c.max_retries = 0, vec![Arc::new(DownOnce)]).await;
    run_browser(&app, None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_asks_for_the_token_once_and_uses_it() {
    if !browser_ready() {
        return;
    }
    let token = "dashboard-token-0123456789";
    let app = TestApp::spawn_full(
        |c| {
            c.max_retries = 0;
            c.api_token = Some(hookvault::config::Secret::new(token));
        },
        vec![Arc::new(DownOnce)],
    )
    .await;
    run_browser(&app, Some(token)).await;
}

/// From another machine (behind a proxy, so never local) with the token generated
/// into the data directory: the page explains the 401 in the server's words, has
/// Cancel, says when a token is wrong, and gets in with the right one
/// (`tests/browser/remote.mjs`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_explains_a_401_to_another_machine() {
    if !browser_ready() {
        return;
    }
    let token = "generated-token-0123456789abcdef";
    let app = TestApp::spawn_with(|c| {
        c.api_token = Some(hookvault::config::Secret::new(token));
        c.api_token_source =
            hookvault::config::SecretSource::LoadedFromFile(c.data_dir.join("api-token"));
    })
    .await;
    run_script(
        &app,
        "remote.mjs",
        "remote",
        &[("HOOKVAULT_TOKEN", token.to_owned())],
    )
    .await;
}

/// The Forwarding view: a target that refused two deliveries shows its
/// counts, attempts and failed deliveries; both are re-sent from the page (one, then
/// all after a confirmation) and reach the receiver; a settings target is read-only;
/// a target is created, edited and deleted through the form; axe finds nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_forwarding_view_shows_targets_and_resends_failed_deliveries() {
    if !browser_ready() {
        return;
    }
    let receiver = Receiver::start().await;
    let from_settings = Receiver::start().await;
    let settings_url = from_settings.url.clone();
    let app = TestApp::spawn_with(|c| c.forward = vec![settings_url]).await;
    let refused = [new_id(), new_id()];
    let refuse = Arc::new(AtomicBool::new(true));
    receiver.answer({
        let (refuse, refused) = (refuse.clone(), refused.clone());
        move |request| {
            let id = request.delivery_id();
            if refuse.load(Ordering::SeqCst) && refused.iter().any(|r| r == id) {
                Answer::Status(422)
            } else {
                Answer::Status(200)
            }
        }
    });
    let (status, body) = app
        .post_json(
            "/api/forwarding/targets",
            json!({"name": "ci", "url": receiver.url, "start": "beginning", "maxAttempts": 1}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let taken = new_id();
    for (fixture, id) in [
        (fixture("push", 0), &refused[0]),
        (fixture("issues", 0), &refused[1]),
        (fixture("workflow_job", 1), &taken),
    ] {
        let (status, body) = app
            .post(Delivery::new(&fixture.event, id, &fixture.bytes))
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    receiver
        .wait_until("the three deliveries", |r| r.len() == 3)
        .await;
    let view = loop {
        let (_, body) = app.get_json("/api/forwarding/targets/ci").await;
        let view = body["data"].clone();
        if view["failed"] == 2 && view["delivered"] == 1 && view["inFlight"] == 0 {
            break view;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    let (_, targets) = app.get_json("/api/forwarding/targets").await;
    let settings_name = targets["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["source"] == "settings")
        .expect("the settings target")["name"]
        .as_str()
        .unwrap()
        .to_owned();
    // The target takes everything from now on; only a re-send brings the two back.
    refuse.store(false, Ordering::SeqCst);

    run_script(
        &app,
        "forwarding.mjs",
        "forwarding",
        &[
            ("TARGET", "ci".to_owned()),
            ("SETTINGS_TARGET", settings_name),
            ("FAILED_IDS", refused.join(",")),
            ("DELIVERED", view["delivered"].to_string()),
            ("RECEIVER_URL", receiver.url.clone()),
        ],
    )
    .await;

    let received = receiver.received();
    for id in &refused {
        let attempts: Vec<u32> = received
            .iter()
            .filter(|r| r.delivery_id() == id)
            .map(|r| r.attempt())
            .collect();
        assert_eq!(attempts, [1, 2], "{id}: refused once, re-sent once");
    }
    let (_, body) = app.get_json("/api/forwarding/targets/ci").await;
    assert_eq!(body["data"]["failed"], 0, "{body}");
    assert_eq!(body["data"]["delivered"], 3, "{body}");
}
