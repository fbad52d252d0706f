//! A forwarding target as users describe it (API body, `HOOKVAULT_FORWARD`): where,
//! which deliveries, and how hard to try. Checked once, here; the worker only reads it.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::address;

/// Longest target name: it is a path segment and a metrics label.
const MAX_NAME: usize = 64;
/// Filter entries per list at most.
const MAX_FILTERS: usize = 100;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TargetSpec {
    /// Letters, digits, `.`, `_` and `-`; starts with a letter or digit.
    #[schema(example = "jenkins", pattern = "^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")]
    pub name: String,
    /// `http` or `https`.
    #[schema(example = "http://10.0.0.12:8080/github-webhook/")]
    pub url: String,
    /// Event types to send (`X-GitHub-Event`); empty: every type.
    #[serde(default)]
    pub events: Vec<String>,
    /// Actions to send (`push` and others without one never match a non-empty list).
    #[serde(default)]
    pub actions: Vec<String>,
    /// `owner/name` globs (`*`, `?`, `[…]`; case-insensitive); empty: every repository.
    #[serde(default)]
    #[schema(example = json!(["octo-org/*"]))]
    pub repositories: Vec<String>,
    /// Organization (or owner) globs; empty: all.
    #[serde(default)]
    pub organizations: Vec<String>,
    /// The target's own webhook secret: the signatures are computed again with it.
    /// Without one GitHub's signatures are passed through. Never returned.
    #[serde(default)]
    pub secret: Option<String>,
    /// Milliseconds one attempt may take, answer included.
    #[serde(default = "defaults::timeout_ms")]
    #[schema(minimum = 100, maximum = 300000, default = 10000)]
    pub timeout_ms: u64,
    /// Deliveries in flight to the target at once.
    #[serde(default = "defaults::concurrency")]
    #[schema(minimum = 1, maximum = 64, default = 4)]
    pub concurrency: u32,
    /// Send each repository's deliveries one at a time, in the order they arrived.
    #[serde(default)]
    pub ordered: bool,
    /// Attempts before a delivery is marked failed for this target (attempts made
    /// while the circuit is open, probes, do not count).
    #[serde(default = "defaults::max_attempts")]
    #[schema(minimum = 1, maximum = 100, default = 8)]
    pub max_attempts: u32,
    /// Pause after the first failed attempt; each further one doubles, with jitter.
    #[serde(default = "defaults::backoff_ms")]
    #[schema(minimum = 10, maximum = 3600000, default = 1000)]
    pub backoff_ms: u64,
    /// Longest pause between attempts, and between probes of an open circuit
    /// (probes at most every 30 s).
    #[serde(default = "defaults::max_backoff_ms")]
    #[schema(minimum = 10, maximum = 3600000, default = 300000)]
    pub max_backoff_ms: u64,
    /// Failed attempts in a row (any deliveries) that open the circuit.
    #[serde(default = "defaults::circuit_threshold")]
    #[schema(minimum = 1, maximum = 1000, default = 5)]
    pub circuit_threshold: u32,
    /// Follow redirects (up to 5; each hop is checked like the URL). Off: a 3xx is a
    /// failed attempt.
    #[serde(default)]
    pub follow_redirects: bool,
    /// Allow link-local and cloud metadata addresses (169.254.0.0/16, fe80::/10,
    /// fd00:ec2::254, …), refused by default.
    #[serde(default)]
    pub allow_link_local: bool,
    /// Only when creating: `now` (default: deliveries stored from now on),
    /// `beginning` (every stored delivery), or a seq (the deliveries after it).
    #[serde(default)]
    #[schema(schema_with = start_schema)]
    pub start: Option<Start>,
}

