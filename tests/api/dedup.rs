//! Both dedup layers: the delivery id (forever, also under a race) and the content
//! key (within the TTL, across delivery ids).

use std::time::Duration;

use reqwest::StatusCode;

use crate::helpers::{TestApp, fixture, new_id};

#[tokio::test]
async fn a_redelivery_is_acknowledged_as_duplicate_and_never_stored_twice() {
    let app = TestApp::spawn().await;
    let body = fixture("workflow_job", 0).bytes;
    let id = new_id();
    let (status, first) = app.post_signed("workflow_job", &id, &body).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(first["data"]["status"], "stored");

    let app = app.restart().await; // "forever" includes across restarts
    let (status, second) = app.post_signed("workflow_job", &id, &body).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(second["data"]["status"], "duplicate");
    assert_eq!(second["data"]["id"], first["data"]["id"]);
    assert_eq!(app.count("").await, 1);
}

#[tokio::test]
async fn fifty_racing_copies_store_exactly_one_record() {
    let app = TestApp::spawn().await;
    let body = fixture("pull_request", 0).bytes;
    let id = new_id();
    let answers =
        futures::future::join_all((0..50).map(|_| app.post_signed("pull_request", &id, &body)))
            .await;

    let mut stored = 0;
    let mut ids = std::collections::HashSet::new();
    for (status, answer) in &answers {
        assert_eq!(*status, StatusCode::OK, "{answer}");
        match answer["data"]["status"].as_str() {
            Some("stored") => stored += 1,
            Some("duplicate") => {}
            other => panic!("unexpected status {other:?}"),
        }
        ids.insert(answer["data"]["id"].as_u64().unwrap());
    }
    assert_eq!(stored, 1);
    assert_eq!(ids.len(), 1, "every answer names the one stored event");
    assert_eq!(app.count("").await, 1);
}

#[tokio::test]
async fn the_same_event_through_two_hooks_is_stored_once() {
    let app = TestApp::spawn().await;
    let body = fixture("workflow_job", 0).bytes;
    let (_, first) = app.post_signed("workflow_job", &new_id(), &body).await;
    let second_id = new_id();
    let (status, second) = app.post_signed("workflow_job", &second_id, &body).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(second["data"]["status"], "duplicate");
    assert_eq!(second["data"]["deliveryId"], second_id.as_str());
    assert_eq!(second["data"]["id"], first["data"]["id"]);
    assert_eq!(app.count("").await, 1);

    // Counted on the original, and its delivery id is remembered too.
    let (_, listed) = app.get_json("/api/webhooks/events").await;
    assert_eq!(listed["data"][0]["contentDuplicates"], 1);
    let (_, again) = app.post_signed("workflow_job", &second_id, &body).await;
    assert_eq!(again["data"]["status"], "duplicate");
    assert_eq!(app.count("").await, 1);
}

#[tokio::test]
async fn different_events_about_one_entity_are_all_kept() {
    let app = TestApp::spawn().await;
    // Examples 5, 3 and 1 are one job moving through queued, in_progress, completed.
    for n in [5, 3, 1] {
        let (_, answer) = app
            .post_signed("workflow_job", &new_id(), &fixture("workflow_job", n).bytes)
            .await;
        assert_eq!(answer["data"]["status"], "stored", "workflow_job/{n}");
    }
    assert_eq!(app.count("").await, 3);
}

#[tokio::test]
async fn the_fixtures_own_variants_of_one_event_are_folded_together() {
    // workflow_job examples 1 and 2 are two payloads of one job's "completed" event.
    let app = TestApp::spawn().await;
    let (_, first) = app
        .post_signed("workflow_job", &new_id(), &fixture("workflow_job", 1).bytes)
        .await;
    let (_, second) = app
        .post_signed("workflow_job", &new_id(), &fixture("workflow_job", 2).bytes)
        .await;
    assert_eq!(first["data"]["status"], "stored");
    assert_eq!(second["data"]["status"], "duplicate");
    assert_eq!(app.count("").await, 1);
}

#[tokio::test]
async fn a_zero_ttl_turns_content_dedup_off() {
    let app = TestApp::spawn_with(|c| c.dedup_ttl = Duration::ZERO).await;
    let body = fixture("issues", 0).bytes;
    let answers = futures::future::join_all((0..10).map(|_| async {
        let id = new_id();
        app.post_signed("issues", &id, &body).await
    }))
    .await;
    assert!(answers.iter().all(|(_, a)| a["data"]["status"] == "stored"));
    assert_eq!(app.count("").await, 10);
}

#[tokio::test]
async fn content_dedup_ends_with_its_window() {
    let app = TestApp::spawn_with(|c| c.dedup_ttl = Duration::from_millis(300)).await;
    let body = fixture("issues", 0).bytes;
    let (_, first) = app.post_signed("issues", &new_id(), &body).await;
    assert_eq!(first["data"]["status"], "stored");
    tokio::time::sleep(Duration::from_millis(400)).await;
    let (_, later) = app.post_signed("issues", &new_id(), &body).await;
    assert_eq!(
        later["data"]["status"], "stored",
        "outside the window it is a new event"
    );
    assert_eq!(app.count("").await, 2);
}

#[tokio::test]
async fn the_content_window_survives_a_restart() {
    let app = TestApp::spawn().await;
    let body = fixture("release", 0).bytes;
    let (_, first) = app.post_signed("release", &new_id(), &body).await;
    let app = app.restart().await;
    let (_, second) = app.post_signed("release", &new_id(), &body).await;
    assert_eq!(second["data"]["status"], "duplicate");
    assert_eq!(second["data"]["id"], first["data"]["id"]);
}
