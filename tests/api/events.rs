//! The events API: every filter, pagination, detail, raw body, bad parameters and
//! restarts.

use std::collections::HashSet;
use std::time::Duration;

use reqwest::StatusCode;

use crate::helpers::{Fixture, TestApp, fixtures, new_id};

/// Posts `chosen` fixtures, returning (delivery id, fixture) in posting order.
async fn post_all<'a>(app: &TestApp, chosen: &[&'a Fixture]) -> Vec<(String, &'a Fixture)> {
    let mut posted = Vec::new();
    for fixture in chosen {
        let id = new_id();
        let (status, body) = app.post_signed(&fixture.event, &id, &fixture.bytes).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(
            body["data"]["status"],
            "stored",
            "{}",
            fixture.path.display()
        );
        posted.push((id, *fixture));
    }
    posted
}

fn ids_where(posted: &[(String, &Fixture)], keep: impl Fn(&Fixture) -> bool) -> HashSet<String> {
    posted
        .iter()
        .filter(|(_, f)| keep(f))
        .map(|(id, _)| id.clone())
        .collect()
}

async fn listed(app: &TestApp, query: &str) -> HashSet<String> {
    let ids = app.listed_ids(&format!("limit=1000&{query}")).await;
    let set: HashSet<String> = ids.iter().cloned().collect();
    assert_eq!(
        set.len(),
        ids.len(),
        "an event was listed twice for {query}"
    );
    assert_eq!(
        app.count(query).await,
        ids.len() as u64,
        "total disagrees with the list for {query}"
    );
    set
}

#[tokio::test]
async fn every_filter_selects_exactly_the_matching_events() {
    let app = TestApp::spawn_with(|c| c.dedup_ttl = Duration::ZERO).await;
    let all = fixtures();
    let wanted = [
        "workflow_job",
        "workflow_run",
        "pull_request",
        "issues",
        "push",
        "star",
    ];
    let chosen: Vec<&Fixture> = all
        .iter()
        .filter(|f| wanted.contains(&f.event.as_str()))
        .collect();
    let posted = post_all(&app, &chosen).await;
    assert_eq!(listed(&app, "").await, ids_where(&posted, |_| true));

    for event in wanted {
        assert_eq!(
            listed(&app, &format!("event={event}")).await,
            ids_where(&posted, |f| f.event == event)
        );
    }
    let repositories: HashSet<&str> = chosen.iter().filter_map(|f| f.repository()).collect();
    assert!(
        repositories.len() > 1,
        "the sample spans several repositories"
    );
    for repository in &repositories {
        assert_eq!(
            listed(&app, &format!("repository={repository}")).await,
            ids_where(&posted, |f| f.repository() == Some(repository)),
            "repository={repository}"
        );
    }
    for action in ["completed", "opened", "closed", "created"] {
        assert_eq!(
            listed(&app, &format!("action={action}")).await,
            ids_where(&posted, |f| f.action() == Some(action)),
            "action={action}"
        );
        assert_eq!(
            listed(&app, &format!("action={action}&event=pull_request")).await,
            ids_where(&posted, |f| f.action() == Some(action)
                && f.event == "pull_request"),
            "action={action}&event=pull_request"
        );
    }
    let repo = repositories.iter().next().unwrap();
    assert_eq!(
        listed(
            &app,
            &format!("repository={repo}&event=issues&action=opened")
        )
        .await,
        ids_where(&posted, |f| f.repository() == Some(repo)
            && f.event == "issues"
            && f.action() == Some("opened"))
    );

    // Every example passes its checks, so once processing settles all are processed.
    app.settle().await;
    let everything = ids_where(&posted, |_| true);
    assert_eq!(listed(&app, "status=processed").await, everything);
    assert_eq!(listed(&app, "processed=true").await, everything);
    assert!(listed(&app, "status=pending").await.is_empty());
    assert!(listed(&app, "processed=false").await.is_empty());
    assert!(listed(&app, "status=failed&event=push").await.is_empty());
    assert!(listed(&app, "repository=nobody/nothing").await.is_empty());
}

#[tokio::test]
async fn date_ranges_split_events_by_receipt_time() {
    let app = TestApp::spawn_with(|c| c.dedup_ttl = Duration::ZERO).await;
    let all = fixtures();
    let early: Vec<&Fixture> = all.iter().filter(|f| f.event == "issues").take(4).collect();
    let late: Vec<&Fixture> = all.iter().filter(|f| f.event == "push").take(4).collect();
    let early = post_all(&app, &early).await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    let split = time::OffsetDateTime::now_utc();
    tokio::time::sleep(Duration::from_millis(20)).await;
    let late = post_all(&app, &late).await;

    let at = split
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let early_ids = ids_where(&early, |_| true);
    let late_ids = ids_where(&late, |_| true);
    assert_eq!(listed(&app, &format!("startDate={at}")).await, late_ids);
    assert_eq!(listed(&app, &format!("endDate={at}")).await, early_ids);
    assert_eq!(
        listed(&app, &format!("endDate={at}&event=issues")).await,
        early_ids
    );
    assert!(
        listed(&app, &format!("startDate={at}&event=issues"))
            .await
            .is_empty()
    );
    let today = split.date();
    let all_ids: HashSet<String> = early_ids.union(&late_ids).cloned().collect();
    assert_eq!(listed(&app, &format!("startDate={today}")).await, all_ids);
}

