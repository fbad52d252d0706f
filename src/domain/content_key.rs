//! The content key: what makes two deliveries "the same event" even when they come
//! through two hooks (an organization hook and a repository hook) under two delivery
//! ids.

use serde_json::Value;
use sha2::{Digest, Sha256};

use super::{EventFields, EventType, json};

/// Payload values that identify the entity an event is about, and the change to it.
/// Each is used when present. The main object's `updated_at`, the head commit and the
/// label keep two genuinely different events about one entity (two pushes to a PR, two
/// labels added) from colliding.
const ENTITY_POINTERS: &[&str] = &[
    "/workflow_job/id",
    "/workflow_run/id",
    "/check_run/id",
    "/check_suite/id",
    "/pull_request/number",
    "/pull_request/head/sha",
    "/pull_request/updated_at",
    "/issue/number",
    "/issue/updated_at",
    "/comment/id",
    "/review/id",
    "/thread/node_id",
    "/release/id",
    "/deployment/id",
    "/deployment_status/id",
    "/alert/number",
    "/alert/updated_at",
    "/discussion/number",
    "/discussion/updated_at",
    "/label/name",
    "/label/id",
    "/milestone/id",
    "/package/id",
    "/projects_v2_item/id",
    "/project_card/id",
    "/project_column/id",
    "/project/id",
    "/team/id",
    "/member/id",
    "/membership/user/id",
    "/security_advisory/ghsa_id",
    "/sponsorship/node_id",
    "/forkee/id",
    "/starred_at",
    "/pages/0/sha",
    "/build/commit",
    "/merge_group/head_sha",
    "/sha",
    "/state",
    "/ref",
    "/before",
    "/after",
];

/// SHA-256 of event type, action, repository and the entity ids found in the payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ContentKey(pub [u8; 32]);

impl ContentKey {
    /// Every pointer [`ContentKey::derive`] reads.
    pub(crate) const POINTERS: &[&str] = ENTITY_POINTERS;

    /// `None` when the payload names no entity: then there is nothing to tell two
    /// deliveries apart by, and both are kept rather than risk dropping a real event.
    pub fn derive(event: &EventType, fields: &EventFields, payload: &Value) -> Option<Self> {
        let mut hasher = Sha256::new();
        let mut part = |bytes: &[u8]| {
            hasher.update((bytes.len() as u64).to_le_bytes());
            hasher.update(bytes);
        };
        part(event.as_str().as_bytes());
        part(fields.action.as_deref().unwrap_or("").as_bytes());
        part(fields.repository.as_deref().unwrap_or("").as_bytes());
        let mut found = 0;
        for pointer in ENTITY_POINTERS {
            let value = match json::at(payload, pointer) {
                None | Some(Value::Null) => continue,
                Some(Value::String(s)) => s.clone(),
                Some(other) => other.to_string(),
            };
            found += 1;
            part(pointer.as_bytes());
            part(value.as_bytes());
        }
        (found > 0).then(|| Self(hasher.finalize().into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn key(event: &str, payload: Value) -> Option<ContentKey> {
        let event = EventType::parse(event).unwrap();
        ContentKey::derive(&event, &EventFields::extract(&payload), &payload)
    }

    #[test]
    fn same_entity_and_action_give_the_same_key_whatever_the_hook() {
        let repo_hook = json!({"action": "completed", "workflow_job": {"id": 7},
            "repository": {"full_name": "o/r"}, "hook_id": 1});
        let org_hook = json!({"action": "completed", "workflow_job": {"id": 7},
            "repository": {"full_name": "o/r"}, "hook_id": 2, "organization": {"login": "o"}});
        assert_eq!(
            key("workflow_job", repo_hook),
            key("workflow_job", org_hook)
        );
    }

    #[test]
    fn different_action_entity_or_change_give_different_keys() {
        let base = |action: &str, id: u64, sha: &str| {
            json!({"action": action, "pull_request": {"number": id, "head": {"sha": sha}},
                "repository": {"full_name": "o/r"}})
        };
        let a = key("pull_request", base("synchronize", 1, "aaa"));
        assert_ne!(a, key("pull_request", base("opened", 1, "aaa")));
        assert_ne!(a, key("pull_request", base("synchronize", 2, "aaa")));
        assert_ne!(a, key("pull_request", base("synchronize", 1, "bbb")));
    }

    #[test]
    fn payload_without_entity_has_no_key() {
        assert_eq!(key("watch", json!({"action": "started"})), None);
    }
}
