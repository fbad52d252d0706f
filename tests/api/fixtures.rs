//! Every real GitHub example payload is accepted, stored and found again with the
//! event, action and repository its own content names.

use std::collections::HashMap;

use futures::StreamExt;
use reqwest::StatusCode;

use crate::helpers::{TestApp, fixtures, new_id};

#[tokio::test]
async fn every_fixture_is_stored_and_listed_with_its_fields() {
    // Content dedup off: a few examples share their entity ids on purpose.
    let app = TestApp::spawn_with(|c| c.dedup_ttl = std::time::Duration::ZERO).await;
    let all = fixtures();
    assert_eq!(all.len(), 329, "the fixtures folder holds every example");

    let posted: Vec<(String, usize)> = futures::stream::iter(all.iter().enumerate())
        .map(|(i, fixture)| {
            let app = &app;
            async move {
                let id = new_id();
                let (status, body) = app.post_signed(&fixture.event, &id, &fixture.bytes).await;
                assert_eq!(status, StatusCode::OK, "{}: {body}", fixture.path.display());
                assert_eq!(
                    body["data"]["status"],
                    "stored",
                    "{}",
                    fixture.path.display()
                );
                assert_eq!(body["data"]["deliveryId"], id.as_str());
                (id, i)
            }
        })
        .buffer_unordered(16)
        .collect()
        .await;

    app.settle().await;
    for (id, i) in &posted {
        let fixture = &all[*i];
        let (status, body) = app.get_json(&format!("/api/webhooks/events/{id}")).await;
        assert_eq!(status, StatusCode::OK);
        let event = &body["data"];
        let name = fixture.path.display();
        assert_eq!(event["event"], fixture.event.as_str(), "{name}");
        assert_eq!(event["action"].as_str(), fixture.action(), "{name}");
        assert_eq!(event["repository"].as_str(), fixture.repository(), "{name}");
        assert_eq!(event["payload"], fixture.json, "{name}");
        // Every real example passes its type's structure checks.
        assert_eq!(
            event["status"], "processed",
            "{name}: {}",
            event["lastError"]
        );
        assert_eq!(event["attempts"], 1, "{name}");
    }

    assert_eq!(app.count("").await, 329);
    let mut per_event: HashMap<&str, u64> = HashMap::new();
    for fixture in &all {
        *per_event.entry(fixture.event.as_str()).or_default() += 1;
    }
    for (event, expected) in per_event {
        assert_eq!(
            app.count(&format!("event={event}")).await,
            expected,
            "event={event}"
        );
    }
}
