//! The catalog of event types hookvault knows: category, description, actions, the
//! payload's main object and the structure every payload of the type must have.
//! Unknown types are still accepted and stored; they only skip the checks.

mod kinds;

use serde::Serialize;
use serde_json::Value;

use super::json;

/// The groups event types are shown in, in the dashboard and `GET /api/webhooks/events/types`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Category {
    Actions,
    Code,
    PullRequest,
    Issues,
    Repository,
    Security,
    Organization,
    Other,
}

impl Category {
    pub const ALL: [Category; 8] = [
        Category::Actions,
        Category::Code,
        Category::PullRequest,
        Category::Issues,
        Category::Repository,
        Category::Security,
        Category::Organization,
        Category::Other,
    ];

    pub fn title(self) -> &'static str {
        match self {
            Category::Actions => "Actions",
            Category::Code => "Code",
            Category::PullRequest => "Pull requests",
            Category::Issues => "Issues",
            Category::Repository => "Repository",
            Category::Security => "Security",
            Category::Organization => "Organization",
            Category::Other => "Other",
        }
    }
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EventKind {
    pub name: &'static str,
    pub category: Category,
    pub description: &'static str,
    pub actions: &'static [&'static str],
    /// Key of the payload object the event is about (`workflow_job`, `pull_request`…).
    #[serde(skip)]
    pub main_object: Option<&'static str>,
    /// Key under which realtime messages carry the main object (`job`, `pullRequest`…).
    #[serde(skip)]
    pub short_key: Option<&'static str>,
    /// JSON pointers every payload of this type must have (the structure check).
    #[serde(skip)]
    pub required: &'static [&'static str],
}

impl EventKind {
    /// The first structure problem of a payload, if any.
    pub fn check(&self, payload: &Value) -> Result<(), String> {
        for pointer in self.required {
            match json::at(payload, pointer) {
                None | Some(Value::Null) => {
                    return Err(format!(
                        "{} payload has no {}",
                        self.name,
                        pointer.trim_start_matches('/').replace('/', ".")
                    ));
                }
                Some(_) => {}
            }
        }
        Ok(())
    }

    pub fn is_security(&self) -> bool {
        self.category == Category::Security
    }
}

/// Every pointer processing's facts read (`process::analyze`), besides each type's
/// `required`: ingest reads these parts of a payload up front, so processing never
/// builds the whole tree.
pub const FACT_POINTERS: &[&str] = &[
    "/alert/number",
    "/alert/id",
    "/commits",
    "/pull_request/merged",
    "/workflow_job/workflow_name",
    "/workflow_job/name",
    "/workflow_job/conclusion",
    "/workflow_job/created_at",
    "/workflow_job/started_at",
    "/workflow_job/completed_at",
    "/workflow_run/name",
    "/workflow_run/conclusion",
];

pub fn all() -> &'static [EventKind] {
    kinds::KINDS
}

pub fn find(name: &str) -> Option<&'static EventKind> {
    kinds::KINDS.iter().find(|kind| kind.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn names_are_unique_and_sorted() {
        let names: Vec<&str> = all().iter().map(|k| k.name).collect();
        let mut sorted = names.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(names, sorted);
    }

    /// Every action GitHub sent in the recorded examples is listed for its type, and
    /// nothing GitHub never sends is (a merge arrives as `closed` with `merged: true`).
    #[test]
    fn actions_are_those_github_sends() {
        for (event, _, payload) in crate::domain::json::tests::every_fixture_by_event() {
            let kind = find(&event).unwrap_or_else(|| panic!("{event} not in the catalog"));
            if let Some(action) = payload["action"].as_str() {
                assert!(kind.actions.contains(&action), "{event}: {action}");
            }
        }
        let pull_request = find("pull_request").unwrap();
        assert!(!pull_request.actions.contains(&"merged"));
        assert!(pull_request.actions.contains(&"closed"));
    }

    #[test]
    fn covers_the_seed_list() {
        for name in [
            "workflow_job",
            "workflow_run",
            "workflow_dispatch",
            "check_run",
            "check_suite",
            "push",
            "create",
            "delete",
            "gollum",
            "pull_request",
            "pull_request_review",
            "pull_request_review_comment",
            "pull_request_target",
            "issues",
            "issue_comment",
            "deployment",
            "deployment_status",
            "fork",
            "page_build",
            "public",
            "release",
            "repository",
            "repository_dispatch",
            "star",
            "status",
            "watch",
            "code_scanning_alert",
            "secret_scanning_alert",
            "security_advisory",
            "member",
            "membership",
            "organization",
            "org_block",
            "team",
            "team_add",
            "installation",
            "label",
            "milestone",
            "package",
            "ping",
            "project",
            "sponsorship",
        ] {
            assert!(find(name).is_some(), "{name} missing from the catalog");
        }
        // What is often called "vulnerability_alert" is GitHub's repository_vulnerability_alert.
        assert!(
            find("repository_vulnerability_alert")
                .unwrap()
                .is_security()
        );
    }

    #[test]
    fn structure_checks_name_the_missing_field() {
        let kind = find("workflow_job").unwrap();
        assert!(
            kind.check(&json!({"workflow_job": {"id": 1, "name": "build"}}))
                .is_ok()
        );
        assert_eq!(
            kind.check(&json!({"workflow_job": {"name": "build"}}))
                .unwrap_err(),
            "workflow_job payload has no workflow_job.id"
        );
        assert!(kind.check(&json!({"action": "queued"})).is_err());
    }
}
