//! What processing learns from one payload: the structure check of its type and the
//! facts it adds to the repository and job counters.

use serde_json::Value;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::domain::catalog;
use crate::store::Fact;

/// Repository counter names.
pub mod counter {
    pub const PUSHES: &str = "pushes";
    pub const COMMITS: &str = "commits";
    pub const PRS_OPENED: &str = "pull_requests_opened";
    pub const PRS_MERGED: &str = "pull_requests_merged";
    pub const PRS_CLOSED: &str = "pull_requests_closed";
    pub const ISSUES_OPENED: &str = "issues_opened";
    pub const ISSUES_CLOSED: &str = "issues_closed";
    pub const RELEASES: &str = "releases";
    pub use crate::store::OPEN_SECURITY_ALERTS;
    pub const QUEUE_MS_SUM: &str = "queue_ms_sum";
    pub const QUEUE_COUNT: &str = "queue_count";
    pub const RUN_MS_SUM: &str = "run_ms_sum";
    pub const RUN_COUNT: &str = "run_count";
    pub const CONCLUSION_PREFIX: &str = "conclusion:";
}

/// Checks the payload's structure and derives its facts. An unknown event type has
/// no structure to check and no facts.
pub fn analyze(event: &str, action: Option<&str>, payload: &Value) -> Result<Vec<Fact>, String> {
    let Some(kind) = catalog::find(event) else {
        return Ok(Vec::new());
    };
    kind.check(payload)?;
    let mut facts = Vec::new();
    let mut repo = |counter: &str, delta: i64| {
        facts.push(Fact::Repo {
            counter: counter.to_owned(),
            delta,
        })
    };
    let action = action.unwrap_or("");
    match event {
        "push" => {
            repo(counter::PUSHES, 1);
            let commits = payload["commits"].as_array().map_or(0, Vec::len);
            if commits > 0 {
                repo(counter::COMMITS, commits as i64);
            }
        }
        "pull_request" if action == "opened" => repo(counter::PRS_OPENED, 1),
        "pull_request" if action == "closed" => {
            let merged = payload["pull_request"]["merged"].as_bool().unwrap_or(false);
            repo(
                if merged {
                    counter::PRS_MERGED
                } else {
                    counter::PRS_CLOSED
                },
                1,
            );
        }
        "issues" if action == "opened" => repo(counter::ISSUES_OPENED, 1),
        "issues" if action == "closed" => repo(counter::ISSUES_CLOSED, 1),
        "release" if action == "published" => repo(counter::RELEASES, 1),
        _ => {}
    }
    if let Some(open) = alert_opened(event, action) {
        let alert = &payload["alert"];
        if let Some(number) = alert["number"].as_u64().or_else(|| alert["id"].as_u64()) {
            facts.push(Fact::Alert {
                alert: format!("{event}#{number}"),
                open,
            });
        }
    }
    match (event, action) {
        ("workflow_job", "completed") => job_facts(&payload["workflow_job"], &mut facts),
        ("workflow_run", "completed") => run_facts(&payload["workflow_run"], &mut facts),
        _ => {}
    }
    Ok(facts)
}

/// Whether an alert event leaves its alert open (`None`: the state does not change).
fn alert_opened(event: &str, action: &str) -> Option<bool> {
    let opened = [
        "created",
        "reopened",
        "reopened_by_user",
        "reintroduced",
        "create",
    ];
    let closed = [
        "fixed",
        "closed_by_user",
        "dismissed",
        "auto_dismissed",
        "resolved",
        "resolve",
        "dismiss",
    ];
    let alerts = [
        "code_scanning_alert",
        "secret_scanning_alert",
        "dependabot_alert",
        "repository_vulnerability_alert",
    ];
    if !alerts.contains(&event) {
        return None;
    }
    if opened.contains(&action) {
        Some(true)
    } else if closed.contains(&action) {
        Some(false)
    } else {
        None
    }
}

fn millis_between(from: &Value, to: &Value) -> Option<i64> {
    let parse = |v: &Value| OffsetDateTime::parse(v.as_str()?, &Rfc3339).ok();
    let ms = (parse(to)? - parse(from)?).whole_milliseconds();
    (ms >= 0).then_some(ms as i64)
}

fn job_fact(workflow: &str, job: &str, counter: &str, delta: i64) -> Fact {
    Fact::Job {
        workflow: workflow.to_owned(),
        job: job.to_owned(),
        counter: counter.to_owned(),
        delta,
    }
}

