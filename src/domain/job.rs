//! What a `workflow_job` delivery says about its job: the few fields the Actions
//! state (queue, runners, insights) is built from, read from the payload alone.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{PayloadEncoding, json, timestamp};

/// How far a job has come. Ordered: a job only ever moves forward, so of several
/// deliveries (in any order) the furthest one says where it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum JobStatus {
    /// Waiting for an environment's approval: not yet asking for a runner.
    Waiting,
    Queued,
    InProgress,
    Completed,
}

impl JobStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            JobStatus::Waiting => "waiting",
            JobStatus::Queued => "queued",
            JobStatus::InProgress => "in_progress",
            JobStatus::Completed => "completed",
        }
    }

    fn parse(raw: &str) -> Option<Self> {
        [
            JobStatus::Waiting,
            JobStatus::Queued,
            JobStatus::InProgress,
            JobStatus::Completed,
        ]
        .into_iter()
        .find(|s| s.as_str() == raw)
    }
}

/// One delivery's view of a job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobObservation {
    pub job_id: u64,
    pub run_id: u64,
    pub run_attempt: u32,
    pub repository: String,
    pub workflow: String,
    pub name: String,
    /// The job's `runs-on` labels, sorted and joined with `,`.
    pub labels: String,
    pub status: JobStatus,
    pub created_ms: Option<i64>,
    pub started_ms: Option<i64>,
    pub completed_ms: Option<i64>,
    pub conclusion: Option<String>,
    pub runner_name: Option<String>,
    pub runner_group: Option<String>,
}

/// Every pointer [`JobObservation::from_payload`] reads.
const POINTERS: &[&str] = &["/action", "/workflow_job", "/repository/full_name"];

impl JobObservation {
    /// Reads a stored body (JSON or form-encoded); `None` if it is not a job.
    pub fn from_body(encoding: PayloadEncoding, body: &[u8]) -> Option<Self> {
        let text: Vec<u8> = match encoding {
            PayloadEncoding::Json => body.to_vec(),
            PayloadEncoding::Form => form_urlencoded::parse(body)
                .find(|(key, _)| key == "payload")?
                .1
                .into_owned()
                .into_bytes(),
        };
        let paths = json::Paths::new(POINTERS.iter().copied());
        Self::from_payload(&json::parse_only(&text, &paths).ok()?)
    }

    /// The job a `workflow_job` payload describes; `None` without a job id.
    pub fn from_payload(payload: &Value) -> Option<Self> {
        let job = &payload["workflow_job"];
        let text = |v: &Value| v.as_str().filter(|s| !s.is_empty()).map(str::to_owned);
        let time = |key: &str| job[key].as_str().and_then(timestamp::parse);
        // The action names the transition; the job's status is the fallback.
        let status = payload["action"]
            .as_str()
            .and_then(JobStatus::parse)
            .or_else(|| job["status"].as_str().and_then(JobStatus::parse))?;
        let mut labels: Vec<&str> = job["labels"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        labels.sort_unstable();
        labels.dedup();
        Some(Self {
            job_id: job["id"].as_u64()?,
            run_id: job["run_id"].as_u64().unwrap_or(0),
            run_attempt: job["run_attempt"].as_u64().unwrap_or(1) as u32,
            repository: text(&payload["repository"]["full_name"]).unwrap_or_default(),
            workflow: text(&job["workflow_name"]).unwrap_or_default(),
            name: text(&job["name"]).unwrap_or_default(),
            labels: labels.join(","),
            status,
            created_ms: time("created_at"),
            started_ms: time("started_at"),
            completed_ms: time("completed_at"),
            conclusion: text(&job["conclusion"]),
            runner_name: text(&job["runner_name"]),
            runner_group: text(&job["runner_group_name"]),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_a_job_with_sorted_labels() {
        let payload = json!({"action": "completed", "repository": {"full_name": "o/r"},
            "workflow_job": {"id": 7, "run_id": 9, "run_attempt": 2, "name": "build",
            "workflow_name": "CI", "labels": ["x64", "self-hosted", "linux"],
            "created_at": "2024-01-01T00:00:00Z", "started_at": "2024-01-01T00:00:05Z",
            "completed_at": "2024-01-01T00:01:05Z", "conclusion": "success",
            "runner_name": "r1", "runner_group_name": "Default"}});
        let job = JobObservation::from_payload(&payload).unwrap();
        assert_eq!(job.labels, "linux,self-hosted,x64");
        assert_eq!(job.status, JobStatus::Completed);
        assert_eq!(job.run_attempt, 2);
        assert_eq!(job.started_ms.unwrap() - job.created_ms.unwrap(), 5000);
        let body = serde_json::to_vec(&payload).unwrap();
        assert_eq!(
            JobObservation::from_body(PayloadEncoding::Json, &body),
            Some(job)
        );
    }

    #[test]
    fn a_payload_without_a_job_id_is_no_job() {
        let payload = json!({"action": "queued", "workflow_job": {"name": "x"}});
        assert_eq!(JobObservation::from_payload(&payload), None);
        assert!(JobStatus::Queued < JobStatus::Completed);
    }
}
