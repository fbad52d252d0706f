//! Realistic payloads for `POST /api/webhooks/test`: the first example of the event
//! type from `fixtures/` (embedded in the binary), retargeted at the requested
//! repository and action. Types without an example get a minimal payload that has
//! every field their structure check asks for.

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
