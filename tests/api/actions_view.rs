//! The dashboard's Actions view in Debian's Chromium (`tests/browser/actions.mjs`):
//! real `workflow_job` fixtures, re-timed, make a queue with a starved label set, a
//! flaky job and slow ones; the view must show what `/api/actions/*` reports, a job
//! queued while it is open must appear without a reload (and leave the queue when it
//! starts), and axe must find nothing.

use reqwest::StatusCode;

use crate::actions::{GPU, Job, LINUX, SECOND};
use crate::helpers::{SECRET, TestApp, new_id};

/// The job the browser script queues and then starts while the view is open.
const LIVE_JOB: u64 = 3001;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_actions_view_shows_the_queue_and_insights_and_follows_new_jobs() {
    if !crate::dashboard::browser_ready() {
        return;
    }
    let app = TestApp::spawn().await;
    // Two hours back: inside the view's default 24 h window.
    let t = hookvault::domain::timestamp::now_ms() - 2 * 3_600_000;
    let job = Job::queued;
    let done = |j: &Job, queue_s: i64, run_s: i64, conclusion| Job {
        action: "completed",
        started: Some(j.created + queue_s * SECOND),
        completed: Some(j.created + (queue_s + run_s) * SECOND),
        conclusion: Some(conclusion),
        runner: Some("r1"),
        ..j.clone()
    };
    let build = job(2001, 700, 1, "build", LINUX, t);
    let test_1 = job(2002, 701, 1, "test", LINUX, t + 100 * SECOND);
    let test_2 = job(2003, 701, 2, "test", LINUX, t + 600 * SECOND);
    let lint = job(2004, 702, 1, "lint", LINUX, t + 650 * SECOND);
    let train = job(2005, 703, 1, "train", GPU, t + 900 * SECOND);
    let deploy = job(2006, 704, 1, "deploy", LINUX, t + 1000 * SECOND);
    let package = job(2007, 704, 1, "package", LINUX, t + 1100 * SECOND);
    let sent = [
        build.clone(),
        Job {
            action: "in_progress",
            started: Some(t + 40 * SECOND),
            runner: Some("r1"),
            ..build.clone()
        },
        done(&build, 40, 1_500, "success"),
        // A failure, then the re-run attempt passes: flaky.
        done(&test_1, 2, 60, "failure"),
        done(&test_2, 20, 90, "success"),
        done(&lint, 5, 20, "success"),
        // Nothing runs GPU jobs: that label set is starved.
        train,
        // Linux jobs wait too, but one runs: not starved.
        deploy,
        Job {
            action: "in_progress",
            started: Some(t + 1200 * SECOND),
            runner: Some("r3"),
            ..package
        },
    ];
    for j in &sent {
        let (status, body) = app
            .post_signed("workflow_job", &new_id(), &j.payload())
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    let (_, queue) = app.get_json("/api/actions/queue").await;
    assert_eq!(queue["data"]["queued"], 2, "{queue}");

    crate::dashboard::run_script(
        &app,
        "actions.mjs",
        "actions",
        &[
            ("HOOKVAULT_SECRET", SECRET.to_owned()),
            ("LIVE_JOB", LIVE_JOB.to_string()),
        ],
    )
    .await;

    // What the page saw happen is what the store holds: the live job is running.
    let (_, runners) = app.get_json("/api/actions/runners").await;
    let running: Vec<u64> = runners["data"]["runners"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|r| r["jobs"].as_array().unwrap().clone())
        .map(|j| j["jobId"].as_u64().unwrap())
        .collect();
    assert!(running.contains(&LIVE_JOB), "{runners}");
}
