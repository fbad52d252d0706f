//! Webhook secrets and the API token: a type whose `Debug` never shows them, and the
//! data directory that holds the generated secret (private to its owner).

use std::fs;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use super::ConfigError;

/// File in the data directory that holds the generated webhook secret.
pub const SECRET_FILE: &str = "webhook-secret";
/// File in the data directory that holds the generated API token.
pub const TOKEN_FILE: &str = "api-token";

/// A secret value (webhook secret or API token). Its `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// Where the webhook secrets came from, so startup can say so (without the value,
/// except for the one time a secret is generated).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretSource {
    Configured,
    LoadedFromFile(PathBuf),
    Generated(PathBuf),
}

pub(super) fn parse_secret_list(list: &str) -> Result<Vec<Secret>, ConfigError> {
    let secrets: Vec<Secret> = list
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(Secret::new)
        .collect();
    if secrets.is_empty() {
        return Err(ConfigError::new(
            "GITHUB_WEBHOOK_SECRET (--secret)",
            "is set but holds no secret",
        ));
    }
    Ok(secrets)
}

/// Creates the data directory for its owner only (0700, whatever the umask), and
/// takes group and other access away from an existing one: it holds the webhook
/// secret and every payload.
pub(super) fn prepare_data_dir(dir: &Path) -> Result<(), ConfigError> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    let setting = "HOOKVAULT_DATA_DIR (--data-dir)";
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| ConfigError::new(setting, format!("cannot create {}: {e}", dir.display())))?;
    let mode = fs::metadata(dir)
        .map_err(|e| ConfigError::new(setting, format!("cannot read {}: {e}", dir.display())))?
        .permissions()
        .mode();
    if mode & 0o077 != 0 {
        fs::set_permissions(dir, fs::Permissions::from_mode(mode & 0o700)).map_err(|e| {
            ConfigError::new(
                setting,
                format!("cannot make {} private (mode 0700): {e}", dir.display()),
            )
        })?;
    }
    let probe = dir.join(".write-test");
    fs::write(&probe, b"ok")
        .and_then(|()| fs::remove_file(&probe))
        .map_err(|e| ConfigError::new(setting, format!("{} is not writable: {e}", dir.display())))
}

pub(super) fn load_or_generate_secret(
    dir: &Path,
) -> Result<(Vec<Secret>, SecretSource), ConfigError> {
    let setting = "GITHUB_WEBHOOK_SECRET (--secret)";
    match load_or_generate(&dir.join(SECRET_FILE), setting)? {
        (value, SecretSource::Generated(path)) => {
            Ok((vec![Secret::new(value)], SecretSource::Generated(path)))
        }
        (saved, source) => Ok((parse_secret_list(&saved)?, source)),
    }
}

/// The API token kept in the data directory (`api-token`): generated on the first
/// start without `HOOKVAULT_API_TOKEN`, like the webhook secret, so other machines
/// can be let in; clients on this machine keep working without it.
pub(super) fn load_or_generate_token(dir: &Path) -> Result<(Secret, SecretSource), ConfigError> {
    let setting = "HOOKVAULT_API_TOKEN (--api-token)";
    let (value, source) = load_or_generate(&dir.join(TOKEN_FILE), setting)?;
    let value = value.trim();
    if value.len() < 16 {
        return Err(ConfigError::new(
            setting,
            format!(
                "the token saved in {} must be at least 16 characters",
                dir.join(TOKEN_FILE).display()
            ),
        ));
    }
    Ok((Secret::new(value), source))
}

/// The file's content, or 32 random bytes in hex written to a new file that only its
/// owner may read (0600).
fn load_or_generate(
    path: &Path,
    setting: &'static str,
) -> Result<(String, SecretSource), ConfigError> {
    match fs::read_to_string(path) {
        Ok(saved) => Ok((saved, SecretSource::LoadedFromFile(path.to_owned()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let value = hex::encode(rand::random::<[u8; 32]>());
            let mut file = fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(path)
                .map_err(|e| {
                    ConfigError::new(setting, format!("cannot save {}: {e}", path.display()))
                })?;
            file.write_all(value.as_bytes())
                .and_then(|()| file.sync_all())
                .map_err(|e| {
                    ConfigError::new(setting, format!("cannot save {}: {e}", path.display()))
                })?;
            Ok((value, SecretSource::Generated(path.to_owned())))
        }
        Err(e) => Err(ConfigError::new(
            setting,
            format!("cannot read {}: {e}", path.display()),
        )),
    }
}