/// A target's settings as the API shows them: its spec without the secret.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SpecView {
    pub name: String,
    pub url: String,
    pub events: Vec<String>,
    pub actions: Vec<String>,
    pub repositories: Vec<String>,
    pub organizations: Vec<String>,
    pub timeout_ms: u64,
    pub concurrency: u32,
    pub ordered: bool,
    pub max_attempts: u32,
    pub backoff_ms: u64,
    pub max_backoff_ms: u64,
    pub circuit_threshold: u32,
    pub follow_redirects: bool,
    pub allow_link_local: bool,
    /// Whether the target has a secret of its own (which is never shown).
    pub has_secret: bool,
}

impl From<&TargetSpec> for SpecView {
    fn from(spec: &TargetSpec) -> Self {
        Self {
            name: spec.name.clone(),
            url: spec.url.clone(),
            events: spec.events.clone(),
            actions: spec.actions.clone(),
            repositories: spec.repositories.clone(),
            organizations: spec.organizations.clone(),
            timeout_ms: spec.timeout_ms,
            concurrency: spec.concurrency,
            ordered: spec.ordered,
            max_attempts: spec.max_attempts,
            backoff_ms: spec.backoff_ms,
            max_backoff_ms: spec.max_backoff_ms,
            circuit_threshold: spec.circuit_threshold,
            follow_redirects: spec.follow_redirects,
            allow_link_local: spec.allow_link_local,
            has_secret: spec.secret.is_some(),
        }
    }
}

/// `"now"`, `"beginning"` or a seq.
fn start_schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
    use utoipa::openapi::schema::{ObjectBuilder, OneOfBuilder, Type};
    OneOfBuilder::new()
        .item(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .enum_values(Some(["now", "beginning"])),
        )
        .item(
            ObjectBuilder::new()
                .schema_type(Type::Integer)
                .minimum(Some(0)),
        )
        .into()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    Now,
    Beginning,
    After(u64),
}

impl Serialize for Start {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Start::Now => s.serialize_str("now"),
            Start::Beginning => s.serialize_str("beginning"),
            Start::After(seq) => s.serialize_u64(*seq),
        }
    }
}

impl<'de> Deserialize<'de> for Start {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Seq(u64),
            Word(String),
        }
        match Raw::deserialize(d)? {
            Raw::Seq(seq) => Ok(Start::After(seq)),
            Raw::Word(word) => match word.as_str() {
                "now" => Ok(Start::Now),
                "beginning" => Ok(Start::Beginning),
                other => Err(serde::de::Error::custom(format!(
                    "start: {other:?} is not \"now\", \"beginning\" or a seq"
                ))),
            },
        }
    }
}

mod defaults {
    pub fn timeout_ms() -> u64 {
        10_000
    }
    pub fn concurrency() -> u32 {
        4
    }
    pub fn max_attempts() -> u32 {
        8
    }
    pub fn backoff_ms() -> u64 {
        1_000
    }
    pub fn max_backoff_ms() -> u64 {
        300_000
    }
    pub fn circuit_threshold() -> u32 {
        5
    }
}

impl TargetSpec {
    /// A target for every event, with the defaults (`HOOKVAULT_FORWARD`).
    pub fn for_url(name: String, url: String) -> Self {
        Self {
            name,
            url,
            events: Vec::new(),
            actions: Vec::new(),
            repositories: Vec::new(),
            organizations: Vec::new(),
            secret: None,
            timeout_ms: defaults::timeout_ms(),
            concurrency: defaults::concurrency(),
            ordered: false,
            max_attempts: defaults::max_attempts(),
            backoff_ms: defaults::backoff_ms(),
            max_backoff_ms: defaults::max_backoff_ms(),
            circuit_threshold: defaults::circuit_threshold(),
            follow_redirects: false,
            allow_link_local: false,
            start: None,
        }
    }

