//! Actions insights: real `workflow_job` fixtures, retargeted and re-timed, driven
//! through every path (queued → in_progress → completed, completed with no queued,
//! deliveries out of order, a redelivery, another hook's copy, a re-run attempt that
//! passes); the queue, runners, insights and gauges must equal what this file
//! computes from the same events, and `verify` must recompute them clean.

use std::collections::{BTreeMap, BTreeSet};

use hookvault::domain::timestamp::to_rfc3339;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{TestApp, fixture, new_id};
use crate::process::command;

pub(crate) const REPO: &str = "hv-test/fleet";
pub(crate) const LINUX: &[&str] = &["x64", "self-hosted", "linux"];
pub(crate) const GPU: &[&str] = &["self-hosted", "gpu"];
/// The service's bucket bounds (seconds), as `docs/actions.md` states them.
const BOUNDS: [i64; 17] = [
    1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 14400, 28800, 86400,
];
pub(crate) const SECOND: i64 = 1000;

/// One job delivery as the test sends it.
#[derive(Clone)]
pub(crate) struct Job {
    pub(crate) id: u64,
    pub(crate) run: u64,
    pub(crate) attempt: u32,
    pub(crate) name: &'static str,
    pub(crate) labels: &'static [&'static str],
    pub(crate) action: &'static str,
    pub(crate) created: i64,
    pub(crate) started: Option<i64>,
    pub(crate) completed: Option<i64>,
    pub(crate) conclusion: Option<&'static str>,
    pub(crate) runner: Option<&'static str>,
}

impl Job {
    /// A job queued at `created`, not yet started.
    pub(crate) fn queued(
        id: u64,
        run: u64,
        attempt: u32,
        name: &'static str,
        labels: &'static [&'static str],
        created: i64,
    ) -> Self {
        Self {
            id,
            run,
            attempt,
            name,
            labels,
            action: "queued",
            created,
            started: None,
            completed: None,
            conclusion: None,
            runner: None,
        }
    }

    /// A real payload (`workflow_job/2.json`), retargeted and re-timed.
    pub(crate) fn payload(&self) -> Vec<u8> {
        let mut p = fixture("workflow_job", 2).json;
        p["action"] = json!(self.action);
        p["repository"]["full_name"] = json!(REPO);
        let j = &mut p["workflow_job"];
        j["id"] = json!(self.id);
        j["run_id"] = json!(self.run);
        j["run_attempt"] = json!(self.attempt);
        j["name"] = json!(self.name);
        j["workflow_name"] = json!("CI");
        j["labels"] = json!(self.labels);
        j["status"] = json!(self.action);
        j["conclusion"] = json!(self.conclusion);
        j["created_at"] = json!(to_rfc3339(self.created));
        // GitHub sends started_at = created_at with `queued`.
        j["started_at"] = json!(to_rfc3339(self.started.unwrap_or(self.created)));
        j["completed_at"] = json!(self.completed.map(to_rfc3339));
        j["runner_name"] = json!(self.runner);
        j["runner_group_name"] = json!(self.runner.map(|_| "Default"));
        serde_json::to_vec(&p).unwrap()
    }

    fn rank(&self) -> u8 {
        ["waiting", "queued", "in_progress", "completed"]
            .iter()
            .position(|a| *a == self.action)
            .unwrap() as u8
    }

    fn label_set(&self) -> String {
        let mut labels = self.labels.to_vec();
        labels.sort_unstable();
        labels.join(",")
    }
}

/// Each job's state, computed here: its furthest delivery, the earliest creation.
fn model(sent: &[Job]) -> BTreeMap<u64, Job> {
    let mut jobs: BTreeMap<u64, Job> = BTreeMap::new();
    for job in sent {
        let next = match jobs.get(&job.id) {
            Some(known) if known.rank() > job.rank() => known.clone(),
            _ => job.clone(),
        };
        let created = jobs
            .get(&job.id)
            .map_or(job.created, |k| k.created.min(job.created));
        jobs.insert(job.id, Job { created, ..next });
    }
    jobs
}

