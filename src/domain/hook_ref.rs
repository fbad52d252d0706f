//! A GitHub webhook named by where it is configured: `repo:OWNER/NAME:ID`,
//! `org:NAME:ID` or `app` (the settings' form, and how it prints).

use std::fmt;

/// One webhook whose delivery log GitHub keeps.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum HookRef {
    /// A repository's hook: `owner/name` and the hook id.
    Repo { repository: String, id: u64 },
    /// An organization's hook.
    Org { org: String, id: u64 },
    /// The GitHub App's hook (the app from the settings; listed with a JWT).
    App,
}

impl HookRef {
    /// One item of `HOOKVAULT_BACKFILL_HOOKS`.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let raw = raw.trim();
        if raw == "app" {
            return Ok(Self::App);
        }
        let example = "repo:OWNER/NAME:ID, org:NAME:ID or app";
        let (kind, rest) = raw
            .split_once(':')
            .ok_or_else(|| format!("{raw:?} is not {example}"))?;
        let (name, id) = rest.rsplit_once(':').ok_or_else(|| {
            format!("{raw:?} has no hook id (the number in the hook's settings URL)")
        })?;
        let id: u64 = id
            .trim()
            .parse()
            .map_err(|_| format!("{raw:?}: {id:?} is not a hook id"))?;
        let plain = |s: &str| {
            !s.is_empty()
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        };
        match kind.trim() {
            "repo" => match name.trim().split_once('/') {
                Some((owner, repo)) if plain(owner) && plain(repo) => Ok(Self::Repo {
                    repository: name.trim().to_owned(),
                    id,
                }),
                _ => Err(format!("{raw:?}: {name:?} is not OWNER/NAME")),
            },
            "org" if plain(name.trim()) => Ok(Self::Org {
                org: name.trim().to_owned(),
                id,
            }),
            "org" => Err(format!("{raw:?}: {name:?} is not an organization name")),
            _ => Err(format!("{raw:?} is not {example}")),
        }
    }

    /// A comma-separated list; at least one hook.
    pub fn parse_list(raw: &str) -> Result<Vec<Self>, String> {
        let hooks = raw
            .split(',')
            .filter(|s| !s.trim().is_empty())
            .map(Self::parse)
            .collect::<Result<Vec<_>, _>>()?;
        if hooks.is_empty() {
            return Err("is set but names no hook".into());
        }
        Ok(hooks)
    }

    /// The API path of the hook's delivery log (below the API URL).
    pub fn deliveries_path(&self) -> String {
        match self {
            Self::Repo { repository, id } => format!("/repos/{repository}/hooks/{id}/deliveries"),
            Self::Org { org, id } => format!("/orgs/{org}/hooks/{id}/deliveries"),
            Self::App => "/app/hook/deliveries".into(),
        }
    }

    /// The app's hook takes a JWT; the others a token.
    pub fn needs_app(&self) -> bool {
        matches!(self, Self::App)
    }
}

impl fmt::Display for HookRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Repo { repository, id } => write!(f, "repo:{repository}:{id}"),
            Self::Org { org, id } => write!(f, "org:{org}:{id}"),
            Self::App => f.write_str("app"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hooks_parse_from_the_settings_and_print_back() {
        let hooks =
            HookRef::parse_list(" repo:octo-org/hello.rs:12,org:octo-org:678, app").unwrap();
        assert_eq!(
            hooks.iter().map(ToString::to_string).collect::<Vec<_>>(),
            ["repo:octo-org/hello.rs:12", "org:octo-org:678", "app"]
        );
        assert_eq!(
            hooks[0].deliveries_path(),
            "/repos/octo-org/hello.rs/hooks/12/deliveries"
        );
        assert_eq!(
            hooks[1].deliveries_path(),
            "/orgs/octo-org/hooks/678/deliveries"
        );
        assert_eq!(hooks[2].deliveries_path(), "/app/hook/deliveries");
        for bad in [
            "repo:octo:12",
            "repo:a/b",
            "org:a/b:1",
            "team:x:1",
            "repo:a/b:x",
            "repo:../x/y:1",
        ] {
            assert!(HookRef::parse(bad).is_err(), "{bad}");
        }
        assert!(HookRef::parse_list(" , ").is_err());
    }
}
