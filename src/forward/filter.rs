//! Which deliveries a target takes: its spec's event, action, repository and owner
//! lists, compiled once (globs parsed) and matched against each stored record.

use super::target::TargetSpec;
use crate::store::EventRecord;

/// Which deliveries a target takes, compiled from its spec.
#[derive(Debug)]
pub struct Filter {
    events: Vec<String>,
    actions: Vec<String>,
    repositories: Vec<glob::Pattern>,
    organizations: Vec<glob::Pattern>,
}

const GLOB: glob::MatchOptions = glob::MatchOptions {
    case_sensitive: false,
    // `octo-org/*` is every repository of octo-org, never `octo-org/a/b`.
    require_literal_separator: true,
    require_literal_leading_dot: false,
};

impl Filter {
    /// For a spec that passed [`TargetSpec::check`].
    pub fn new(spec: &TargetSpec) -> Self {
        let globs = |list: &[String]| {
            list.iter()
                .filter_map(|g| glob::Pattern::new(g).ok())
                .collect()
        };
        Self {
            events: spec.events.clone(),
            actions: spec.actions.clone(),
            repositories: globs(&spec.repositories),
            organizations: globs(&spec.organizations),
        }
    }

    pub fn matches(&self, record: &EventRecord) -> bool {
        let listed = |list: &[String], value: Option<&str>| {
            list.is_empty() || value.is_some_and(|v| list.iter().any(|l| l == v))
        };
        let globbed = |list: &[glob::Pattern], value: Option<&str>| {
            list.is_empty() || value.is_some_and(|v| list.iter().any(|g| g.matches_with(v, GLOB)))
        };
        let owner = record.origin.organization.as_deref().or_else(|| {
            record
                .origin
                .repository
                .as_deref()
                .and_then(|r| r.split('/').next())
        });
        listed(&self.events, Some(&record.origin.event))
            && listed(&self.actions, record.origin.action.as_deref())
            && globbed(&self.repositories, record.origin.repository.as_deref())
            && globbed(&self.organizations, owner)
    }
}