fn percentile(times_ms: &[i64], q: f64) -> Value {
    if times_ms.is_empty() {
        return Value::Null;
    }
    let rank = ((q * times_ms.len() as f64).ceil() as usize).max(1);
    let mut sorted = times_ms.to_vec();
    sorted.sort_unstable();
    let at = sorted[rank - 1];
    json!(
        BOUNDS
            .iter()
            .find(|b| at <= *b * SECOND)
            .copied()
            .unwrap_or(86400)
    )
}

/// What the insights should say about the completed jobs: per (job name, labels),
/// count, conclusions, queue and run p50/p95, and flaky runs.
fn expected_groups(jobs: &BTreeMap<u64, Job>) -> BTreeMap<(String, String), Value> {
    let done: Vec<&Job> = jobs.values().filter(|j| j.action == "completed").collect();
    let mut out = BTreeMap::new();
    let groups: BTreeSet<(&str, String)> = done.iter().map(|j| (j.name, j.label_set())).collect();
    for (name, labels) in groups {
        let members: Vec<&&Job> = done
            .iter()
            .filter(|j| j.name == name && j.label_set() == labels)
            .collect();
        let mut conclusions: BTreeMap<&str, i64> = BTreeMap::new();
        for j in &members {
            *conclusions
                .entry(j.conclusion.unwrap_or("none"))
                .or_default() += 1;
        }
        let queue: Vec<i64> = members
            .iter()
            .filter_map(|j| Some(j.started? - j.created))
            .collect();
        let run: Vec<i64> = members
            .iter()
            .filter_map(|j| Some(j.completed? - j.started?))
            .collect();
        // Flaky: a run whose attempt fails and a later attempt of it succeeds.
        let runs: BTreeSet<u64> = members.iter().map(|j| j.run).collect();
        let flaky = runs
            .iter()
            .filter(|run| {
                let of_run = done.iter().filter(|j| j.run == **run && j.name == name);
                let failed = of_run
                    .clone()
                    .filter(|j| j.conclusion == Some("failure"))
                    .map(|j| j.attempt)
                    .min();
                failed.is_some_and(|f| {
                    of_run
                        .clone()
                        .any(|j| j.attempt > f && j.conclusion == Some("success"))
                })
            })
            .count();
        let failures = conclusions.get("failure").copied().unwrap_or(0);
        out.insert(
            (name.to_owned(), labels),
            json!({
                "count": members.len(),
                "conclusions": conclusions,
                "failureRate": (failures as f64 / members.len() as f64 * 10_000.0).round() / 10_000.0,
                "flaky": flaky,
                "queue": [percentile(&queue, 0.5), percentile(&queue, 0.95)],
                "run": [percentile(&run, 0.5), percentile(&run, 0.95)],
            }),
        );
    }
    out
}

/// `name{labels="…"} value` lines of one metric family.
fn gauge(metrics: &str, name: &str) -> BTreeMap<String, f64> {
    metrics
        .lines()
        .filter_map(|line| {
            let rest = line.strip_prefix(name)?.strip_prefix("{labels=\"")?;
            let (labels, value) = rest.split_once("\"} ")?;
            Some((labels.to_owned(), value.parse().ok()?))
        })
        .collect()
}

