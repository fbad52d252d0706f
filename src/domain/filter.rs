//! Ingest filters: which authentic deliveries are kept. Each rule is one `field:glob`
//! item (`event:status`, `repository:octo-org/sandbox-*`); a delivery is kept when
//! it matches at least one allow rule (or there are none) and no deny rule.

use std::sync::{Arc, RwLock};

use serde::{Deserialize, Serialize};

use super::{DomainError, EventFields};

/// Rules per list at most, so a filter stays cheap to run on every delivery.
pub const MAX_RULES: usize = 100;
/// Longest glob in a rule.
const MAX_GLOB: usize = 200;

/// The counter label (and ignored-log code) of a delivery that no allow rule matched.
pub const NOT_ALLOWED: &str = "not allowed";

const GLOB: glob::MatchOptions = glob::MatchOptions {
    case_sensitive: false,
    // `octo-org/*` is every repository of octo-org, never `octo-org/a/b`.
    require_literal_separator: true,
    require_literal_leading_dot: false,
};

/// What a rule looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    Event,
    Action,
    Repository,
    Organization,
}

impl Field {
    fn parse(name: &str) -> Option<Self> {
        match name.trim().to_ascii_lowercase().as_str() {
            "event" => Some(Self::Event),
            "action" => Some(Self::Action),
            "repository" => Some(Self::Repository),
            "organization" => Some(Self::Organization),
            _ => None,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::Event => "event",
            Self::Action => "action",
            Self::Repository => "repository",
            Self::Organization => "organization",
        }
    }
}

/// One `field:glob` item.
#[derive(Debug, Clone)]
pub struct Rule {
    field: Field,
    glob: glob::Pattern,
}

impl Rule {
    pub fn parse(item: &str) -> Result<Self, DomainError> {
        let (field, glob) = item.trim().split_once(':').ok_or_else(|| {
            DomainError(format!(
                "{item:?} is not field:glob (fields: event, action, repository, organization)"
            ))
        })?;
        let field = Field::parse(field).ok_or_else(|| {
            DomainError(format!(
                "{item:?}: unknown field {field:?} (fields: event, action, repository, organization)"
            ))
        })?;
        let glob = glob.trim();
        if glob.is_empty() || glob.len() > MAX_GLOB {
            return Err(DomainError(format!(
                "{item:?}: the glob is empty or longer than {MAX_GLOB} bytes"
            )));
        }
        let glob = glob::Pattern::new(glob)
            .map_err(|e| DomainError(format!("{item:?}: {glob:?} is not a glob: {e}")))?;
        Ok(Self { field, glob })
    }

    fn matches(&self, event: &str, fields: &EventFields) -> bool {
        let value = match self.field {
            Field::Event => Some(event),
            Field::Action => fields.action.as_deref(),
            Field::Repository => fields.repository.as_deref(),
            Field::Organization => fields.organization.as_deref(),
        };
        value.is_some_and(|v| self.glob.matches_with(v, GLOB))
    }
}

impl std::fmt::Display for Rule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.field.name(), self.glob.as_str())
    }
}

/// The allow and deny rules, as the settings and the API write them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FilterSpec {
    #[serde(default)]
    pub allow: Vec<String>,
    #[serde(default)]
    pub deny: Vec<String>,
}

/// Compiled allow and deny rules. The default keeps everything.
#[derive(Debug, Clone, Default)]
pub struct IngestFilter {
    allow: Vec<Rule>,
    deny: Vec<Rule>,
}

impl IngestFilter {
    /// From comma-separated lists, as `HOOKVAULT_INGEST_ALLOW` and `_DENY` give them.
    pub fn from_lists(allow: &str, deny: &str) -> Result<Self, DomainError> {
        let items = |list: &str| -> Vec<String> {
            list.split(',')
                .map(str::trim)
                .filter(|i| !i.is_empty())
                .map(str::to_owned)
                .collect()
        };
        Self::from_spec(&FilterSpec {
            allow: items(allow),
            deny: items(deny),
        })
    }

    pub fn from_spec(spec: &FilterSpec) -> Result<Self, DomainError> {
        let rules = |list: &[String], name: &str| -> Result<Vec<Rule>, DomainError> {
            if list.len() > MAX_RULES {
                return Err(DomainError(format!("{name}: at most {MAX_RULES} rules")));
            }
            list.iter()
                .map(|item| Rule::parse(item).map_err(|e| DomainError(format!("{name}: {e}"))))
                .collect()
        };
        Ok(Self {
            allow: rules(&spec.allow, "allow")?,
            deny: rules(&spec.deny, "deny")?,
        })
    }

