//! Online backup and export of a running instance: `hookvault backup` during a
//! 32-connection ingest load, restored into a fresh directory, holds every delivery
//! acknowledged before it began, and `verify` is clean on it; `GET /api/export`
//! streams what the events API lists, in the format `hookvault import` takes.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Instant;

use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{Delivery, TestApp, fixture, fixtures, new_id};
use crate::process::command;
use hookvault::config::Secret;

/// Runs the binary with `args` on `data_dir`; (exit code, stderr).
fn run(args: &[&str], data_dir: &Path) -> (Option<i32>, String) {
    let output = command(data_dir)
        .env_remove("HOOKVAULT_API_TOKEN")
        .args(args)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    (output.status.code(), stderr)
}

#[tokio::test]
async fn a_backup_taken_under_load_restores_every_delivery_acknowledged_before_it() {
    let app = Arc::new(TestApp::spawn().await);
    let corpus: Arc<Vec<(String, Vec<u8>)>> =
        Arc::new(fixtures().into_iter().map(|f| (f.event, f.bytes)).collect());
    let acked = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let workers: Vec<_> = (0..32)
        .map(|worker| {
            let (app, corpus) = (app.clone(), corpus.clone());
            let (acked, stop) = (acked.clone(), stop.clone());
            tokio::spawn(async move {
                let mut answered = Vec::new();
                let mut i = worker;
                while !stop.load(Ordering::Relaxed) {
                    let (event, body) = &corpus[i % corpus.len()];
                    i += 32;
                    let id = new_id();
                    let (status, answer) =
                        app.post_unapplied(Delivery::new(event, &id, body)).await;
                    assert_eq!(status, StatusCode::OK, "ingest goes on: {answer}");
                    answered.push((id, Instant::now()));
                    acked.fetch_add(1, Ordering::Relaxed);
                }
                answered
            })
        })
        .collect();
    while acked.load(Ordering::Relaxed) < 500 {
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("hookvault.tar.zst");
    let started = Instant::now();
    let acked_at_start = acked.load(Ordering::Relaxed);
    let (code, stderr) = {
        let (file, url) = (file.clone(), app.address.clone());
        let scratch = dir.path().join("unused");
        tokio::task::spawn_blocking(move || {
            run(
                &["backup", "--to", file.to_str().unwrap(), "--url", &url],
                &scratch,
            )
        })
        .await
        .unwrap()
    };
    let acked_during = acked.load(Ordering::Relaxed) - acked_at_start;
    stop.store(true, Ordering::Relaxed);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stderr.contains("backup: "), "{stderr}");
    let mut before = Vec::new();
    for worker in workers {
        let answered = worker.await.unwrap();
        before.extend(
            answered
                .into_iter()
                .filter(|(_, at)| *at < started)
                .map(|(id, _)| id),
        );
    }
    assert!(
        acked_during > 0,
        "deliveries were acknowledged while the backup ran"
    );

    let restored = Arc::new(tempfile::tempdir().unwrap());
    let from = file.to_str().unwrap();
    let (code, stderr) = run(&["restore", "--from", from], restored.path());
    assert_eq!(code, Some(0), "{stderr}");
    let (code, stderr) = run(&["restore", "--from", from], restored.path());
    assert_eq!(code, Some(2), "a non-empty directory is refused: {stderr}");
    assert!(stderr.contains("not empty"), "{stderr}");

    let mut fresh = TestApp::spawn_in(restored.clone(), |_| {}, Vec::new()).await;
    let mut missing = Vec::new();
    for id in &before {
        let (status, _) = fresh.get_json(&format!("/api/webhooks/events/{id}")).await;
        if status != StatusCode::OK {
            missing.push(id.clone());
        }
    }
    assert!(
        missing.is_empty(),
        "{} of {} acknowledged before the backup are missing: {:?}",
        missing.len(),
        before.len(),
        &missing[..missing.len().min(5)]
    );
    fresh.settle().await;
    fresh.stop().await;
    let (code, stderr) = run(&["verify"], restored.path());
    assert_eq!(
        code,
        Some(0),
        "verify is clean on the restored store: {stderr}"
    );
}

#[tokio::test]
async fn a_damaged_backup_is_refused_and_the_directory_left_empty() {
    let app = TestApp::spawn().await;
    let ping = fixture("ping", 1);
    app.post_signed("ping", &new_id(), &ping.bytes).await;
    let archive = app
        .client
        .get(app.url("/api/backup"))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cut = dir.path().join("cut.tar.zst");
    std::fs::write(&cut, &archive[..archive.len() / 2]).unwrap();
    let target = dir.path().join("data");
    let (code, stderr) = run(&["restore", "--from", cut.to_str().unwrap()], &target);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains("not a complete hookvault backup"),
        "{stderr}"
    );
    assert_eq!(std::fs::read_dir(&target).unwrap().count(), 0);
}

/// NDJSON lines of an export answer.
async fn export(app: &TestApp, query: &str, token: Option<&str>) -> (StatusCode, Vec<Value>) {
    let mut request = app.client.get(app.url(&format!("/api/export?{query}")));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    let text = response.text().await.unwrap();
    let lines = match status {
        StatusCode::OK => text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect(),
        _ => Vec::new(),
    };
    (status, lines)
}

#[tokio::test]
async fn export_streams_what_the_events_api_lists_and_import_takes_it() {
    const TOKEN: &str = "export-test-token-0123456789";
    let app = TestApp::spawn_with(|c| c.api_token = Some(Secret::new(TOKEN))).await;
    let all = fixtures();
    for f in &all {
        app.post(Delivery::new(&f.event, &new_id(), &f.bytes)).await;
    }
    let (status, _) = export(&app, "", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "behind the API token");

    let (status, lines) = export(&app, "", Some(TOKEN)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(lines.len(), all.len());
    let (status, pushes) = export(&app, "event=push", Some(TOKEN)).await;
    assert_eq!(status, StatusCode::OK);
    let expected = all.iter().filter(|f| f.event == "push").count();
    assert!(expected > 0);
    assert_eq!(pushes.len(), expected);
    assert!(pushes.iter().all(|l| l["event"] == "push"));
    let (status, _) = export(&app, "status=sideways", Some(TOKEN)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("export.ndjson");
    let text: Vec<String> = lines.iter().map(Value::to_string).collect();
    std::fs::write(&file, text.join("\n") + "\n").unwrap();
    let target = Arc::new(tempfile::tempdir().unwrap());
    let (code, stderr) = run(&["import", file.to_str().unwrap()], target.path());
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        stderr.contains(&format!("{} imported", all.len())),
        "{stderr}"
    );
    let imported = TestApp::spawn_in(target, |_| {}, Vec::new()).await;
    assert_eq!(imported.count("").await, all.len() as u64);
}
