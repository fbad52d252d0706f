//! `X-GitHub-Event`: the event type, such as `workflow_job` or `pull_request`.

use super::DomainError;

const MAX_LEN: usize = 64;

/// An event type name: 1 to 64 characters of `[a-z0-9_]`. Any such name is accepted,
/// known or not, so a new GitHub event type is stored rather than rejected.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct EventType(String);

impl EventType {
    pub fn parse(raw: &str) -> Result<Self, DomainError> {
        let allowed = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_';
        if raw.is_empty() || raw.len() > MAX_LEN || !raw.chars().all(allowed) {
            return Err(DomainError(format!(
                "event type must be 1 to {MAX_LEN} characters of a-z, 0-9 and _"
            )));
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for EventType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_known_and_unknown_event_names() {
        assert!(EventType::parse("workflow_job").is_ok());
        assert!(EventType::parse("projects_v2_item").is_ok());
        assert!(EventType::parse("some_future_event").is_ok());
    }

    #[test]
    fn rejects_malformed_names() {
        assert!(EventType::parse("").is_err());
        assert!(EventType::parse("Workflow_Job").is_err());
        assert!(EventType::parse("push; rm").is_err());
        assert!(EventType::parse(&"a".repeat(65)).is_err());
    }
}
