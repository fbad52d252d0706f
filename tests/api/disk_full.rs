//! A full disk, on a real size-capped filesystem: a tmpfs mounted for the test (root
//! only; without it the test is reported skipped, and fails under CI). While
//! writes fail, ingest answers 503 and never 2xx, health says why; nothing stored
//! before is damaged; once space is freed, ingest resumes on its own. When only the
//! search index's disk is full, deliveries are stored as usual and the index loses
//! none of them.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use rand::Rng;
use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{Delivery, TestApp, new_id, open_store};

/// A tmpfs of a fixed size, unmounted on drop.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(size_mb: u32) -> Option<Self> {
        let dir = std::env::temp_dir().join(format!("hookvault-disk-full-{}", new_id()));
        Self::mount_at(dir, size_mb)
    }

    fn mount_at(dir: PathBuf, size_mb: u32) -> Option<Self> {
        std::fs::create_dir_all(&dir).ok()?;
        let mounted = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size_mb}m"), "tmpfs"])
            .arg(&dir)
            .output()
            .is_ok_and(|o| o.status.success());
        if !mounted {
            crate::skips::skip("cannot mount a tmpfs here (needs root)");
            let _ = std::fs::remove_dir(&dir);
            return None;
        }
        Some(Self(dir))
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
        let _ = std::fs::remove_dir(&self.0);
    }
}

/// Fills the filesystem with one file until the disk refuses; returns its path.
fn fill(dir: &Path) -> PathBuf {
    let path = dir.join("filler");
    let mut file = std::fs::File::create(&path).unwrap();
    let chunk = vec![0xA5u8; 64 * 1024];
    while file.write_all(&chunk).and_then(|()| file.flush()).is_ok() {}
    path
}

/// A delivery of about `size` bytes that compresses poorly (like a big real payload).
fn bulky(size: usize) -> Vec<u8> {
    let mut rng = rand::rng();
    let pad: String = (0..size)
        .map(|_| rng.sample(rand::distr::Alphanumeric) as char)
        .collect();
    serde_json::to_vec(&json!({"zen": "Keep it logically awesome.", "hook_id": 1, "pad": pad}))
        .unwrap()
}

#[tokio::test]
async fn a_full_disk_gets_503_and_ingest_resumes_when_space_is_freed() {
    let Some(mount) = Tmpfs::mount(48) else {
        return;
    };
    let data_dir = Arc::new(tempfile::tempdir_in(&mount.0).unwrap());
    let app = TestApp::spawn_in(
        data_dir.clone(),
        |c| c.dedup_ttl = Duration::ZERO,
        Vec::new(),
    )
    .await;

    let mut stored = Vec::new();
    for _ in 0..5 {
        let (id, body) = (new_id(), bulky(50_000));
        let (status, answer) = app.post(Delivery::new("ping", &id, &body)).await;
        assert_eq!(status, StatusCode::OK, "{answer}");
        stored.push((id, body));
    }

    let filler = fill(&mount.0);
    // redb has some room left inside its file; keep delivering until the disk says no.
    let mut refused = None;
    for _ in 0..400 {
        let (id, body) = (new_id(), bulky(50_000));
        let (status, answer) = app.post(Delivery::new("ping", &id, &body)).await;
        match status {
            StatusCode::OK => stored.push((id, body)),
            StatusCode::SERVICE_UNAVAILABLE => {
                assert_eq!(answer["error"]["code"], "storage_unavailable", "{answer}");
                refused = Some(id);
                break;
            }
            other => panic!("a full disk answered {other}: {answer}"),
        }
    }
    let refused = refused.expect("the full disk never refused a write");

    // Past the writer's reopen interval: the file may be open again by now (opening
    // needs no free space), but the disk is still full, so health must still say so.
    tokio::time::sleep(Duration::from_millis(1_200)).await;
    let (status, health) = app.get_json("/api/webhooks/health").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(health["data"]["status"], "unhealthy", "{health}");
    let reasons = health["data"]["reasons"].to_string();
    assert!(reasons.contains("store"), "{reasons}");

    // Space comes back: the next deliveries are stored without a restart.
    std::fs::remove_file(&filler).unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let (id, body) = (new_id(), bulky(1_000));
        let (status, answer) = app.post(Delivery::new("ping", &id, &body)).await;
        if status == StatusCode::OK {
            stored.push((id, body));
            break;
        }
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{answer}");
        assert!(
            tokio::time::Instant::now() < deadline,
            "ingest never resumed"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // GitHub's redelivery of the refused one is stored too.
    let body = bulky(1_000);
    assert_eq!(
        app.post(Delivery::new("ping", &refused, &body)).await.0,
        StatusCode::OK
    );
    stored.push((refused, body));

    // Every acknowledged delivery is there, byte for byte.
    for (id, body) in &stored {
        let response = app
            .client
            .get(app.url(&format!("/api/webhooks/events/{id}/raw")))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{id}");
        assert_eq!(
            response.bytes().await.unwrap().as_ref(),
            body.as_slice(),
            "{id}"
        );
    }
    // The search index, whose writes failed too, catches up to the same count.
    wait_until_searchable(&app, stored.len()).await;
    let mut app = app;
    app.stop().await;

    // And the store is consistent: counters and indexes recount to what they say.
    let (store, writer) = open_store(data_dir.path());
    assert_eq!(store.verify().await.unwrap(), Vec::new());
    drop(store);
    writer.join();
    drop(data_dir);
    drop(mount);
}

/// Waits until search finds `count` deliveries with nothing left to index.
async fn wait_until_searchable(app: &TestApp, count: usize) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let (_, found) = app
            .get_json("/api/webhooks/search?q=logically&limit=1")
            .await;
        let data = &found["data"];
        if data["total"] == count && data["indexLag"] == 0 && data["rebuilding"] == false {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "index stuck at {found}, expected {count}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn a_full_index_disk_stores_every_delivery_and_search_catches_up() {
    let data_dir = Arc::new(tempfile::tempdir().unwrap());
    let index_dir = hookvault::search::SearchIndex::dir(data_dir.path());
    let Some(mount) = Tmpfs::mount_at(index_dir, 16) else {
        return;
    };
    let app = TestApp::spawn_in(
        data_dir.clone(),
        |c| c.dedup_ttl = Duration::ZERO,
        Vec::new(),
    )
    .await;
    let deliver = |size| {
        let app = &app;
        async move {
            let (status, answer) = app
                .post(Delivery::new("ping", &new_id(), &bulky(size)))
                .await;
            assert_eq!(status, StatusCode::OK, "{answer}");
        }
    };
    for _ in 0..3 {
        deliver(2_000).await;
    }
    wait_until_searchable(&app, 3).await;

    let filler = fill(&mount.0);
    // The store is on another disk: deliveries are acknowledged as usual.
    for _ in 0..20 {
        deliver(20_000).await;
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let health = loop {
        let (_, health) = app.get_json("/api/webhooks/health").await;
        if health["data"]["search"]["lastFailureTime"].is_string() {
            break health;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the index never reported its failure: {health}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(
        health["data"]["reasons"]
            .to_string()
            .contains("search index"),
        "{health}"
    );
    assert!(
        health["data"]["search"]["indexLag"].as_u64() > Some(0),
        "{health}"
    );

    // Space comes back: what the index held when its writes failed is indexed again.
    std::fs::remove_file(&filler).unwrap();
    deliver(2_000).await;
    wait_until_searchable(&app, 24).await;
    let mut app = app;
    app.stop().await;
    drop(mount);
}
