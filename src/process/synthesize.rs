//! Realistic payloads for `POST /api/webhooks/test`: the first example of the event
//! type from `fixtures/` (embedded in the binary), retargeted at the requested
//! repository and action, with the state fields GitHub sends for that action (a
//! `closed` pull request is closed, a `queued` job has no conclusion). Types without
//! an example get a minimal payload that has every field their structure check asks
//! for.

use rust_embed::RustEmbed;
use serde_json::{Map, Value, json};

use crate::domain::catalog;

#[derive(RustEmbed)]
#[folder = "fixtures/"]
#[include = "*/0.json"]
struct Examples;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SynthesizeError {
    #[error("unknown event type {given:?}; valid types: {valid}")]
    UnknownEvent { given: String, valid: String },
    #[error("{event} has no action {given:?}; valid actions: {valid}")]
    UnknownAction {
        event: String,
        given: String,
        valid: String,
    },
    #[error("repository must look like owner/name, got {0:?}")]
    BadRepository(String),
}

/// A payload of `event` about `repository`, with `action` (or the type's first).
pub fn payload(
    event: &str,
    repository: &str,
    action: Option<&str>,
) -> Result<Value, SynthesizeError> {
    let kind = catalog::find(event).ok_or_else(|| SynthesizeError::UnknownEvent {
        given: event.to_owned(),
        valid: catalog::all()
            .iter()
            .map(|k| k.name)
            .collect::<Vec<_>>()
            .join(", "),
    })?;
    let action = match action {
        Some(action) if !kind.actions.is_empty() && !kind.actions.contains(&action) => {
            return Err(SynthesizeError::UnknownAction {
                event: event.to_owned(),
                given: action.to_owned(),
                valid: kind.actions.join(", "),
            });
        }
        Some(action) => Some(action),
        None => kind.actions.first().copied(),
    };
    let (owner, name) = repository
        .split_once('/')
        .filter(|(o, n)| !o.is_empty() && !n.is_empty() && !n.contains('/'))
        .ok_or_else(|| SynthesizeError::BadRepository(repository.to_owned()))?;

    let mut payload = Examples::get(&format!("{event}/0.json"))
        .and_then(|file| serde_json::from_slice::<Value>(&file.data).ok())
        .unwrap_or_else(|| minimal(kind.required));
    let object = payload.as_object_mut().expect("examples are JSON objects");
    if let Some(action) = action {
        object.insert("action".into(), json!(action));
        if let Some(main) = kind
            .main_object
            .and_then(|key| object.get_mut(key))
            .and_then(Value::as_object_mut)
        {
            settle(event, action, main);
        }
        if let Some(alert) = object.get_mut("alert").and_then(Value::as_object_mut) {
            settle(event, action, alert);
        }
    }
    let repo = object
        .entry("repository")
        .or_insert_with(|| json!({}))
        .as_object_mut()
        .map(std::mem::take)
        .unwrap_or_default();
    object.insert("repository".into(), retarget(repo, owner, name));
    object
        .entry("sender")
        .or_insert_with(|| json!({"login": "hookvault-test", "id": 0, "type": "User"}));
    Ok(payload)
}

fn retarget(mut repo: Map<String, Value>, owner: &str, name: &str) -> Value {
    repo.insert("name".into(), json!(name));
    repo.insert("full_name".into(), json!(format!("{owner}/{name}")));
    repo.insert(
        "html_url".into(),
        json!(format!("https://github.com/{owner}/{name}")),
    );
    let owner_object = repo.entry("owner").or_insert_with(|| json!({}));
    if let Some(owner_object) = owner_object.as_object_mut() {
        owner_object.insert("login".into(), json!(owner));
    }
    Value::Object(repo)
}

