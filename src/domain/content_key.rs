//! The content key: what makes two deliveries "the same event" even when they come
//! through two hooks (an organization hook and a repository hook) under two delivery
//! ids.

use serde_json::Value;
use sha2::{Digest, Sha256};

use super::{EventType, json};

/// Payload values that identify the entity an event is about. A payload with none of
/// them gets no key: nothing says which thing it is about, so two of its deliveries
/// are never taken for one.
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

/// Event types whose payload can repeat byte for byte for two real events within
/// the window: nothing in it changes from one occurrence to the next (a tag deleted
/// and created again carries the same `ref` and no commit; a star removed and given
/// again, a member removed and added again). Deliveries of these types are never
/// folded by content; a second hook's copy of one is stored as an event of its own.
const REPEATABLE: &[&str] = &[
    "create",
    "delete",
    "watch",
    "star",
    "member",
    "membership",
    "team_add",
    "public",
    "org_block",
    "fork",
];

/// SHA-256 of the event type and the payload's exact JSON text, for payloads that
/// name an entity. Two hooks (an organization's and a repository's) are sent the same
/// payload for one event, under two delivery ids; any two different events differ
/// somewhere in the text (an id, a time, a sha, the `changes` of an edit), so a key
/// over the whole text never folds two of them, where one over chosen fields would
/// fold any two whose difference lies outside those fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ContentKey(pub [u8; 32]);

impl ContentKey {
    /// Every pointer [`ContentKey::derive`] reads.
    pub(crate) const POINTERS: &[&str] = ENTITY_POINTERS;

    /// `payload` holds at least the parts named by [`ContentKey::POINTERS`]; `text` is
    /// the payload's JSON text as received (for a form body, its `payload` field).
    ///
    /// `None` when the payload names no entity or its type can repeat unchanged:
    /// then there is nothing to tell two deliveries apart by, and both are kept
    /// rather than risk folding a real event.
    pub fn derive(event: &EventType, payload: &Value, text: &[u8]) -> Option<Self> {
        if REPEATABLE.contains(&event.as_str()) {
            return None;
        }
        let names_an_entity = ENTITY_POINTERS
            .iter()
            .any(|pointer| !matches!(json::at(payload, pointer), None | Some(Value::Null)));
        if !names_an_entity {
            return None;
        }
        let mut hasher = Sha256::new();
        hasher.update((event.as_str().len() as u64).to_le_bytes());
        hasher.update(event.as_str());
        hasher.update(text);
        Some(Self(hasher.finalize().into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::json::tests::every_fixture_by_event;
    use serde_json::json;

    fn key(event: &str, payload: &Value) -> Option<ContentKey> {
        let text = serde_json::to_vec(payload).unwrap();
        ContentKey::derive(&EventType::parse(event).unwrap(), payload, &text)
    }

    #[test]
    fn two_hooks_copies_of_one_event_share_a_key() {
        let payload = json!({"action": "completed", "workflow_job": {"id": 7},
            "repository": {"full_name": "o/r"}, "organization": {"login": "o"}});
        assert!(key("workflow_job", &payload).is_some());
        assert_eq!(key("workflow_job", &payload), key("workflow_job", &payload));
        assert_ne!(key("workflow_job", &payload), key("workflow_run", &payload));
    }

    /// Two real events about one entity differ somewhere; each such difference,
    /// at every leaf of a real payload of every type in `fixtures/` that has a key,
    /// gives another key. One payload a type: the key hashes the whole text, so a
    /// second payload of the same type adds time (this test was a minute of the
    /// suite's), not cases.
    #[test]
    fn any_change_to_a_real_payload_gives_another_key() {
        let mut keyed = std::collections::HashSet::new();
        for (event, _, payload) in every_fixture_by_event() {
            if keyed.contains(&event) {
                continue;
            }
            let Some(original) = key(&event, &payload) else {
                continue;
            };
            keyed.insert(event.clone());
            let mut leaves = Vec::new();
            collect_leaves(&payload, String::new(), &mut leaves);
            // Each leaf changed in place and put back: a copy of the payload per
            // leaf made this test quadratic in the payload's size.
            let mut payload = payload;
            for pointer in leaves {
                let leaf = payload.pointer_mut(&pointer).unwrap();
                let changed = match &*leaf {
                    Value::String(s) => Value::String(format!("{s}x")),
                    Value::Number(n) => json!(n.as_f64().unwrap_or(0.0) + 1.0),
                    Value::Bool(b) => Value::Bool(!*b),
                    _ => json!("set"),
                };
                let kept = std::mem::replace(leaf, changed);
                assert_ne!(key(&event, &payload), Some(original), "{event} {pointer}");
                *payload.pointer_mut(&pointer).unwrap() = kept;
            }
        }
        assert!(
            keyed.len() >= 35,
            "only {} event types have a key",
            keyed.len()
        );
    }

    /// The cases a key over chosen fields folded: a tag deleted and created again
    /// (same ref, no sha), an issue edited twice (same number, new `changes`).
    #[test]
    fn repeated_real_events_are_not_folded() {
        let tag = json!({"ref": "v1.0", "ref_type": "tag", "master_branch": "main",
            "pusher_type": "user", "repository": {"full_name": "o/r"}});
        assert_eq!(key("create", &tag), None);
        assert_eq!(key("delete", &tag), None);
        let edit = |from: &str| {
            json!({"action": "edited", "issue": {"number": 1, "updated_at": "2026-12-01T10:00:00Z"},
                "changes": {"title": {"from": from}}, "repository": {"full_name": "o/r"}})
        };
        assert_ne!(key("issues", &edit("a")), key("issues", &edit("b")));
    }

    #[test]
    fn payload_without_entity_has_no_key() {
        assert_eq!(key("issues", &json!({"action": "opened"})), None);
    }

    fn collect_leaves(value: &Value, here: String, out: &mut Vec<String>) {
        match value {
            Value::Object(map) => {
                for (k, child) in map {
                    let escaped = k.replace('~', "~0").replace('/', "~1");
                    collect_leaves(child, format!("{here}/{escaped}"), out);
                }
            }
            Value::Array(items) => {
                for (i, child) in items.iter().enumerate() {
                    collect_leaves(child, format!("{here}/{i}"), out);
                }
            }
            _ => out.push(here),
        }
    }
}