    /// Checks every field; the message names the first one that is wrong.
    pub fn check(&self) -> Result<(), String> {
        check_name(&self.name)?;
        let url = reqwest::Url::parse(&self.url).map_err(|e| format!("url: {e}"))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(format!(
                "url: the scheme must be http or https, not {}",
                url.scheme()
            ));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err("url: credentials in the URL would be shown by the API; give the target a secret instead".into());
        }
        address::check_url(&url, self.allow_link_local)?;
        for (field, list) in [
            ("events", &self.events),
            ("actions", &self.actions),
            ("repositories", &self.repositories),
            ("organizations", &self.organizations),
        ] {
            if list.len() > MAX_FILTERS {
                return Err(format!("{field}: at most {MAX_FILTERS} entries"));
            }
            if let Some(bad) = list.iter().find(|v| v.trim().is_empty() || v.len() > 200) {
                return Err(format!(
                    "{field}: {bad:?} is empty or longer than 200 bytes"
                ));
            }
        }
        for glob in self.repositories.iter().chain(&self.organizations) {
            glob::Pattern::new(glob).map_err(|e| format!("{glob:?} is not a glob: {e}"))?;
        }
        if self.secret.as_ref().is_some_and(|s| s.is_empty()) {
            return Err("secret: empty (leave it out to pass GitHub's signatures through)".into());
        }
        let ranges: [(&str, u64, u64, u64); 6] = [
            ("timeoutMs", self.timeout_ms, 100, 300_000),
            ("concurrency", self.concurrency.into(), 1, 64),
            ("maxAttempts", self.max_attempts.into(), 1, 100),
            ("backoffMs", self.backoff_ms, 10, 3_600_000),
            ("maxBackoffMs", self.max_backoff_ms, 10, 3_600_000),
            ("circuitThreshold", self.circuit_threshold.into(), 1, 1000),
        ];
        for (field, value, min, max) in ranges {
            if !(min..=max).contains(&value) {
                return Err(format!("{field}: {value} is not between {min} and {max}"));
            }
        }
        if self.max_backoff_ms < self.backoff_ms {
            return Err("maxBackoffMs: smaller than backoffMs".into());
        }
        Ok(())
    }

    pub fn timeout(&self) -> Duration {
        Duration::from_millis(self.timeout_ms)
    }
}

