//! Subjects: `hookvault.events.<event>.<owner>.<repo>`, each token made safe, and
//! whether a stream's subject filters cover ours.

/// Every subject hookvault publishes to is under this.
pub const SUBJECTS: &str = "hookvault.events.>";

/// The subject of one event. `repository` is `owner/name`; events without one go
/// under `_._`.
pub fn subject(event: &str, repository: Option<&str>) -> String {
    let (owner, repo) = repository
        .and_then(|r| r.split_once('/'))
        .unwrap_or(("", ""));
    format!(
        "hookvault.events.{}.{}.{}",
        token(event),
        token(owner),
        token(repo)
    )
}

/// A subject token can hold neither `.` (the separator), `*` and `>` (wildcards) nor
/// whitespace; each of those, and control characters, becomes `_`. An empty token
/// is `_` (NATS refuses empty tokens). Repository names may hold dots
/// (`octo-org/octo.github.io` → `octo-org.octo_github_io`); owners and event types
/// never do.
pub fn token(raw: &str) -> String {
    if raw.is_empty() {
        return "_".into();
    }
    raw.chars()
        .map(|c| match c {
            '.' | '*' | '>' => '_',
            c if c.is_whitespace() || c.is_control() => '_',
            c => c,
        })
        .collect()
}

/// Whether a stream subject filter (`hookvault.>`, `hookvault.*.>`, `>`) takes every
/// subject under [`SUBJECTS`].
pub fn covers(filter: &str, subjects: &str) -> bool {
    let mut filter = filter.split('.');
    let mut ours = subjects.split('.');
    loop {
        match (filter.next(), ours.next()) {
            (Some(">"), Some(_)) => return true,
            (Some(">"), None) | (Some(_), None) | (None, Some(_)) => return false,
            (None, None) => return true,
            // Our `>` is only covered by a `>`.
            (Some(_), Some(">")) => return false,
            (Some("*"), Some(_)) => {}
            (Some(f), Some(o)) if f == o => {}
            (Some(_), Some(_)) => return false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects_name_event_owner_and_repository() {
        assert_eq!(
            subject("workflow_job", Some("octo-org/hello-world")),
            "hookvault.events.workflow_job.octo-org.hello-world"
        );
        assert_eq!(subject("ping", None), "hookvault.events.ping._._");
    }

    #[test]
    fn tokens_lose_separators_wildcards_and_whitespace() {
        assert_eq!(token("octo.github.io"), "octo_github_io");
        assert_eq!(token("a*b>c d\te\u{7}"), "a_b_c_d_e_");
        assert_eq!(token(""), "_");
        assert_eq!(token("ünïcode-ok_1"), "ünïcode-ok_1");
    }

    #[test]
    fn a_filter_covers_our_subjects_only_when_it_takes_all_of_them() {
        for filter in [
            ">",
            "hookvault.>",
            "hookvault.events.>",
            "hookvault.*.>",
            "*.events.>",
        ] {
            assert!(covers(filter, SUBJECTS), "{filter}");
        }
        for filter in [
            "hookvault.events.*",
            "hookvault.events.push.>",
            "hookvault.events",
            "other.>",
            "hookvault.*",
        ] {
            assert!(!covers(filter, SUBJECTS), "{filter}");
        }
    }
}
