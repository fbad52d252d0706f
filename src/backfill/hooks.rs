//! Which GitHub hooks to reconcile: named in `HOOKVAULT_BACKFILL_HOOKS`
//! (`repo:OWNER/NAME:ID`, `org:NAME:ID`, `app`) or found in the headers GitHub sends
//! with every delivery (`X-GitHub-Hook-ID`, `X-GitHub-Hook-Installation-Target-Type`),
//! and where each one's deliveries live in the REST API.

use std::collections::BTreeSet;

pub use crate::domain::HookRef;
use crate::store::StoredHeaders;

/// The hook a stored delivery came through, from its headers. GitHub names the
/// target's kind (`repository`, `organization`, `integration`) and id; the
/// repository's and organization's names come from the payload's fields.
pub fn sighted(
    repository: Option<&str>,
    organization: Option<&str>,
    headers: &[(String, String)],
) -> Option<HookRef> {
    let header = |name: &str| {
        headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.trim())
    };
    let kind = header("x-github-hook-installation-target-type")?;
    if kind == "integration" {
        return Some(HookRef::App);
    }
    let id = header("x-github-hook-id")?.parse().ok()?;
    match kind {
        "repository" => Some(HookRef::Repo {
            repository: repository?.to_owned(),
            id,
        }),
        "organization" => Some(HookRef::Org {
            org: organization?.to_owned(),
            id,
        }),
        // Business, Marketplace and Sponsors hooks have no deliveries API.
        _ => None,
    }
}

/// The distinct hooks of these stored deliveries, in a stable order.
pub fn discover(stored: &[StoredHeaders]) -> Vec<HookRef> {
    let found: BTreeSet<HookRef> = stored
        .iter()
        .filter_map(|s| {
            sighted(
                s.repository.as_deref(),
                s.organization.as_deref(),
                &s.headers,
            )
        })
        .collect();
    found.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_headers_name_their_hook() {
        let stored = |kind: &str| {
            let headers = vec![
                ("X-GitHub-Hook-ID".to_owned(), "42".to_owned()),
                (
                    "X-GitHub-Hook-Installation-Target-Type".to_owned(),
                    kind.to_owned(),
                ),
            ];
            StoredHeaders {
                repository: Some("octo-org/hello".to_owned()),
                organization: Some("octo-org".to_owned()),
                headers,
            }
        };
        let found = discover(&[
            stored("repository"),
            stored("repository"),
            stored("organization"),
            stored("integration"),
            stored("sponsors_listing"),
            StoredHeaders {
                repository: Some("octo-org/hello".to_owned()),
                ..StoredHeaders::default()
            },
        ]);
        assert_eq!(
            found.iter().map(ToString::to_string).collect::<Vec<_>>(),
            ["repo:octo-org/hello:42", "org:octo-org:42", "app"]
        );
    }
}