/// Sets the state fields of the event's main object to what GitHub sends with
/// `action`, so an example recorded for one action reads right for another.
fn settle(event: &str, action: &str, main: &mut Map<String, Value>) {
    let now = json!(crate::domain::timestamp::to_rfc3339(
        crate::domain::timestamp::now_ms()
    ));
    let mut set = |key: &str, value: Value| {
        main.insert(key.to_owned(), value);
    };
    match (event, action) {
        ("pull_request" | "issues" | "milestone" | "discussion", "closed") => {
            set("state", json!("closed"));
            set("closed_at", now);
            if event == "pull_request" {
                set("merged", json!(false));
                set("merged_at", Value::Null);
            }
        }
        ("pull_request" | "issues" | "discussion", "opened" | "reopened") => {
            set("state", json!("open"));
            set("closed_at", Value::Null);
            if event == "pull_request" {
                set("merged", json!(false));
                set("merged_at", Value::Null);
            }
        }
        ("milestone", "opened" | "created") => {
            set("state", json!("open"));
            set("closed_at", Value::Null);
        }
        ("workflow_job" | "workflow_run" | "check_run" | "check_suite", _) => {
            let status = match action {
                "completed" => "completed",
                "in_progress" => "in_progress",
                "waiting" => "waiting",
                _ => "queued",
            };
            set("status", json!(status));
            if status == "completed" {
                let concluded = main.get("conclusion").is_some_and(|c| !c.is_null());
                if !concluded {
                    main.insert("conclusion".into(), json!("success"));
                }
            } else {
                set("conclusion", Value::Null);
                set("completed_at", Value::Null);
            }
        }
        ("code_scanning_alert" | "secret_scanning_alert" | "dependabot_alert", _) => {
            let state = match action {
                "created" | "reopened" | "reopened_by_user" | "reintroduced" => "open",
                "fixed" => "fixed",
                "dismissed" | "closed_by_user" => "dismissed",
                "auto_dismissed" => "auto_dismissed",
                "resolved" => "resolved",
                _ => return,
            };
            set("state", json!(state));
        }
        _ => {}
    }
}

/// An object holding a placeholder at every required pointer.
fn minimal(required: &[&str]) -> Value {
    let mut root = json!({});
    for pointer in required {
        let mut at = &mut root;
        let parts: Vec<&str> = pointer.trim_start_matches('/').split('/').collect();
        for (i, part) in parts.iter().enumerate() {
            let last = i + 1 == parts.len();
            let next = if last { json!(1) } else { json!({}) };
            at = match at {
                Value::Object(map) => map.entry(part.to_string()).or_insert(next),
                other => other,
            };
        }
    }
    root
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_catalog_type_synthesizes_a_payload_that_passes_its_checks() {
        for kind in catalog::all() {
            let payload = payload(kind.name, "octo/app", None).unwrap();
            assert_eq!(kind.check(&payload), Ok(()), "{}", kind.name);
            assert_eq!(
                payload["repository"]["full_name"], "octo/app",
                "{}",
                kind.name
            );
        }
    }

    /// Every action of the main types: the state fields say what the action says.
    #[test]
    fn the_payload_reads_right_for_the_chosen_action() {
        for kind in catalog::all() {
            for action in kind.actions {
                let p = payload(kind.name, "octo/app", Some(action)).unwrap();
                assert_eq!(kind.check(&p), Ok(()), "{} {action}", kind.name);
                let main = &p[kind.main_object.unwrap_or("none")];
                match (kind.name, *action) {
                    ("pull_request" | "issues", "closed") => {
                        assert_eq!(main["state"], "closed", "{} {action}", kind.name);
                    }
                    ("pull_request" | "issues", "opened" | "reopened") => {
                        assert_eq!(main["state"], "open", "{} {action}", kind.name);
                    }
                    ("workflow_job" | "workflow_run" | "check_run" | "check_suite", a) => {
                        let completed = a == "completed";
                        assert_eq!(
                            main["status"] == "completed",
                            completed,
                            "{} {a}",
                            kind.name
                        );
                        assert_eq!(
                            main["conclusion"].is_null(),
                            !completed,
                            "{} {a}",
                            kind.name
                        );
                    }
                    ("dependabot_alert" | "code_scanning_alert", "created" | "reopened") => {
                        assert_eq!(p["alert"]["state"], "open", "{} {action}", kind.name);
                    }
                    ("dependabot_alert" | "code_scanning_alert", "fixed") => {
                        assert_eq!(p["alert"]["state"], "fixed", "{} {action}", kind.name);
                    }
                    _ => {}
                }
            }
        }
        let merged = payload("pull_request", "o/r", Some("closed")).unwrap();
        assert_eq!(merged["pull_request"]["merged"], false);
    }

    #[test]
    fn action_and_repository_are_applied_and_checked() {
        let p = payload("workflow_job", "myorg/myrepo", Some("completed")).unwrap();
        assert_eq!(p["action"], "completed");
        assert_eq!(p["repository"]["owner"]["login"], "myorg");
        assert!(p["workflow_job"]["name"].is_string());
        assert!(matches!(
            payload("workflow_job", "x/y", Some("exploded")),
            Err(SynthesizeError::UnknownAction { .. })
        ));
        assert!(matches!(
            payload("nope", "x/y", None),
            Err(SynthesizeError::UnknownEvent { .. })
        ));
        assert!(matches!(
            payload("push", "not-a-repo", None),
            Err(SynthesizeError::BadRepository(_))
        ));
    }
}
