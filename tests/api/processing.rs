//! Processing: pending → processed/failed, automatic retries with backoff, replay,
//! retry-failed, test events, and pending work picked up after a restart.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::Duration;

use hookvault::ingest::Payload;
use hookvault::process::Stage;
use hookvault::store::EventRecord;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{TestApp, fixture, new_id};

/// A later stage that fails while `broken` is set (a forwarding target that is down),
/// or for its first `fail_first` calls.
#[derive(Default)]
struct FlakyStage {
    broken: AtomicBool,
    fail_first: AtomicU32,
    calls: AtomicU32,
}

impl Stage for FlakyStage {
    fn process(&self, _record: &EventRecord, _payload: &Payload) -> Result<(), String> {
        let call = self.calls.fetch_add(1, Ordering::SeqCst);
        if self.broken.load(Ordering::SeqCst) || call < self.fail_first.load(Ordering::SeqCst) {
            return Err("forwarding target unreachable".into());
        }
        Ok(())
    }
}

fn is_final(event: &Value) -> bool {
    event["status"] == "processed"
        || (event["status"] == "failed" && event["nextAttemptAt"].is_null())
}

#[tokio::test]
async fn a_delivery_is_stored_already_processed_or_failed_with_its_retry_due() {
    let app = TestApp::spawn_with(|c| c.max_retries = 1).await;
    // The first attempt is committed with the delivery: the ack means processed.
    let fine = fixture("workflow_job", 0);
    let id = new_id();
    let (status, _) = app.post_signed("workflow_job", &id, &fine.bytes).await;
    assert_eq!(status, StatusCode::OK);
    let (_, event) = app.get_json(&format!("/api/webhooks/events/{id}")).await;
    assert_eq!(event["data"]["status"], "processed", "{event}");
    assert_eq!(event["data"]["attempts"], 1);
    assert!(event["data"]["processingTimeMs"].is_number(), "{event}");

    // A failed first attempt is stored failed with its retry scheduled, and retried.
    let broken = new_id();
    let body = br#"{"action":"completed","repository":{"full_name":"octo/app"}}"#;
    app.post_signed("workflow_job", &broken, body).await;
    let (_, event) = app
        .get_json(&format!("/api/webhooks/events/{broken}"))
        .await;
    assert_eq!(event["data"]["status"], "failed", "{event}");
    assert_eq!(event["data"]["attempts"], 1);
    assert!(event["data"]["nextAttemptAt"].is_string(), "{event}");
    let event = app.wait_for(&broken, |e| e["attempts"] == 2).await;
    assert!(event["nextAttemptAt"].is_null(), "no retries left: {event}");
}

#[tokio::test]
async fn a_payload_failing_its_structure_check_is_kept_retried_then_failed() {
    let app = TestApp::spawn_with(|c| c.max_retries = 2).await;
    let id = new_id();
    let body = br#"{"action":"completed","repository":{"full_name":"octo/app"}}"#;
    let (status, answer) = app.post_signed("workflow_job", &id, body).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "authentic deliveries are always stored: {answer}"
    );

    let event = app.wait_for(&id, |e| e["attempts"] == 3).await;
    assert_eq!(event["status"], "failed");
    assert_eq!(
        event["lastError"],
        "workflow_job payload has no workflow_job.id"
    );
    assert!(event["nextAttemptAt"].is_null(), "no retries left: {event}");
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (_, again) = app.get_json(&format!("/api/webhooks/events/{id}")).await;
    assert_eq!(
        again["data"]["attempts"], 3,
        "retries stop at WEBHOOK_MAX_RETRIES"
    );

    let (_, failed) = app.get_json("/api/webhooks/failed").await;
    assert_eq!(failed["data"][0]["deliveryId"], id.as_str());
    assert_eq!(
        failed["data"][0]["lastError"],
        "workflow_job payload has no workflow_job.id"
    );
    assert_eq!(failed["pagination"]["total"], 1);
}

#[tokio::test]
async fn an_automatic_retry_can_succeed() {
    let stage = Arc::new(FlakyStage::default());
    stage.fail_first.store(2, Ordering::SeqCst);
    let app = TestApp::spawn_full(|c| c.max_retries = 3, vec![stage.clone()]).await;
    let id = new_id();
    app.post_signed("push", &id, &fixture("push", 0).bytes)
        .await;
    let event = app.wait_for(&id, |e| e["status"] == "processed").await;
    assert_eq!(event["attempts"], 3);
    assert!(event["lastError"].is_null());
}

