//! The few facts every stored event is indexed by, read from any payload. Every field
//! is optional, so a new or unusual event type never fails extraction.

use serde_json::Value;

use super::json;

/// Facts extracted from a payload (and the delivery's headers).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventFields {
    pub action: Option<String>,
    /// `owner/name` of the repository the event is about.
    pub repository: Option<String>,
    /// The organization the event belongs to, or else the account owning the
    /// repository, so org-wide filters also catch repositories of a user account.
    pub organization: Option<String>,
    pub sender: Option<String>,
    pub installation_id: Option<u64>,
}

impl EventFields {
    /// Every pointer [`EventFields::extract`] reads.
    pub(crate) const POINTERS: &[&str] = &[
        "/action",
        "/repository/full_name",
        "/organization/login",
        "/repository/owner/login",
        "/sender/login",
        "/installation/id",
    ];

    pub fn extract(payload: &Value) -> Self {
        let text = |pointer: &str| {
            json::at(payload, pointer)
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
        };
        Self {
            action: text("/action"),
            repository: text("/repository/full_name"),
            organization: text("/organization/login").or_else(|| text("/repository/owner/login")),
            sender: text("/sender/login"),
            installation_id: json::at(payload, "/installation/id").and_then(Value::as_u64),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn extracts_common_fields() {
        let payload = json!({
            "action": "completed",
            "repository": {"full_name": "octo/hello", "owner": {"login": "octo"}},
            "organization": {"login": "octo-org"},
            "sender": {"login": "mona"},
            "installation": {"id": 42}
        });
        let fields = EventFields::extract(&payload);
        assert_eq!(fields.action.as_deref(), Some("completed"));
        assert_eq!(fields.repository.as_deref(), Some("octo/hello"));
        assert_eq!(fields.organization.as_deref(), Some("octo-org"));
        assert_eq!(fields.sender.as_deref(), Some("mona"));
        assert_eq!(fields.installation_id, Some(42));
    }

    #[test]
    fn falls_back_to_repository_owner_and_tolerates_missing_fields() {
        let payload = json!({"repository": {"full_name": "mona/dots", "owner": {"login": "mona"}}});
        let fields = EventFields::extract(&payload);
        assert_eq!(fields.organization.as_deref(), Some("mona"));
        assert_eq!(fields.action, None);
        assert_eq!(EventFields::extract(&json!({})), EventFields::default());
    }
}
