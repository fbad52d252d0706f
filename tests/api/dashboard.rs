//! The embedded dashboard: HTTP caching behaviour, and the whole UI driven in
//! Debian's Chromium by `tests/browser/dashboard.mjs` (playwright-core). `.ci/run`
//! installs both; outside CI a missing browser skips the browser test (named on
//! standard output when the run ends), under CI it fails.

use std::path::PathBuf;
use std::sync::Arc;

use hookvault::ingest::Payload;
use hookvault::process::Stage;
use hookvault::store::EventRecord;
use reqwest::StatusCode;

use crate::helpers::{SECRET, TestApp};

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

fn browser_ready() -> bool {
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
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let shots = dir
        .join("target/screenshots")
        .join(if token.is_some() { "token" } else { "open" });
    let mut command = tokio::process::Command::new("node");
    command
        .arg(dir.join("tests/browser/dashboard.mjs"))
        .arg(&shots)
        .env("HOOKVAULT_URL", &app.address)
        .env("HOOKVAULT_SECRET", SECRET)
        .kill_on_drop(true);
    if let Some(token) = token {
        command.env("HOOKVAULT_TOKEN", token);
    }
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
