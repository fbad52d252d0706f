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
async fn the_same_event_through_two_hooks_is_kept_as_a_findable_duplicate() {
    let app = TestApp::spawn().await;
    let body = fixture("workflow_job", 0).bytes;
    let first_id = new_id();
    let (_, first) = app.post_signed("workflow_job", &first_id, &body).await;
    let second_id = new_id();
    let (status, second) = app.post_signed("workflow_job", &second_id, &body).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(second["data"]["status"], "duplicate");
    assert_eq!(second["data"]["deliveryId"], second_id.as_str());
    assert_eq!(second["data"]["duplicateOf"], first_id.as_str());
    assert_ne!(
        second["data"]["id"], first["data"]["id"],
        "it has an id of its own"
    );

    // Findable by its own delivery id, with its exact bytes.
    let (status, detail) = app
        .get_json(&format!("/api/webhooks/events/{second_id}"))
        .await;
    assert_eq!(status, StatusCode::OK, "{detail}");
    assert_eq!(detail["data"]["status"], "duplicate");
    assert_eq!(detail["data"]["duplicateOf"], first_id.as_str());
    assert_eq!(detail["data"]["id"], second["data"]["id"]);
    assert_eq!(detail["data"]["attempts"], 0, "never processed");
    let raw = app
        .client
        .get(app.url(&format!("/api/webhooks/events/{second_id}/raw")))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(raw.as_ref(), body.as_slice());

    // Listed, marked, and counted once: as a duplicate, not as an event.
    app.settle().await;
    assert_eq!(app.count("status=duplicate").await, 1);
    assert_eq!(app.count("status=processed").await, 1);
    let (_, original) = app
        .get_json(&format!("/api/webhooks/events/{first_id}"))
        .await;
    assert_eq!(original["data"]["contentDuplicates"], 1);
    let (_, stats) = app.get_json("/api/webhooks/statistics?hours=1").await;
    assert_eq!(stats["data"]["summary"]["totalEvents"], 1, "{stats}");
    assert_eq!(stats["data"]["summary"]["duplicateEvents"], 1, "{stats}");

    // Its id stays a duplicate forever, and a replay says what to replay instead.
    let (_, again) = app.post_signed("workflow_job", &second_id, &body).await;
    assert_eq!(again["data"]["status"], "duplicate");
    assert_eq!(again["data"]["id"], second["data"]["id"]);
    let response = app
        .client
        .post(app.url(&format!("/api/webhooks/replay/{second_id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CONFLICT);
    let refusal: serde_json::Value = response.json().await.unwrap();
    assert_eq!(refusal["error"]["code"], "duplicate_delivery");
    assert!(
        refusal["error"]["message"]
            .as_str()
            .unwrap()
            .contains(&first_id)
    );
}

#[tokio::test]
async fn a_tag_deleted_and_created_again_is_two_events() {
    // `create` and `delete` payloads carry only the ref: nothing tells two of them
    // apart, so they are never folded.
    let app = TestApp::spawn().await;
    for event in ["create", "delete", "create"] {
        let body = fixture(event, 0).bytes;
        let (_, answer) = app.post_signed(event, &new_id(), &body).await;
        assert_eq!(answer["data"]["status"], "stored", "{event}: {answer}");
    }
    assert_eq!(app.count("").await, 3);
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
async fn payloads_that_differ_anywhere_are_different_events() {
    // workflow_job examples 1 and 2 are one job's "completed" event as recorded twice,
    // with different details: a key over chosen fields folded them into one.
    let app = TestApp::spawn().await;
    for n in [1, 2] {
        let (_, answer) = app
            .post_signed("workflow_job", &new_id(), &fixture("workflow_job", n).bytes)
            .await;
        assert_eq!(answer["data"]["status"], "stored", "workflow_job/{n}");
    }
    assert_eq!(app.count("").await, 2);
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
    let first_id = new_id();
    app.post_signed("release", &first_id, &body).await;
    let app = app.restart().await;
    let (_, second) = app.post_signed("release", &new_id(), &body).await;
    assert_eq!(second["data"]["status"], "duplicate");
    assert_eq!(second["data"]["duplicateOf"], first_id.as_str());
}
