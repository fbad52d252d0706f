//! The backfill settings (`HOOKVAULT_GITHUB_*`, `HOOKVAULT_BACKFILL_*`): how to reach
//! GitHub's API, with which credentials, which hooks to reconcile and how often.
//! Checked at startup like every other setting; the token and key are redacted.

use std::path::PathBuf;
use std::time::Duration;

use super::{ConfigError, Secret, Settings, parse_number};
use crate::domain::HookRef;

/// GitHub's default API.
pub const DEFAULT_API_URL: &str = "https://api.github.com";

const APP_ID_SETTING: &str = "HOOKVAULT_GITHUB_APP_ID (--github-app-id)";
const APP_KEY_SETTING: &str = "HOOKVAULT_GITHUB_APP_KEY (--github-app-key)";
const API_URL_SETTING: &str = "HOOKVAULT_GITHUB_API_URL (--github-api-url)";
const HOOKS_SETTING: &str = "HOOKVAULT_BACKFILL_HOOKS (--backfill-hooks)";
const INTERVAL_SETTING: &str = "HOOKVAULT_BACKFILL_INTERVAL (--backfill-interval)";

/// A GitHub App: its id and private key (PEM), to sign the JWT that
/// `/app/hook/deliveries` takes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GitHubApp {
    pub id: String,
    pub key: Secret,
}

/// Reconciling with GitHub's delivery log (docs/backfill.md).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackfillConfig {
    /// Without a trailing `/`; a GHES URL ends in `/api/v3`.
    pub api_url: String,
    /// For repository and organization hooks.
    pub token: Option<Secret>,
    /// For the app's hook.
    pub app: Option<GitHubApp>,
    /// `None`: the hooks named by the stored deliveries' headers.
    pub hooks: Option<Vec<HookRef>>,
    /// Between scheduled runs (the first runs at startup); `None`: on demand only.
    pub interval: Option<Duration>,
    /// Between two redelivery requests: GitHub asks for at least a second between
    /// requests that create something, or its secondary limit answers.
    pub pace: Duration,
    /// How long a run watches the store for the deliveries it asked for.
    pub confirm_wait: Duration,
}

impl Default for BackfillConfig {
    fn default() -> Self {
        Self {
            api_url: DEFAULT_API_URL.into(),
            token: None,
            app: None,
            hooks: None,
            interval: Some(Duration::from_secs(15 * 60)),
            pace: Duration::from_secs(1),
            confirm_wait: Duration::from_secs(60),
        }
    }
}

impl BackfillConfig {
    /// Backfill can run: there is a credential to call GitHub with.
    pub fn enabled(&self) -> bool {
        self.token.is_some() || self.app.is_some()
    }

    pub(super) fn parse(settings: &Settings) -> Result<Self, ConfigError> {
        let given = |v: &Option<String>| {
            v.as_deref()
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .map(str::to_owned)
        };
        let mut config = Self {
            token: given(&settings.github_token).map(Secret::new),
            ..Self::default()
        };
        config.app = match (given(&settings.github_app_id), &settings.github_app_key) {
            (None, None) => None,
            (Some(id), Some(path)) => Some(GitHubApp {
                id,
                key: read_key(path)?,
            }),
            (Some(_), None) => {
                return Err(ConfigError::new(
                    APP_KEY_SETTING,
                    "is needed with HOOKVAULT_GITHUB_APP_ID (the app's private key, a PEM file)",
                ));
            }
            (None, Some(_)) => {
                return Err(ConfigError::new(
                    APP_ID_SETTING,
                    "is needed with HOOKVAULT_GITHUB_APP_KEY (the app's id)",
                ));
            }
        };
        let url = settings.github_api_url.trim().trim_end_matches('/');
        match reqwest::Url::parse(url) {
            Ok(parsed) if matches!(parsed.scheme(), "http" | "https") && parsed.has_host() => {}
            _ => {
                return Err(ConfigError::new(
                    API_URL_SETTING,
                    format!("{url:?} is not an http(s) URL, e.g. {DEFAULT_API_URL}"),
                ));
            }
        }
        config.api_url = url.to_owned();
        config.hooks = match given(&settings.backfill_hooks) {
            None => None,
            Some(list) => Some(
                HookRef::parse_list(&list)
                    .map_err(|problem| ConfigError::new(HOOKS_SETTING, problem))?,
            ),
        };
        config.interval = match parse_number::<u64>(INTERVAL_SETTING, &settings.backfill_interval)?
        {
            0 => None,
            minutes => Some(Duration::from_secs(minutes * 60)),
        };
        Ok(config)
    }
}

fn read_key(path: &PathBuf) -> Result<Secret, ConfigError> {
    let pem = std::fs::read_to_string(path).map_err(|e| {
        ConfigError::new(
            APP_KEY_SETTING,
            format!("cannot read {}: {e}", path.display()),
        )
    })?;
    jsonwebtoken::EncodingKey::from_rsa_pem(pem.as_bytes()).map_err(|e| {
        ConfigError::new(
            APP_KEY_SETTING,
            format!(
                "{} is not an RSA private key in PEM ({e}); download one from the app's settings",
                path.display()
            ),
        )
    })?;
    Ok(Secret::new(pem))
}

#[cfg(test)]
mod tests {
    use super::super::Config;
    use super::super::tests::settings;
    use super::*;

    #[test]
    fn backfill_settings_are_checked_and_the_token_redacted() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().to_str().unwrap();
        let with = |extra: &[&str]| {
            let mut args = vec!["--data-dir", d, "--secret", "s"];
            args.extend_from_slice(extra);
            Config::from_cli(settings(&args))
        };
        let off = with(&[]).unwrap().backfill;
        assert!(!off.enabled());
        assert_eq!(off.api_url, DEFAULT_API_URL);
        assert_eq!(off.interval, Some(Duration::from_secs(900)));
        let on = with(&[
            "--github-token",
            "ghp_hunter2",
            "--github-api-url",
            "https://ghe.example.com/api/v3/",
            "--backfill-hooks",
            "repo:octo/hello:12, org:octo-org:678,app",
            "--backfill-interval",
            "0",
        ])
        .unwrap();
        assert!(on.backfill.enabled());
        assert_eq!(on.backfill.api_url, "https://ghe.example.com/api/v3");
        assert_eq!(on.backfill.hooks.as_ref().map(Vec::len), Some(3));
        assert_eq!(on.backfill.interval, None);
        assert!(!format!("{on:?}").contains("hunter2"));

        for (extra, setting) in [
            (
                &["--github-api-url", "ftp://x"][..],
                "HOOKVAULT_GITHUB_API_URL",
            ),
            (
                &["--backfill-hooks", "repo:nope"][..],
                "HOOKVAULT_BACKFILL_HOOKS",
            ),
            (
                &["--backfill-interval", "soon"][..],
                "HOOKVAULT_BACKFILL_INTERVAL",
            ),
            (&["--github-app-id", "1"][..], "HOOKVAULT_GITHUB_APP_KEY"),
            (
                &["--github-app-id", "1", "--github-app-key", "/etc/hostname"][..],
                "HOOKVAULT_GITHUB_APP_KEY",
            ),
        ] {
            let err = with(extra).unwrap_err();
            assert!(err.to_string().contains(setting), "{extra:?}: {err}");
        }
    }
}