    /// The rules in their canonical spelling.
    pub fn spec(&self) -> FilterSpec {
        let text = |rules: &[Rule]| rules.iter().map(Rule::to_string).collect();
        FilterSpec {
            allow: text(&self.allow),
            deny: text(&self.deny),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.allow.is_empty() && self.deny.is_empty()
    }

    /// `None` to keep the delivery; else why it is ignored: the deny rule it matched
    /// (`deny event:status`) or [`NOT_ALLOWED`]. `ping`, GitHub's check that a hook
    /// works, is kept unless a deny rule names it.
    pub fn ignores(&self, event: &str, fields: &EventFields) -> Option<String> {
        if let Some(rule) = self.deny.iter().find(|r| r.matches(event, fields)) {
            return Some(format!("deny {rule}"));
        }
        let allowed = self.allow.is_empty()
            || event == "ping"
            || self.allow.iter().any(|r| r.matches(event, fields));
        (!allowed).then(|| NOT_ALLOWED.to_owned())
    }
}

/// The filter a running instance applies, replaceable while it runs (`PUT
/// /api/filters`). Ingest takes the current one with a read lock held for a clone.
#[derive(Debug, Default)]
pub struct SharedFilter(RwLock<Arc<IngestFilter>>);

impl SharedFilter {
    pub fn new(filter: IngestFilter) -> Self {
        Self(RwLock::new(Arc::new(filter)))
    }

    pub fn current(&self) -> Arc<IngestFilter> {
        self.0.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub fn replace(&self, filter: IngestFilter) {
        *self.0.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(filter);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(action: Option<&str>, repository: Option<&str>) -> EventFields {
        EventFields {
            action: action.map(Into::into),
            repository: repository.map(Into::into),
            organization: repository.and_then(|r| r.split('/').next()).map(Into::into),
            ..EventFields::default()
        }
    }

    #[test]
    fn deny_rules_name_the_rule_that_matched() {
        let filter = IngestFilter::from_lists(
            "",
            "event:status, event:check_suite,repository:octo-org/sandbox-*",
        )
        .unwrap();
        let none = fields(None, Some("octo-org/app"));
        assert_eq!(
            filter.ignores("status", &none).as_deref(),
            Some("deny event:status")
        );
        assert_eq!(filter.ignores("push", &none), None);
        let sandbox = fields(None, Some("Octo-Org/sandbox-1"));
        assert_eq!(
            filter.ignores("push", &sandbox).as_deref(),
            Some("deny repository:octo-org/sandbox-*")
        );
        // `*` stays within one path segment.
        let deeper = fields(None, Some("octo-org/sandbox-1/x"));
        assert_eq!(filter.ignores("push", &deeper), None);
    }

    #[test]
    fn allow_rules_keep_only_what_they_match_and_deny_wins() {
        let filter =
            IngestFilter::from_lists("organization:octo-org,event:workflow_*", "action:queued")
                .unwrap();
        assert_eq!(
            filter.ignores("push", &fields(None, Some("octo-org/a"))),
            None
        );
        assert_eq!(
            filter.ignores("workflow_job", &fields(None, Some("x/y"))),
            None
        );
        assert_eq!(
            filter
                .ignores("push", &fields(None, Some("x/y")))
                .as_deref(),
            Some(NOT_ALLOWED)
        );
        assert_eq!(
            filter
                .ignores("workflow_job", &fields(Some("queued"), Some("octo-org/a")))
                .as_deref(),
            Some("deny action:queued")
        );
        // A rule on a field the payload lacks does not match.
        assert_eq!(
            filter.ignores("meta", &fields(None, None)).as_deref(),
            Some(NOT_ALLOWED)
        );
        assert_eq!(filter.ignores("ping", &fields(None, None)), None);
    }

    #[test]
    fn bad_rules_are_refused_with_the_item_named() {
        for (allow, deny, expected) in [
            ("status", "", "not field:glob"),
            ("", "sender:mona", "unknown field"),
            ("", "event:", "empty"),
            ("repository:[oops", "", "not a glob"),
        ] {
            let error = IngestFilter::from_lists(allow, deny).unwrap_err().0;
            assert!(error.contains(expected), "{error}");
        }
        let spec = IngestFilter::from_lists(" Event:status ,", "")
            .unwrap()
            .spec();
        assert_eq!(spec.allow, vec!["event:status"]);
        assert!(IngestFilter::from_lists("", "").unwrap().is_empty());
    }
}
