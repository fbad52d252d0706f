//! Statistics, health, repositories and the catalog, against the fixture corpus, with
//! expected numbers computed here from the fixtures themselves.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{Fixture, TestApp, fixtures, new_id};

const SAMPLE: &[&str] = &[
    "workflow_job",
    "workflow_run",
    "pull_request",
    "issues",
    "push",
    "release",
    "check_run",
    "code_scanning_alert",
    "dependabot_alert",
    "repository_vulnerability_alert",
];

async fn post_sample(app: &TestApp) -> Vec<Fixture> {
    let chosen: Vec<Fixture> = fixtures()
        .into_iter()
        .filter(|f| SAMPLE.contains(&f.event.as_str()))
        .collect();
    for fixture in &chosen {
        let (status, body) = app
            .post_signed(&fixture.event, &new_id(), &fixture.bytes)
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    chosen
}

#[tokio::test]
async fn statistics_match_the_posted_events() {
    let app = TestApp::spawn_with(|c| {
        c.dedup_ttl = Duration::ZERO;
        c.max_retries = 0;
    })
    .await;
    let sample = post_sample(&app).await;
    // Two authentic deliveries that fail their structure check.
    for _ in 0..2 {
        app.post_signed(
            "workflow_job",
            &new_id(),
            br#"{"action":"queued","repository":{"full_name":"bad/payloads"}}"#,
        )
        .await;
    }
    app.settle().await;

    // Two hour buckets: the current one and the one before, so a run that crosses the
    // top of the hour still sees every event.
    let (status, body) = app.get_json("/api/webhooks/statistics?hours=2").await;
    assert_eq!(status, StatusCode::OK);
    let data = &body["data"];
    let total = sample.len() as i64 + 2;
    let summary = &data["summary"];
    assert_eq!(summary["totalEvents"], total);
    assert_eq!(summary["processedEvents"], sample.len());
    assert_eq!(summary["failedEvents"], 2);
    assert_eq!(summary["pendingEvents"], 0);
    let rate = format!("{:.2}", sample.len() as f64 * 100.0 / total as f64);
    assert_eq!(summary["successRate"], rate.as_str());
    assert!(summary["avgProcessingTimeMs"].as_f64().unwrap() > 0.0);

    let mut per_event: HashMap<&str, i64> = HashMap::new();
    for fixture in &sample {
        *per_event.entry(fixture.event.as_str()).or_default() += 1;
    }
    *per_event.get_mut("workflow_job").unwrap() += 2;
    let by_event = data["byEvent"].as_array().unwrap();
    assert_eq!(by_event.len(), per_event.len());
    for line in by_event {
        let event = line["event"].as_str().unwrap();
        assert_eq!(line["total"], per_event[event], "{event}");
        let failed = if event == "workflow_job" { 2 } else { 0 };
        assert_eq!(line["failed"], failed, "{event}");
        assert_eq!(line["processed"], per_event[event] - failed, "{event}");
    }
    let totals: Vec<i64> = by_event
        .iter()
        .map(|l| l["total"].as_i64().unwrap())
        .collect();
    assert!(
        totals.windows(2).all(|w| w[0] >= w[1]),
        "byEvent is sorted by total"
    );

    let mut per_repo: BTreeMap<String, i64> = BTreeMap::new();
    for fixture in &sample {
        *per_repo
            .entry(fixture.repository().unwrap().to_owned())
            .or_default() += 1;
    }
    *per_repo.entry("bad/payloads".into()).or_default() += 2;
    let mut expected: Vec<(String, i64)> = per_repo.into_iter().collect();
    expected.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    expected.truncate(10);
    let got: Vec<(String, i64)> = data["byRepository"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["repository"].as_str().unwrap().to_owned(),
                r["total"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(got, expected);

    let hourly = data["hourly"].as_array().unwrap();
    assert_eq!(hourly.len(), 2);
    assert_eq!(
        hourly
            .iter()
            .map(|h| h["total"].as_i64().unwrap())
            .sum::<i64>(),
        total
    );
    assert!(data["processingTimeMs"]["p50"].as_f64().unwrap() > 0.0);
    assert!(data["processingTimeMs"]["p99"].as_f64() >= data["processingTimeMs"]["p50"].as_f64());

    // Counters are durable: a restart answers the same. The two-hour window moves
    // on if the restart crosses the top of the hour, so the hours compared are the
    // ones holding events, by their hour.
    let (_, repositories) = app.get_json("/api/repositories").await;
    let app = app.restart().await;
    let (_, again) = app.get_json("/api/webhooks/statistics?hours=2").await;
    for part in ["summary", "byEvent", "byRepository", "processingTimeMs"] {
        assert_eq!(again["data"][part], data[part], "{part} after a restart");
    }
    let with_events = |stats: &Value| -> Vec<Value> {
        let hourly = stats["hourly"].as_array().unwrap();
        hourly.iter().filter(|h| h["total"] != 0).cloned().collect()
    };
    assert_eq!(
        with_events(&again["data"]),
        with_events(data),
        "hourly after a restart"
    );
    let (_, repositories_again) = app.get_json("/api/repositories").await;
    assert_eq!(repositories_again, repositories);
}

#[tokio::test]
async fn statistics_reject_bad_windows_and_count_duplicates() {
    let app = TestApp::spawn().await;
    for hours in ["0", "-1", "abc", "9000", "1.5"] {
        let (status, body) = app
            .get_json(&format!("/api/webhooks/statistics?hours={hours}"))
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "hours={hours}");
        assert!(body["error"]["message"].as_str().unwrap().contains("hours"));
    }
    let (_, empty) = app.get_json("/api/webhooks/statistics").await;
    assert_eq!(empty["data"]["summary"]["totalEvents"], 0);
    assert_eq!(empty["data"]["summary"]["successRate"], "0.00");
    assert_eq!(empty["data"]["window"]["hours"], 24);

    let body = crate::helpers::fixture("check_suite", 0).bytes;
    for _ in 0..3 {
        app.post_signed("check_suite", &new_id(), &body).await;
    }
    let (_, stats) = app.get_json("/api/webhooks/statistics?hours=2").await;
    assert_eq!(stats["data"]["summary"]["totalEvents"], 1);
    assert_eq!(stats["data"]["summary"]["duplicateEvents"], 2);
    assert_eq!(stats["data"]["byEvent"][0]["duplicates"], 2);
}

#[tokio::test]
async fn statistics_windows_select_hour_buckets() {
    use hookvault::process::{Processor, RetryPolicy};

    let dir = tempfile::tempdir().unwrap();
    let (store, writer) = crate::helpers::open_store(dir.path());
    let now = hookvault::domain::timestamp::now_ms();
    let hour = 3_600_000;
    for (n, age_hours) in [0, 3, 3, 30].into_iter().enumerate() {
        let mut delivery =
            crate::helpers::delivery("push", &crate::helpers::fixture("push", n).bytes);
        delivery.received_at_ms = now - age_hours * hour;
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
    Processor::new(store.clone(), vec![], policy)
        .run_once()
        .await
        .unwrap();
    for (hours, expected) in [(1, 1), (3, 1), (4, 3), (30, 3), (31, 4), (8000, 4)] {
        let stats = store.statistics(now, hours).await.unwrap();
        assert_eq!(stats.summary.total, expected, "hours={hours}");
        assert_eq!(stats.summary.processed, expected, "hours={hours}");
    }
    drop(store);
    writer.join();
}

#[tokio::test]
async fn health_reflects_failures_and_recent_events() {
    let app = TestApp::spawn_with(|c| c.max_retries = 0).await;
    let (status, fresh) = app.get_json("/api/webhooks/health").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(fresh["data"]["status"], "healthy");
    assert_eq!(fresh["data"]["healthScore"], 100);
    assert_eq!(fresh["data"]["recentEvents"], 0);
    assert!(fresh["data"]["lastEventTime"].is_null());

    // `metrics.hourly` is the current clock hour's bucket: all four must land in one.
    crate::helpers::clear_of_the_hour(Duration::from_secs(30)).await;
    app.post_signed("push", &new_id(), &crate::helpers::fixture("push", 0).bytes)
        .await;
    for n in 0..3 {
        let body = format!(r#"{{"action":"opened","n":{n},"repository":{{"full_name":"o/r"}}}}"#);
        app.post_signed("pull_request", &new_id(), body.as_bytes())
            .await;
    }
    app.settle().await;
    let (_, health) = app.get_json("/api/webhooks/health").await;
    let data = &health["data"];
    assert_eq!(data["recentEvents"], 4);
    assert_eq!(data["failedWebhooksCount"], 3);
    assert!(data["lastEventTime"].as_str().unwrap().ends_with('Z'));
    // 3 of 4 failed this hour: 100 - 40 * 3 / 4 = 70.
    assert_eq!(data["healthScore"], 70, "{data}");
    assert_eq!(data["status"], "degraded");
    assert_eq!(data["metrics"]["hourly"]["total"], 4);
    assert_eq!(data["metrics"]["hourly"]["failed"], 3);
}

/// Conclusions, queue times and run times of one job, as the fixtures tell them.
type JobExpectation = (BTreeMap<String, i64>, Vec<i64>, Vec<i64>);

/// The security-alert rule, restated: whether an event leaves its alert open (`None`:
/// no change). The open count is the number of alerts whose last event opened them.
fn alert_opened(event: &str, action: &str) -> Option<bool> {
    let alerting = [
        "code_scanning_alert",
        "secret_scanning_alert",
        "dependabot_alert",
        "repository_vulnerability_alert",
    ];
    if !alerting.contains(&event) {
        return None;
    }
    match action {
        "created" | "reopened" | "reopened_by_user" | "reintroduced" | "create" => Some(true),
        "fixed" | "closed_by_user" | "dismissed" | "auto_dismissed" | "resolved" | "resolve"
        | "dismiss" => Some(false),
        _ => None,
    }
}

fn ms_between(a: &Value, b: &Value) -> Option<i64> {
    let parse = |v: &Value| {
        time::OffsetDateTime::parse(v.as_str()?, &time::format_description::well_known::Rfc3339)
            .ok()
    };
    let ms = (parse(b)? - parse(a)?).whole_milliseconds() as i64;
    (ms >= 0).then_some(ms)
}

#[tokio::test]
async fn repositories_show_activity_and_job_metrics_from_the_fixtures() {
    let app = TestApp::spawn_with(|c| c.dedup_ttl = Duration::ZERO).await;
    let sample = post_sample(&app).await;
    app.settle().await;

    let mut expected: BTreeMap<&str, BTreeMap<&str, i64>> = BTreeMap::new();
    let mut jobs: BTreeMap<(&str, String, String), JobExpectation> = BTreeMap::new();
    // Posted one after another: the last event of each alert, in this order, wins.
    let mut alert_states = BTreeMap::new();
    for f in &sample {
        let repo = expected.entry(f.repository().unwrap()).or_default();
        let action = f.action().unwrap_or("");
        *repo.entry("total").or_default() += 1;
        let key = match (f.event.as_str(), action) {
            ("push", _) => Some("pushes"),
            ("pull_request", "opened") => Some("opened"),
            ("pull_request", "closed") if f.json["pull_request"]["merged"] == true => {
                Some("merged")
            }
            ("pull_request", "closed") => Some("closed"),
            ("issues", "opened") => Some("issues_opened"),
            ("issues", "closed") => Some("issues_closed"),
            ("release", "published") => Some("releases"),
            _ => None,
        };
        if let Some(key) = key {
            *repo.entry(key).or_default() += 1;
        }
        if let Some(open) = alert_opened(&f.event, action) {
            let alert = &f.json["alert"];
            let number = alert["number"].as_u64().or(alert["id"].as_u64()).unwrap();
            alert_states.insert((f.repository().unwrap(), f.event.clone(), number), open);
        }
        if f.event == "workflow_job" && action == "completed" {
            let job = &f.json["workflow_job"];
            let entry = jobs
                .entry((
                    f.repository().unwrap(),
                    job["workflow_name"]
                        .as_str()
                        .unwrap_or("(unnamed workflow)")
                        .to_owned(),
                    job["name"].as_str().unwrap().to_owned(),
                ))
                .or_default();
            *entry
                .0
                .entry(job["conclusion"].as_str().unwrap_or("unknown").to_owned())
                .or_default() += 1;
            entry
                .1
                .extend(ms_between(&job["created_at"], &job["started_at"]));
            entry
                .2
                .extend(ms_between(&job["started_at"], &job["completed_at"]));
        }
    }

    for ((repo, _, _), open) in alert_states {
        *expected
            .entry(repo)
            .or_default()
            .entry("alerts")
            .or_default() += i64::from(open);
    }

    let (_, list) = app.get_json("/api/repositories").await;
    assert_eq!(list["pagination"]["total"], expected.len());
    let listed: Vec<i64> = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["totalEvents"].as_i64().unwrap())
        .collect();
    assert!(
        listed.windows(2).all(|w| w[0] >= w[1]),
        "sorted by activity"
    );

    for (repo, counts) in &expected {
        let get = |k: &str| counts.get(k).copied().unwrap_or(0);
        let (status, body) = app.get_json(&format!("/api/repositories/{repo}")).await;
        assert_eq!(status, StatusCode::OK, "{repo}");
        let data = &body["data"];
        assert_eq!(data["totalEvents"], get("total"), "{repo}");
        assert_eq!(data["pushes"], get("pushes"), "{repo}");
        assert_eq!(data["pullRequests"]["opened"], get("opened"), "{repo}");
        assert_eq!(data["pullRequests"]["merged"], get("merged"), "{repo}");
        assert_eq!(data["pullRequests"]["closed"], get("closed"), "{repo}");
        assert_eq!(data["issues"]["opened"], get("issues_opened"), "{repo}");
        assert_eq!(data["issues"]["closed"], get("issues_closed"), "{repo}");
        assert_eq!(data["releases"], get("releases"), "{repo}");
        assert_eq!(data["openSecurityAlerts"], get("alerts"), "{repo}");
        assert!(data["firstSeen"].is_string() && data["lastEventTime"].is_string());

        let got_jobs = data["jobs"].as_array().unwrap();
        let want: Vec<_> = jobs.iter().filter(|((r, _, _), _)| r == repo).collect();
        assert_eq!(got_jobs.len(), want.len(), "{repo}: {got_jobs:?}");
        for ((_, workflow, job), (conclusions, queue, run)) in want {
            let line = got_jobs
                .iter()
                .find(|j| j["workflow"] == workflow.as_str() && j["job"] == job.as_str())
                .unwrap();
            for (conclusion, n) in conclusions {
                assert_eq!(line["conclusions"][conclusion], *n, "{workflow}/{job}");
            }
            let avg = |v: &Vec<i64>| {
                (!v.is_empty()).then(|| v.iter().sum::<i64>() as f64 / v.len() as f64)
            };
            assert_eq!(
                line["avgQueueTimeMs"].as_f64(),
                avg(queue),
                "{workflow}/{job}"
            );
            assert_eq!(line["avgRunTimeMs"].as_f64(), avg(run), "{workflow}/{job}");
        }
    }
    let completed_jobs: i64 = jobs.values().map(|(c, _, _)| c.values().sum::<i64>()).sum();
    assert_eq!(
        completed_jobs, 2,
        "the sample's two completed jobs were measured"
    );

    let (status, _) = app.get_json("/api/repositories/nobody/nothing").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = app.get_json("/api/repositories?sort=size").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn the_catalog_covers_every_fixture_type_and_the_seed_categories() {
    let app = TestApp::spawn().await;
    let (status, body) = app.get_json("/api/webhooks/events/types").await;
    assert_eq!(status, StatusCode::OK);
    let categories = body["data"]["categories"].as_array().unwrap();
    let titles: Vec<&str> = categories
        .iter()
        .map(|c| c["title"].as_str().unwrap())
        .collect();
    assert_eq!(
        titles,
        [
            "Actions",
            "Code",
            "Pull requests",
            "Issues",
            "Repository",
            "Security",
            "Organization",
            "Other"
        ]
    );
    let mut names = std::collections::HashSet::new();
    for category in categories {
        for event in category["events"].as_array().unwrap() {
            assert!(
                event["description"].as_str().is_some_and(|d| !d.is_empty()),
                "{event}"
            );
            names.insert(event["name"].as_str().unwrap().to_owned());
        }
    }
    for fixture in fixtures() {
        assert!(names.contains(&fixture.event), "{} missing", fixture.event);
    }
    for seed_type in [
        "secret_scanning_alert",
        "pull_request_target",
        "workflow_dispatch",
        "sponsorship",
    ] {
        assert!(names.contains(seed_type), "{seed_type}");
    }
    let actions = &categories[0]["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == "workflow_job")
        .unwrap()["actions"];
    assert_eq!(
        actions,
        &serde_json::json!(["completed", "in_progress", "queued", "waiting"])
    );
}