#[tokio::test]
async fn queue_runners_insights_and_gauges_follow_the_jobs() {
    let mut app = TestApp::spawn().await;
    let now = hookvault::domain::timestamp::now_ms();
    // Hours back, so a 48 h window holds every completion and the current hour none.
    let t = now - 5 * 3_600_000;
    let job = Job::queued;
    let step =
        |j: &Job, action, started: Option<i64>, completed: Option<i64>, conclusion, runner| Job {
            action,
            started,
            completed,
            conclusion,
            runner,
            ..j.clone()
        };
    let a = job(1001, 500, 1, "build", LINUX, t);
    let b = job(1002, 501, 1, "test", LINUX, t + 60 * SECOND);
    let c = job(1003, 501, 2, "test", LINUX, t + 600 * SECOND);
    let d = job(1004, 502, 1, "train", GPU, t + 700 * SECOND);
    let e = job(1005, 503, 1, "build", LINUX, t + 800 * SECOND);
    let f = job(1006, 504, 1, "build", LINUX, t + 900 * SECOND);
    let sent = vec![
        // queued → in_progress → completed
        a.clone(),
        step(
            &a,
            "in_progress",
            Some(t + 30 * SECOND),
            None,
            None,
            Some("r1"),
        ),
        step(
            &a,
            "completed",
            Some(t + 30 * SECOND),
            Some(t + 330 * SECOND),
            Some("success"),
            Some("r1"),
        ),
        // completed without a queued before it: attempt 1 of run 501 fails…
        step(
            &b,
            "completed",
            Some(t + 62 * SECOND),
            Some(t + 122 * SECOND),
            Some("failure"),
            Some("r2"),
        ),
        // …and attempt 2 passes, its deliveries arriving backwards.
        step(
            &c,
            "completed",
            Some(t + 610 * SECOND),
            Some(t + 700 * SECOND),
            Some("success"),
            Some("r2"),
        ),
        step(
            &c,
            "in_progress",
            Some(t + 610 * SECOND),
            None,
            None,
            Some("r2"),
        ),
        c.clone(),
        // Still waiting: a GPU job nobody runs, and a Linux one.
        d.clone(),
        f.clone(),
        // Running now on r3.
        e.clone(),
        step(
            &e,
            "in_progress",
            Some(t + 801 * SECOND),
            None,
            None,
            Some("r3"),
        ),
    ];
    let mut ids = Vec::new();
    for j in &sent {
        let id = new_id();
        let (status, body) = app.post_signed("workflow_job", &id, &j.payload()).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        ids.push(id);
    }
    // A redelivery (same delivery id) and another hook's copy (same content, new
    // id): both stored as duplicates, neither counted.
    let (_, body) = app
        .post_signed("workflow_job", &ids[2], &sent[2].payload())
        .await;
    assert_eq!(body["data"]["status"], "duplicate", "{body}");
    let (_, body) = app
        .post_signed("workflow_job", &new_id(), &sent[3].payload())
        .await;
    assert_eq!(body["data"]["status"], "duplicate", "{body}");
    // Workflow runs are not jobs: they change nothing here.
    for n in 0..5 {
        let mut run = fixture("workflow_run", n).json;
        run["repository"]["full_name"] = json!(REPO);
        let (status, _) = app
            .post_signed(
                "workflow_run",
                &new_id(),
                &serde_json::to_vec(&run).unwrap(),
            )
            .await;
        assert_eq!(status, StatusCode::OK);
    }
    let jobs = model(&sent);

    // The queue: queued jobs, oldest first.
    let (status, queue) = app.get_json("/api/actions/queue").await;
    assert_eq!(status, StatusCode::OK, "{queue}");
    let mut queued: Vec<&Job> = jobs.values().filter(|j| j.action == "queued").collect();
    queued.sort_by_key(|j| j.created);
    let listed: Vec<u64> = queue["data"]["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["jobId"].as_u64().unwrap())
        .collect();
    assert_eq!(
        listed,
        queued.iter().map(|j| j.id).collect::<Vec<_>>(),
        "{queue}"
    );
    assert_eq!(listed, vec![1004, 1006]);
    for line in queue["data"]["jobs"].as_array().unwrap() {
        assert!(line["waitSeconds"].as_i64().unwrap() >= 4 * 3600, "{line}");
    }
    let mut per_labels: BTreeMap<String, (i64, i64)> = BTreeMap::new();
    for j in jobs.values() {
        let line = per_labels.entry(j.label_set()).or_default();
        match j.action {
            "queued" => line.0 += 1,
            "in_progress" => line.1 += 1,
            _ => {}
        }
    }
    for line in queue["data"]["byLabels"].as_array().unwrap() {
        let (q, r) = per_labels[line["labels"].as_str().unwrap()];
        assert_eq!(
            (
                line["queued"].as_i64().unwrap(),
                line["inProgress"].as_i64().unwrap()
            ),
            (q, r),
            "{line}"
        );
        assert_eq!(line["starved"], json!(q > 0 && r == 0), "{line}");
    }
    assert_eq!(
        queue["data"]["byLabels"][0]["labels"], "gpu,self-hosted",
        "the longest wait first"
    );

    // Runners: the jobs in progress, by runner.
    let (_, runners) = app.get_json("/api/actions/runners").await;
    let running: Vec<(String, u64)> = jobs
        .values()
        .filter(|j| j.action == "in_progress")
        .map(|j| (j.runner.unwrap().to_owned(), j.id))
        .collect();
    let listed: Vec<(String, u64)> = runners["data"]["runners"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|r| {
            assert_eq!(r["runnerGroup"], "Default");
            r["jobs"].as_array().unwrap().iter().map(|j| {
                (
                    r["runnerName"].as_str().unwrap().to_owned(),
                    j["jobId"].as_u64().unwrap(),
                )
            })
        })
        .collect();
    assert_eq!(listed, running, "{runners}");

    // Insights over 48 h: every completed job; over the current hour: none.
    let (status, insights) = app.get_json("/api/actions/insights?hours=48").await;
    assert_eq!(status, StatusCode::OK, "{insights}");
    let expected = expected_groups(&jobs);
    let mut got = BTreeMap::new();
    for g in insights["data"]["groups"].as_array().unwrap() {
        assert_eq!(
            (g["repository"].as_str(), g["workflow"].as_str()),
            (Some(REPO), Some("CI"))
        );
        got.insert(
            (g["job"].as_str().unwrap().to_owned(), g["labels"].as_str().unwrap().to_owned()),
            json!({
                "count": g["count"], "conclusions": g["conclusions"], "failureRate": g["failureRate"],
                "flaky": g["flaky"],
                "queue": [g["queueSeconds"]["p50"], g["queueSeconds"]["p95"]],
                "run": [g["runSeconds"]["p50"], g["runSeconds"]["p95"]],
            }),
        );
    }
    assert_eq!(got, expected, "{insights}");
    assert_eq!(insights["data"]["totals"]["count"], 3);
    assert_eq!(insights["data"]["totals"]["flaky"], 1);
    assert_eq!(insights["data"]["flakiest"][0]["job"], "test");
    let (_, filtered) = app
        .get_json("/api/actions/insights?hours=48&labels=gpu,self-hosted")
        .await;
    assert_eq!(filtered["data"]["totals"]["count"], 0, "{filtered}");
    let (_, filtered) = app
        .get_json(&format!(
            "/api/actions/insights?hours=48&repository={REPO}&workflow=CI"
        ))
        .await;
    assert_eq!(filtered["data"]["totals"]["count"], 3, "{filtered}");
    let (_, recent) = app.get_json("/api/actions/insights?hours=1").await;
    assert_eq!(recent["data"]["totals"]["count"], 0, "{recent}");
    let (status, _) = app.get_json("/api/actions/insights?hours=2161").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    // Gauges equal the queue, per label set.
    let metrics = app.metrics().await;
    let queued_gauge = gauge(&metrics, "hookvault_actions_jobs_queued");
    let running_gauge = gauge(&metrics, "hookvault_actions_jobs_in_progress");
    for (labels, (q, r)) in &per_labels {
        assert_eq!(queued_gauge.get(labels), Some(&(*q as f64)), "{metrics}");
        assert_eq!(running_gauge.get(labels), Some(&(*r as f64)), "{metrics}");
    }
    let completed_linux = jobs.values().filter(|j| j.action == "completed").count() as f64;
    let linux = "linux,self-hosted,x64";
    assert_eq!(
        gauge(&metrics, "hookvault_actions_run_time_seconds_count").get(linux),
        Some(&completed_linux)
    );
    assert!(
        gauge(&metrics, "hookvault_actions_oldest_queued_seconds")["gpu,self-hosted"]
            >= 4.0 * 3600.0
    );

    // The state survives a restart, and `verify` recomputes it clean.
    app = app.restart().await;
    let (_, again) = app.get_json("/api/actions/queue").await;
    let ids = |q: &Value| -> Vec<u64> {
        q["data"]["jobs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|j| j["jobId"].as_u64().unwrap())
            .collect()
    };
    assert_eq!(ids(&again), ids(&queue));
    assert_eq!(again["data"]["queued"], 2);
    app.stop().await;
    let output = command(app.data_dir.path()).arg("verify").output().unwrap();
    assert!(
        output.status.success(),
        "verify: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}