fn job_facts(job: &Value, facts: &mut Vec<Fact>) {
    let workflow = job["workflow_name"]
        .as_str()
        .unwrap_or("(unnamed workflow)");
    let name = job["name"].as_str().unwrap_or("(unnamed job)");
    let conclusion = job["conclusion"].as_str().unwrap_or("unknown");
    facts.push(job_fact(
        workflow,
        name,
        &format!("{}{conclusion}", counter::CONCLUSION_PREFIX),
        1,
    ));
    if let Some(queued) = millis_between(&job["created_at"], &job["started_at"]) {
        facts.push(job_fact(workflow, name, counter::QUEUE_MS_SUM, queued));
        facts.push(job_fact(workflow, name, counter::QUEUE_COUNT, 1));
    }
    if let Some(ran) = millis_between(&job["started_at"], &job["completed_at"]) {
        facts.push(job_fact(workflow, name, counter::RUN_MS_SUM, ran));
        facts.push(job_fact(workflow, name, counter::RUN_COUNT, 1));
    }
}

fn run_facts(run: &Value, facts: &mut Vec<Fact>) {
    let workflow = run["name"].as_str().unwrap_or("(unnamed workflow)");
    let conclusion = run["conclusion"].as_str().unwrap_or("unknown");
    facts.push(job_fact(
        workflow,
        "",
        &format!("{}{conclusion}", counter::CONCLUSION_PREFIX),
        1,
    ));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::json::tests::every_fixture_by_event;
    use crate::domain::{ContentKey, EventFields, EventType, PayloadEncoding};
    use crate::ingest::Payload;
    use serde_json::json;

    /// Fields, content key, structure check and facts read the same from the parts
    /// as from the whole payload, for every example of every event type.
    #[test]
    fn the_parts_read_give_what_the_whole_gives() {
        for (name, text, whole) in every_fixture_by_event() {
            let payload = Payload::parse(PayloadEncoding::Json, text.clone().into()).unwrap();
            let parts = payload.read_parts();
            let event = EventType::parse(&name).unwrap();
            let fields = EventFields::extract(&whole);
            assert_eq!(EventFields::extract(parts), fields, "{name}");
            assert_eq!(
                ContentKey::derive(&event, parts, &text),
                ContentKey::derive(&event, &whole, &text),
                "{name}"
            );
            let action = fields.action.as_deref();
            assert_eq!(
                analyze(&name, action, parts),
                analyze(&name, action, &whole),
                "{name}"
            );
            assert_eq!(payload.whole(), &whole);
        }
    }

    #[test]
    fn completed_jobs_give_conclusion_queue_and_run_times() {
        let payload = json!({"workflow_job": {"id": 1, "name": "linters", "workflow_name": "CodeQL",
            "conclusion": "failure", "created_at": "2021-08-05T10:33:58Z",
            "started_at": "2021-08-05T10:34:58Z", "completed_at": "2021-08-05T10:38:16Z"}});
        let facts = analyze("workflow_job", Some("completed"), &payload).unwrap();
        assert_eq!(
            facts,
            vec![
                job_fact("CodeQL", "linters", "conclusion:failure", 1),
                job_fact("CodeQL", "linters", counter::QUEUE_MS_SUM, 60_000),
                job_fact("CodeQL", "linters", counter::QUEUE_COUNT, 1),
                job_fact("CodeQL", "linters", counter::RUN_MS_SUM, 198_000),
                job_fact("CodeQL", "linters", counter::RUN_COUNT, 1),
            ]
        );
        assert!(
            analyze("workflow_job", Some("queued"), &payload)
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn merged_and_closed_pull_requests_are_told_apart() {
        let merged = json!({"pull_request": {"number": 1, "title": "x", "merged": true}});
        let closed = json!({"pull_request": {"number": 1, "title": "x", "merged": false}});
        let fact = |c: &str| {
            vec![Fact::Repo {
                counter: c.into(),
                delta: 1,
            }]
        };
        assert_eq!(
            analyze("pull_request", Some("closed"), &merged).unwrap(),
            fact(counter::PRS_MERGED)
        );
        assert_eq!(
            analyze("pull_request", Some("closed"), &closed).unwrap(),
            fact(counter::PRS_CLOSED)
        );
    }

    #[test]
    fn structure_problems_fail_and_unknown_types_pass() {
        let err =
            analyze("pull_request", Some("opened"), &json!({"action": "opened"})).unwrap_err();
        assert!(err.contains("pull_request.number"), "{err}");
        assert_eq!(analyze("brand_new_event", None, &json!({})), Ok(vec![]));
    }
}