pub fn check_name(name: &str) -> Result<(), String> {
    let mut chars = name.chars();
    let starts_well = chars.next().is_some_and(|c| c.is_ascii_alphanumeric());
    let rest_ok = chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if starts_well && rest_ok && name.len() <= MAX_NAME {
        Ok(())
    } else {
        Err(format!(
            "name: {name:?} must be 1 to {MAX_NAME} letters, digits, '.', '_' or '-', starting with a letter or digit"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::forward::filter::Filter;
    use crate::store::{EventRecord, Origin};

    fn spec(json: serde_json::Value) -> Result<TargetSpec, String> {
        let spec: TargetSpec = serde_json::from_value(json).map_err(|e| e.to_string())?;
        spec.check().map(|()| spec)
    }

    fn record(event: &str, action: Option<&str>, repository: Option<&str>) -> EventRecord {
        let origin = Origin {
            delivery_id: "d".into(),
            event: event.into(),
            action: action.map(Into::into),
            repository: repository.map(Into::into),
            organization: None,
            sender: None,
            installation_id: None,
            hook_id: None,
        };
        EventRecord::received(
            origin,
            0,
            crate::domain::PayloadEncoding::Json,
            0,
            None,
            false,
        )
    }

    #[test]
    fn defaults_fill_what_is_left_out() {
        let spec = spec(serde_json::json!({"name": "ci", "url": "http://10.0.0.2/hook"})).unwrap();
        assert_eq!(
            spec,
            TargetSpec::for_url("ci".into(), "http://10.0.0.2/hook".into())
        );
    }

    #[test]
    fn refuses_what_it_cannot_use() {
        for (json, problem) in [
            (
                serde_json::json!({"name": "-x", "url": "http://a/"}),
                "name",
            ),
            (
                serde_json::json!({"name": "a b", "url": "http://a/"}),
                "name",
            ),
            (
                serde_json::json!({"name": "x", "url": "ftp://a/"}),
                "scheme",
            ),
            (
                serde_json::json!({"name": "x", "url": "http://u:p@a/"}),
                "credentials",
            ),
            (
                serde_json::json!({"name": "x", "url": "http://169.254.169.254/"}),
                "link-local",
            ),
            (
                serde_json::json!({"name": "x", "url": "http://[fd00:ec2::254]/"}),
                "metadata",
            ),
            (
                serde_json::json!({"name": "x", "url": "http://a/", "concurrency": 0}),
                "concurrency",
            ),
            (
                serde_json::json!({"name": "x", "url": "http://a/", "repositories": ["a/[b"]}),
                "glob",
            ),
            (
                serde_json::json!({"name": "x", "url": "http://a/", "secret": ""}),
                "secret",
            ),
            (
                serde_json::json!({"name": "x", "url": "http://a/", "start": "later"}),
                "start",
            ),
            (
                serde_json::json!({"name": "x", "url": "http://a/", "colour": "red"}),
                "unknown field",
            ),
            (
                serde_json::json!({"name": "x", "url": "http://a/", "backoffMs": 500, "maxBackoffMs": 100}),
                "maxBackoffMs",
            ),
        ] {
            let error = spec(json.clone()).expect_err(&json.to_string());
            assert!(error.contains(problem), "{json}: {error}");
        }
        let allowed = serde_json::json!({"name": "x", "url": "http://169.254.169.254/", "allowLinkLocal": true});
        assert!(spec(allowed).is_ok());
        // A homelab's own network is the point.
        for url in [
            "http://192.168.1.5:8080/",
            "http://127.0.0.1/",
            "http://[fd12::1]/",
            "https://jenkins.lan/",
        ] {
            assert!(
                spec(serde_json::json!({"name": "x", "url": url})).is_ok(),
                "{url}"
            );
        }
    }

    #[test]
    fn start_takes_now_beginning_or_a_seq() {
        for (value, start) in [
            (serde_json::json!("now"), Start::Now),
            (serde_json::json!("beginning"), Start::Beginning),
            (serde_json::json!(42), Start::After(42)),
        ] {
            let spec =
                spec(serde_json::json!({"name": "x", "url": "http://a/", "start": value})).unwrap();
            assert_eq!(spec.start, Some(start));
        }
    }

    #[test]
    fn secrets_are_never_shown() {
        let spec =
            spec(serde_json::json!({"name": "x", "url": "http://a/", "secret": "s3cr3t"})).unwrap();
        let shown = serde_json::to_value(SpecView::from(&spec)).unwrap();
        assert!(!shown.to_string().contains("s3cr3t"));
        assert_eq!(shown["hasSecret"], true);
    }

    #[test]
    fn filters_select_by_event_action_repository_and_owner() {
        let filter = |json: serde_json::Value| {
            let mut base = serde_json::json!({"name": "x", "url": "http://a/"});
            base.as_object_mut()
                .unwrap()
                .extend(json.as_object().unwrap().clone());
            Filter::new(&spec(base).unwrap())
        };
        let push = record("push", None, Some("Octo-Org/api"));
        let opened = record("pull_request", Some("opened"), Some("octo-org/web"));
        let ping = record("ping", None, None);
        let all = filter(serde_json::json!({}));
        assert!(all.matches(&push) && all.matches(&opened) && all.matches(&ping));
        let events = filter(serde_json::json!({"events": ["push"]}));
        assert!(events.matches(&push) && !events.matches(&opened));
        let actions = filter(serde_json::json!({"actions": ["opened"]}));
        assert!(actions.matches(&opened) && !actions.matches(&push));
        let repos = filter(serde_json::json!({"repositories": ["octo-org/a*"]}));
        assert!(repos.matches(&push) && !repos.matches(&opened) && !repos.matches(&ping));
        let owner = filter(serde_json::json!({"organizations": ["octo-*"]}));
        assert!(owner.matches(&push) && owner.matches(&opened) && !owner.matches(&ping));
        let slash = filter(serde_json::json!({"repositories": ["octo-*"]}));
        assert!(!slash.matches(&push), "a * does not cross the /");
    }
}