#[tokio::test]
async fn failure_then_replay_after_the_fix_processes_it() {
    let stage = Arc::new(FlakyStage::default());
    stage.broken.store(true, Ordering::SeqCst);
    let app = TestApp::spawn_full(|c| c.max_retries = 1, vec![stage.clone()]).await;
    let id = new_id();
    app.post_signed("pull_request", &id, &fixture("pull_request", 0).bytes)
        .await;
    let failed = app.wait_for(&id, is_final).await;
    assert_eq!(failed["status"], "failed");
    assert_eq!(failed["attempts"], 2);
    assert_eq!(failed["lastError"], "forwarding target unreachable");
    assert_eq!(app.count("status=failed").await, 1);
    assert_eq!(app.count("processed=false").await, 1);

    stage.broken.store(false, Ordering::SeqCst);
    let (status, replayed) = app
        .post_json(&format!("/api/webhooks/replay/{id}"), json!({}))
        .await;
    assert_eq!(status, StatusCode::OK, "{replayed}");
    assert_eq!(replayed["data"]["status"], "processed");
    assert_eq!(replayed["data"]["attempts"], 3);
    assert_eq!(app.count("status=failed").await, 0);
    assert_eq!(app.count("status=processed").await, 1);

    let (status, missing) = app
        .post_json("/api/webhooks/replay/no-such-delivery", json!({}))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{missing}");
}

#[tokio::test]
async fn retry_failed_replays_every_failed_event_and_reports_counts() {
    let stage = Arc::new(FlakyStage::default());
    stage.broken.store(true, Ordering::SeqCst);
    let app = TestApp::spawn_full(|c| c.max_retries = 0, vec![stage.clone()]).await;
    let mut ids = Vec::new();
    for (event, n) in [("issues", 0), ("release", 0), ("workflow_run", 0)] {
        let id = new_id();
        app.post_signed(event, &id, &fixture(event, n).bytes).await;
        ids.push(id);
    }
    // A fourth one that no fix can help.
    let broken_id = new_id();
    app.post_signed("issues", &broken_id, br#"{"action":"opened"}"#)
        .await;
    for id in ids.iter().chain([&broken_id]) {
        app.wait_for(id, is_final).await;
    }
    assert_eq!(app.count("status=failed").await, 4);

    stage.broken.store(false, Ordering::SeqCst);
    let (status, report) = app.post_json("/api/webhooks/retry-failed", json!({})).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        report["data"],
        json!({"total": 4, "processed": 3, "failed": 1})
    );
    assert_eq!(app.listed_ids("status=failed").await, vec![broken_id]);
}

#[tokio::test]
async fn replaying_a_processed_event_does_not_count_it_twice() {
    let app = TestApp::spawn().await;
    let id = new_id();
    let push = fixture("push", 0);
    app.post_signed("push", &id, &push.bytes).await;
    app.wait_for(&id, |e| e["status"] == "processed").await;
    for _ in 0..3 {
        let (status, _) = app
            .post_json(&format!("/api/webhooks/replay/{id}"), json!({}))
            .await;
        assert_eq!(status, StatusCode::OK);
    }
    let repo = push.repository().unwrap();
    let (_, stats) = app.get_json(&format!("/api/repositories/{repo}")).await;
    assert_eq!(stats["data"]["pushes"], 1, "{stats}");
    assert_eq!(stats["data"]["totalEvents"], 1);
    let (_, statistics) = app.get_json("/api/webhooks/statistics?hours=1").await;
    assert_eq!(statistics["data"]["summary"]["processedEvents"], 1);
    assert_eq!(statistics["data"]["summary"]["totalEvents"], 1);
}

