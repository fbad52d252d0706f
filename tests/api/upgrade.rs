//! Upgrades: a store written by the previous store schema (1) opens with this
//! build, keeps every delivery and verifies clean; a store from a newer release is
//! refused at startup with both versions named.

use std::path::Path;
use std::sync::Arc;

use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{Delivery, TestApp, fixture};
use crate::process::command;

const OLD_STORE: &[u8] = include_bytes!("../old-stores/store-schema-1.redb.zst");
const OLD_IDS: &str = include_str!("../old-stores/store-schema-1.json");

/// A data directory holding the schema-1 store.
fn old_store() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let db = zstd::decode_all(OLD_STORE).unwrap();
    std::fs::write(dir.path().join(hookvault::store::DB_FILE), db).unwrap();
    dir
}

fn run(args: &[&str], data_dir: &Path) -> (Option<i32>, String) {
    let output = command(data_dir)
        .env("GITHUB_WEBHOOK_SECRET", crate::helpers::SECRET)
        .args(args)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    (output.status.code(), stderr)
}

#[tokio::test]
async fn a_store_written_by_schema_1_opens_keeps_everything_and_verifies() {
    let dir = Arc::new(old_store());
    let ids: Value = serde_json::from_str(OLD_IDS).unwrap();
    let stored: Vec<&str> = ids["stored"]
        .as_array()
        .unwrap()
        .iter()
        .map(|id| id.as_str().unwrap())
        .collect();
    let mut app = TestApp::spawn_in(dir.clone(), |_| {}, Vec::new()).await;
    for id in &stored {
        let (status, body) = app.get_json(&format!("/api/webhooks/events/{id}")).await;
        assert_eq!(status, StatusCode::OK, "{id}: {body}");
    }
    assert_eq!(app.count("").await, stored.len() as u64);

    // Delivery ids stay unique forever across the upgrade, also the one schema 1
    // recorded only as a content duplicate.
    let job = fixture("workflow_job", 1);
    let duplicate = ids["contentDuplicate"].as_str().unwrap();
    for id in [stored[0], duplicate] {
        let (status, answer) = app
            .post(Delivery::new("workflow_job", id, &job.bytes))
            .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(answer["data"]["status"], "duplicate", "{id}: {answer}");
    }
    let (status, answer) = app
        .post_signed("ping", "after-the-upgrade", br#"{"zen":"x"}"#)
        .await;
    assert_eq!(
        (status, &answer["data"]["status"]),
        (StatusCode::OK, &Value::from("stored"))
    );
    app.settle().await;
    app.stop().await;

    let (code, stderr) = run(&["verify"], dir.path());
    assert_eq!(code, Some(0), "{stderr}");
}

#[test]
fn a_store_from_a_newer_release_is_refused_naming_both_versions() {
    let dir = old_store();
    {
        // What a future release would leave: a schema number this build does not know.
        let db = redb::Database::create(dir.path().join(hookvault::store::DB_FILE)).unwrap();
        let txn = db.begin_write().unwrap();
        txn.open_table(redb::TableDefinition::<&str, u64>::new("meta_v1"))
            .unwrap()
            .insert("schema_version", hookvault::store::SCHEMA_VERSION + 1)
            .unwrap();
        txn.commit().unwrap();
    }
    let newer = format!("store schema {}", hookvault::store::SCHEMA_VERSION + 1);
    let known = format!("reads schema {} at most", hookvault::store::SCHEMA_VERSION);
    for args in [&["--listen", "127.0.0.1:0"][..], &["verify"]] {
        let (code, stderr) = run(args, dir.path());
        assert_eq!(code, Some(2), "{args:?}: {stderr}");
        let lines: Vec<&str> = stderr
            .lines()
            .filter(|l| l.starts_with("hookvault:"))
            .collect();
        assert_eq!(lines.len(), 1, "one line: {stderr}");
        assert!(
            lines[0].contains(&newer) && lines[0].contains(&known),
            "{stderr}"
        );
    }
}
