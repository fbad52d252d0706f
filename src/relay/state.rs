//! The relay's state file: the server it follows and the last sequence id it
//! delivered, written atomically (temp file, fsync, rename, fsync of the directory)
//! after each delivery the local URL accepted, so a restart resumes right after it.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The file name used when there is no user state directory.
pub const FALLBACK_FILE: &str = "hookvault-relay.state";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct State {
    /// The `--from` URL the sequence ids belong to: another server's ids mean
    /// nothing here.
    pub from: String,
    /// Every event up to this sequence id has been delivered (or was there before
    /// the relay first started).
    pub seq: u64,
    /// The delivery id of `seq`, when it was delivered by the relay; for people
    /// reading the file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivery_id: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("cannot read the state file {}: {source}", path.display())]
    Read { path: PathBuf, source: io::Error },
    #[error("the state file {} is not a relay state ({source}); move it away to start afresh", path.display())]
    Corrupt {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("cannot write the state file {}: {source}", path.display())]
    Write { path: PathBuf, source: io::Error },
}

/// The state in `path`, or `None` when there is no such file yet.
pub fn load(path: &Path) -> Result<Option<State>, StateError> {
    let bytes = match fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(StateError::Read {
                path: path.to_owned(),
                source,
            });
        }
    };
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|source| StateError::Corrupt {
            path: path.to_owned(),
            source,
        })
}

/// Replaces the state in `path` so that a crash at any point leaves either the old
/// file or the new one, whole.
pub fn save(path: &Path, state: &State) -> Result<(), StateError> {
    write_atomically(
        path,
        &serde_json::to_vec(state).expect("a state serializes"),
    )
    .map_err(|source| StateError::Write {
        path: path.to_owned(),
        source,
    })
}

fn write_atomically(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    fs::create_dir_all(dir)?;
    let mut name = path.file_name().unwrap_or_default().to_owned();
    name.push(".tmp");
    let temp = dir.join(name);
    let mut file = File::create(&temp)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    drop(file);
    fs::rename(&temp, path)?;
    // The rename itself is durable once the directory is.
    File::open(dir)?.sync_all()
}

/// Where the state lives without `--state`: one file per (server, local URL) pair
/// in the user's state directory (`$XDG_STATE_HOME/hookvault/`, else
/// `~/.local/state/hookvault/`), so a relay started from any directory resumes, and
/// two relays of the same server to different local URLs each get every event.
/// Without either directory: [`FALLBACK_FILE`] in the working directory.
pub fn default_path(
    from: &str,
    to: &str,
    xdg_state_home: Option<&Path>,
    home: Option<&Path>,
) -> PathBuf {
    let dir = match (xdg_state_home, home) {
        (Some(state), _) if state.is_absolute() => state.join("hookvault"),
        (_, Some(home)) if home.is_absolute() => home.join(".local/state/hookvault"),
        _ => return PathBuf::from(FALLBACK_FILE),
    };
    let key = Sha256::digest(format!("{from}\n{to}").as_bytes());
    dir.join(format!("relay-{}.state", &hex::encode(key)[..16]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saves_and_loads_and_leaves_no_temp_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub").join("relay.state");
        assert_eq!(load(&path).unwrap(), None);
        let state = State {
            from: "http://127.0.0.1:3000".into(),
            seq: 41,
            delivery_id: Some("72d3162e-cc78-11e3-81ab-4c9367dc0958".into()),
        };
        save(&path, &state).unwrap();
        save(
            &path,
            &State {
                seq: 42,
                ..state.clone()
            },
        )
        .unwrap();
        assert_eq!(load(&path).unwrap().unwrap().seq, 42);
        let names: Vec<_> = fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec!["relay.state"]);
    }

    #[test]
    fn a_file_that_is_not_a_state_is_an_error_not_a_fresh_start() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("relay.state");
        fs::write(&path, b"seq=12").unwrap();
        let error = load(&path).unwrap_err();
        assert!(matches!(error, StateError::Corrupt { .. }), "{error}");
    }

    #[test]
    fn the_default_path_is_per_server_and_local_url() {
        let home = Path::new("/home/dev");
        let a = default_path(
            "https://hooks.example.net",
            "http://localhost:3000/a",
            None,
            Some(home),
        );
        let b = default_path(
            "https://hooks.example.net",
            "http://localhost:3000/b",
            None,
            Some(home),
        );
        assert!(a.starts_with("/home/dev/.local/state/hookvault/"), "{a:?}");
        assert_ne!(a, b);
        let xdg = default_path("x", "y", Some(Path::new("/state")), Some(home));
        assert!(xdg.starts_with("/state/hookvault/"), "{xdg:?}");
        assert_eq!(
            default_path("x", "y", None, None),
            PathBuf::from(FALLBACK_FILE)
        );
    }
}