#[tokio::test]
async fn the_test_endpoint_runs_a_synthesized_event_through_the_pipeline() {
    let app = TestApp::spawn().await;
    let request =
        json!({"eventType": "workflow_job", "repository": "test/repo", "action": "queued"});
    let (status, body) = app.post_json("/api/webhooks/test", request.clone()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let event = &body["data"];
    assert_eq!(event["test"], true);
    assert_eq!(event["event"], "workflow_job");
    assert_eq!(event["action"], "queued");
    assert_eq!(event["repository"], "test/repo");
    assert_eq!(event["status"], "processed");
    assert!(event["payload"]["workflow_job"]["id"].is_number());
    let id = event["deliveryId"].as_str().unwrap();
    let (_, stored) = app.get_json(&format!("/api/webhooks/events/{id}")).await;
    assert_eq!(stored["data"]["test"], true);

    // Repeated tests are never folded by content dedup.
    let (_, second) = app.post_json("/api/webhooks/test", request).await;
    assert_ne!(second["data"]["id"], event["id"]);
    assert_eq!(app.count("").await, 2);

    let (status, body) = app
        .post_json("/api/webhooks/test", json!({"eventType": "nonsense"}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"]["code"], "invalid_test_event");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("workflow_job"),
        "lists the valid types"
    );
    let (status, _) = app
        .post_json(
            "/api/webhooks/test",
            json!({"eventType": "push", "repository": "bad"}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let response = app
        .client
        .post(app.url("/api/webhooks/test"))
        .header("content-type", "application/json")
        .body("not json")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    // Only as JSON: a text/plain body is what another site's page can send unasked.
    let response = app
        .client
        .post(app.url("/api/webhooks/test"))
        .header("content-type", "text/plain")
        .body(r#"{"eventType":"push"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
}

#[tokio::test]
async fn events_left_pending_are_processed_after_a_restart() {
    struct Down;
    impl Stage for Down {
        fn process(&self, _: &EventRecord, _: &Payload) -> Result<(), String> {
            Err("not now".into())
        }
    }
    let mut app = TestApp::spawn_full(
        |c| c.retry_base = Duration::from_secs(3600),
        vec![Arc::new(Down)],
    )
    .await;
    let failed_id = new_id();
    app.post_signed("release", &failed_id, &fixture("release", 0).bytes)
        .await;
    app.wait_for(&failed_id, |e| e["status"] == "failed").await;
    app.stop().await;

    // Stored while no processor runs: still pending when hookvault starts again.
    let data_dir = app.data_dir.clone();
    let delivery = crate::helpers::delivery("issues", &fixture("issues", 0).bytes);
    let pending_id = delivery.id.to_string();
    let (store, writer) = crate::helpers::open_store(data_dir.path());
    store.ingest(delivery).await.unwrap();
    drop(store);
    writer.join();

    let app = TestApp::spawn_in(data_dir, |_| {}, vec![]).await;
    let processed = app
        .wait_for(&pending_id, |e| e["status"] == "processed")
        .await;
    assert_eq!(processed["attempts"], 1);
    // The failed event keeps its scheduled retry (an hour away) across the restart.
    let (_, failed) = app
        .get_json(&format!("/api/webhooks/events/{failed_id}"))
        .await;
    assert_eq!(failed["data"]["status"], "failed");
    assert!(failed["data"]["nextAttemptAt"].is_string());
}

#[tokio::test]
async fn the_processor_can_be_stepped_with_run_once() {
    use hookvault::process::{Processor, RetryPolicy};
    use hookvault::store::Status;

    let dir = tempfile::tempdir().unwrap();
    let (store, writer) = crate::helpers::open_store(dir.path());
    for (event, n) in [("push", 0), ("issues", 1), ("check_run", 2)] {
        let delivery = crate::helpers::delivery(event, &fixture(event, n).bytes);
        let outcome = store.ingest(delivery).await.unwrap();
        let hookvault::store::IngestOutcome::Stored { seq } = outcome else {
            panic!("{outcome:?}")
        };
        store.applied(seq).await.unwrap();
    }
    let policy = RetryPolicy {
        max_retries: 0,
        base: Duration::from_secs(1),
        cap: Duration::from_secs(1),
    };
    let processor = Processor::new(store.clone(), vec![], policy);
    assert_eq!(processor.run_once().await.unwrap(), 3);
    assert_eq!(processor.run_once().await.unwrap(), 0, "nothing left");
    for seq in 1..=3 {
        let stored = store.get_seq(seq).await.unwrap().unwrap();
        assert_eq!(stored.record.status, Status::Processed);
        assert_eq!(stored.record.attempts, 1);
    }
    drop((processor, store));
    writer.join();
}