#[tokio::test]
async fn pages_walk_every_event_newest_first_without_gaps() {
    let app = TestApp::spawn_with(|c| c.dedup_ttl = Duration::ZERO).await;
    let all = fixtures();
    let chosen: Vec<&Fixture> = all
        .iter()
        .filter(|f| f.event == "issues")
        .take(25)
        .collect();
    let posted = post_all(&app, &chosen).await;

    let mut walked = Vec::new();
    for offset in [0, 10, 20] {
        let (_, body) = app
            .get_json(&format!(
                "/api/webhooks/events?event=issues&limit=10&offset={offset}"
            ))
            .await;
        assert_eq!(body["pagination"]["total"], 25);
        assert_eq!(body["pagination"]["limit"], 10);
        assert_eq!(body["pagination"]["offset"], offset);
        walked.extend(
            body["data"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["deliveryId"].as_str().unwrap().to_owned()),
        );
    }
    let newest_first: Vec<String> = posted.iter().rev().map(|(id, _)| id.clone()).collect();
    assert_eq!(walked, newest_first);
    let (_, beyond) = app.get_json("/api/webhooks/events?offset=100").await;
    assert_eq!(beyond["data"].as_array().unwrap().len(), 0);
    assert_eq!(beyond["pagination"]["total"], 25);
}

#[tokio::test]
async fn bad_parameters_are_400_naming_the_parameter() {
    let app = TestApp::spawn().await;
    for (query, parameter) in [
        ("limit=0", "limit"),
        ("limit=1001", "limit"),
        ("limit=ten", "limit"),
        ("offset=-1", "offset"),
        ("status=done", "status"),
        ("processed=maybe", "processed"),
        ("startDate=yesterday", "startDate"),
        ("endDate=2024-13-01", "endDate"),
        ("startDate=2024-02-01&endDate=2024-01-01", "startDate"),
        ("status=processed&processed=false", "status"),
    ] {
        let (status, body) = app.get_json(&format!("/api/webhooks/events?{query}")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}");
        assert_eq!(body["error"]["code"], "invalid_parameter", "{query}");
        let message = body["error"]["message"].as_str().unwrap();
        assert!(message.contains(parameter), "{query}: {message}");
    }
}

/// A blank value is the parameter left out (an HTML form's empty field), on every
/// route that filters or pages; .ci/schemathesis.toml relies on this being deliberate.
#[tokio::test]
async fn blank_query_values_are_read_as_absent() {
    let app = TestApp::spawn().await;
    for query in [
        "/api/webhooks/events?limit=&offset=&status=&processed=&startDate=&endDate=",
        "/api/webhooks/search?q=&limit=&offset=&sort=&startDate=&endDate=",
        "/api/webhooks/failed?limit=",
        "/api/webhooks/statistics?hours=",
    ] {
        let (status, body) = app.get_json(query).await;
        assert_eq!(status, StatusCode::OK, "{query}: {body}");
    }
    for query in ["limit=0", "limit=1001", "limit=ten"] {
        let (status, body) = app.get_json(&format!("/api/webhooks/failed?{query}")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}: {body}");
        assert_eq!(body["error"]["code"], "invalid_parameter", "{query}");
    }
}

#[tokio::test]
async fn detail_shows_headers_and_payload_and_raw_is_byte_identical() {
    let app = TestApp::spawn().await;
    let fixture = crate::helpers::fixture("check_run", 0);
    let id = new_id();
    let (_, stored) = app.post_signed("check_run", &id, &fixture.bytes).await;

    let (status, body) = app.get_json(&format!("/api/webhooks/events/{id}")).await;
    assert_eq!(status, StatusCode::OK);
    let event = &body["data"];
    assert_eq!(event["id"], stored["data"]["id"]);
    assert_eq!(event["deliveryId"], id.as_str());
    assert_eq!(event["payload"], fixture.json);
    assert_eq!(event["headers"]["x-github-event"], "check_run");
    assert_eq!(event["headers"]["x-github-hook-id"], "292430182");
    assert_eq!(event["hookId"], 292430182);
    assert_eq!(event["bodySize"], fixture.bytes.len());
    assert!(event["receivedAt"].as_str().unwrap().ends_with('Z'));

    let raw = app
        .client
        .get(app.url(&format!("/api/webhooks/events/{id}/raw")))
        .send()
        .await
        .unwrap();
    assert_eq!(raw.headers()["content-type"], "application/json");
    assert_eq!(
        raw.bytes().await.unwrap().as_ref(),
        fixture.bytes.as_slice()
    );

    let (status, body) = app.get_json("/api/webhooks/events/no-such-delivery").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["error"]["code"], "not_found");
}

#[tokio::test]
async fn a_restart_keeps_every_event_and_index() {
    let app = TestApp::spawn_with(|c| c.dedup_ttl = Duration::ZERO).await;
    let all = fixtures();
    let chosen: Vec<&Fixture> = all.iter().step_by(7).collect();
    let posted = post_all(&app, &chosen).await;
    let before = listed(&app, "").await;
    let before_push = listed(&app, "event=push").await;

    let app = app.restart().await;
    assert_eq!(listed(&app, "").await, before);
    assert_eq!(listed(&app, "event=push").await, before_push);
    for (id, fixture) in posted.iter().take(10) {
        let (_, body) = app.get_json(&format!("/api/webhooks/events/{id}")).await;
        assert_eq!(body["data"]["payload"], fixture.json);
    }
    // Sequence ids continue after the restart instead of reusing old ones.
    let (_, next) = app
        .post_signed("ping", &new_id(), &crate::helpers::fixture("ping", 0).bytes)
        .await;
    assert_eq!(
        next["data"]["id"].as_u64().unwrap(),
        posted.len() as u64 + 1
    );
}
