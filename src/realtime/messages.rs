//! The messages of the `/` namespace: which Socket.IO event each webhook event type
//! is sent as, and what the message carries.

use serde_json::{Map, Value, json};

use crate::domain::catalog::{self, Category};
use crate::domain::timestamp;
use crate::store::EventRecord;

/// Largest JSON object sent for one payload object; a larger one is cut down to its
/// identifying fields, with `truncated: true`. Keeps every message well under the
/// clients' default 1 MB limit and the socket buffers bounded in bytes.
pub const MAX_OBJECT_BYTES: usize = 64 * 1024;

/// Fields kept when an object is cut down.
const IDENTIFYING: &[&str] = &[
    "id",
    "node_id",
    "number",
    "name",
    "title",
    "state",
    "status",
    "conclusion",
    "html_url",
    "url",
    "head_branch",
    "head_sha",
    "workflow_name",
    "run_id",
    "created_at",
    "updated_at",
    "started_at",
    "completed_at",
    "merged",
    "draft",
    "tag_name",
    "severity",
    "full_name",
    "login",
    "type",
];

/// The per-type event name for an event type, if it has one (every event is also
/// sent as `webhook-event`).
pub fn channel(event: &str) -> Option<&'static str> {
    Some(match event {
        "workflow_job" => "workflow-job",
        "workflow_run" => "workflow-run",
        "check_run" => "check-run",
        "check_suite" => "check-suite",
        "push" => "push-event",
        "pull_request"
        | "pull_request_review"
        | "pull_request_review_comment"
        | "pull_request_review_thread" => "pull-request",
        "issues" | "issue_comment" => "issue-event",
        "deployment" | "deployment_status" | "deployment_review" | "deployment_protection_rule" => {
            "deployment-event"
        }
        "release" => "release-event",
        _ => return None,
    })
}

/// True for the event types sent to every client as `security-alert`.
pub fn is_security_alert(event: &str) -> bool {
    catalog::find(event).is_some_and(|k| k.category == Category::Security)
}

fn bounded(value: &Value) -> Value {
    let size = serde_json::to_vec(value).map_or(0, |v| v.len());
    if size <= MAX_OBJECT_BYTES {
        return value.clone();
    }
    let Some(object) = value.as_object() else {
        return json!({"truncated": true});
    };
    let mut kept: Map<String, Value> = IDENTIFYING
        .iter()
        .filter_map(|k| {
            object
                .get(*k)
                .filter(|v| !v.is_object() && !v.is_array())
                .map(|v| ((*k).to_owned(), v.clone()))
        })
        .collect();
    kept.insert("truncated".into(), Value::Bool(true));
    Value::Object(kept)
}

/// The message for one event: the common fields, the main object under its short
/// key (`job`, `run`, `pullRequest`…), and the push details for pushes.
pub fn message(seq: u64, record: &EventRecord, payload: &Value) -> Value {
    let mut message = json!({
        "id": seq,
        "eventType": record.origin.event,
        "action": record.origin.action,
        "deliveryId": record.origin.delivery_id,
        "repository": bounded(&payload["repository"]),
        "organization": bounded(&payload["organization"]),
        "sender": bounded(&payload["sender"]),
        "receivedAt": timestamp::to_rfc3339(record.received_at_ms),
        "status": record.status.as_str(),
    });
    let object = message.as_object_mut().expect("built as an object");
    if let Some(kind) = catalog::find(&record.origin.event)
        && let (Some(main), Some(short)) = (kind.main_object, kind.short_key)
        && let Some(value) = payload.get(main)
    {
        object.insert(short.to_owned(), bounded(value));
    }
    for (key, short) in [
        ("issue", "issue"),
        ("pull_request", "pullRequest"),
        ("comment", "comment"),
        ("alert", "alert"),
    ] {
        if let Some(value) = payload.get(key) {
            object.entry(short).or_insert_with(|| bounded(value));
        }
    }
    if record.origin.event == "push" {
        for (key, short) in [
            ("ref", "ref"),
            ("before", "before"),
            ("after", "after"),
            ("compare", "compare"),
        ] {
            object.insert(short.into(), payload[key].clone());
        }
        object.insert("headCommit".into(), bounded(&payload["head_commit"]));
        object.insert("pusher".into(), bounded(&payload["pusher"]));
        object.insert("commits".into(), bounded(&payload["commits"]));
    }
    message
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn huge_objects_are_cut_to_their_identifying_fields() {
        let body = "x".repeat(MAX_OBJECT_BYTES + 1);
        let cut = bounded(&json!({"id": 7, "title": "big", "body": body}));
        assert_eq!(cut, json!({"id": 7, "title": "big", "truncated": true}));
        let small = json!({"id": 7, "body": "short"});
        assert_eq!(bounded(&small), small);
    }

    #[test]
    fn every_seed_channel_is_mapped() {
        assert_eq!(channel("workflow_job"), Some("workflow-job"));
        assert_eq!(channel("push"), Some("push-event"));
        assert_eq!(channel("issue_comment"), Some("issue-event"));
        assert_eq!(channel("star"), None);
        assert!(is_security_alert("dependabot_alert"));
        assert!(is_security_alert("secret_scanning_alert"));
        assert!(!is_security_alert("push"));
    }
}
