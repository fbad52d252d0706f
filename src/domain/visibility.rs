//! What a caller may see of the stored events: everything, or only the events of
//! some organizations and repositories (a token created with `--org`/`--repo`).
//! This is the one place the rule lives; every endpoint, the search filter and the
//! Socket.IO namespaces ask [`Visibility`].
//!
//! The rule, case-insensitive as GitHub's names are:
//! - an event with a repository belongs to that repository and to its owner: it is
//!   visible when the repository is one of the listed repositories or its owner one
//!   of the listed organizations;
//! - an event without a repository (an organization hook's `ping`, `organization`,
//!   `membership`…) belongs to its organization (`organization.login`): visible to
//!   a token listing that organization, not to one listing only repositories;
//! - an event with neither (an `installation` of a user account, a GitHub App's
//!   `ping`) belongs to no one: visible only to callers who see everything.

use serde::Serialize;

/// Everything, or the listed organizations and repositories (lowercase).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Visibility {
    /// The API token, an unlimited scoped token, or a local caller without a token.
    #[default]
    All,
    /// A limited token: these organizations' and these repositories' events only.
    Limited {
        organizations: Vec<String>,
        repositories: Vec<String>,
    },
}

impl Visibility {
    /// The visibility of a token with these limits: everything when it has none.
    pub fn of_limits(organizations: &[String], repositories: &[String]) -> Self {
        if organizations.is_empty() && repositories.is_empty() {
            return Self::All;
        }
        let lower = |names: &[String]| -> Vec<String> {
            let mut names: Vec<String> = names.iter().map(|n| n.to_ascii_lowercase()).collect();
            names.sort();
            names.dedup();
            names
        };
        Self::Limited {
            organizations: lower(organizations),
            repositories: lower(repositories),
        }
    }

    /// Sees nothing at all (what a socket whose admission is unknown gets).
    pub fn nothing() -> Self {
        Self::Limited {
            organizations: Vec::new(),
            repositories: Vec::new(),
        }
    }

    pub fn is_all(&self) -> bool {
        matches!(self, Self::All)
    }

    /// Whether an event of this repository (`owner/name`) is visible.
    pub fn sees_repository(&self, full_name: &str) -> bool {
        match self {
            Self::All => true,
            Self::Limited {
                organizations,
                repositories,
            } => {
                let owner = full_name.split_once('/').map_or("", |(owner, _)| owner);
                contains(organizations, owner) || contains(repositories, full_name)
            }
        }
    }

    /// Whether an event of this repository, or else of this organization, is
    /// visible (the rule of the module's documentation).
    pub fn sees(&self, repository: Option<&str>, organization: Option<&str>) -> bool {
        match (self, repository, organization) {
            (Self::All, _, _) => true,
            (_, Some(repository), _) => self.sees_repository(repository),
            (Self::Limited { organizations, .. }, None, Some(org)) => contains(organizations, org),
            (Self::Limited { .. }, None, None) => false,
        }
    }

    /// The organizations and repositories, for filters that match names (`None`
    /// for [`Visibility::All`]).
    pub fn limits(&self) -> Option<(&[String], &[String])> {
        match self {
            Self::All => None,
            Self::Limited {
                organizations,
                repositories,
            } => Some((organizations, repositories)),
        }
    }
}

fn contains(lowercase: &[String], name: &str) -> bool {
    lowercase.iter().any(|n| n.eq_ignore_ascii_case(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limited(orgs: &[&str], repos: &[&str]) -> Visibility {
        let owned = |names: &[&str]| names.iter().map(|n| n.to_string()).collect::<Vec<_>>();
        Visibility::of_limits(&owned(orgs), &owned(repos))
    }

    #[test]
    fn no_limits_see_everything() {
        assert_eq!(limited(&[], &[]), Visibility::All);
        assert!(Visibility::All.sees(None, None));
        assert!(Visibility::All.sees(Some("a/b"), None));
    }

    #[test]
    fn an_organization_sees_its_repositories_and_its_own_events_whatever_the_case() {
        let octo = limited(&["Octo-Org"], &[]);
        assert!(octo.sees(Some("octo-org/app"), Some("octo-org")));
        assert!(octo.sees(Some("OCTO-ORG/App"), None));
        assert!(octo.sees(None, Some("octo-org")));
        assert!(!octo.sees(Some("other-org/app"), Some("other-org")));
        assert!(!octo.sees(Some("octo-org-2/app"), None));
        assert!(!octo.sees(Some("other/octo-org"), None));
        assert!(!octo.sees(None, Some("other-org")));
        assert!(!octo.sees(None, None));
        // A repository's owner decides, not a stray organization field.
        assert!(!octo.sees(Some("other-org/app"), Some("octo-org")));
    }

    #[test]
    fn a_repository_sees_only_itself() {
        let app = limited(&[], &["octo-org/App"]);
        assert!(app.sees(Some("octo-org/app"), Some("octo-org")));
        assert!(!app.sees(Some("octo-org/other"), Some("octo-org")));
        assert!(!app.sees(None, Some("octo-org")));
        assert!(!Visibility::nothing().sees(Some("octo-org/app"), Some("octo-org")));
    }
}
