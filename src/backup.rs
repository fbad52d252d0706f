//! The online backup's archive: what `GET /api/backup` streams and `hookvault
//! restore` lays out. A zstd-compressed tar (so `tar --zstd -xf` reads it too) of
//!
//! - `hookvault.redb`: a consistent copy of the store ([`Store::snapshot_to`]),
//!   taken once every delivery acknowledged before the backup began is applied;
//! - `backup.json`, last: what the copy holds and its SHA-256. A download cut off
//!   anywhere lacks it or fails it, and restore refuses it.
//!
//! Left out on purpose: the search index (a fresh start rebuilds it from the store),
//! the acknowledgement log (the copy holds everything it had acknowledged), the
//! webhook secret and the API token (files and settings the user keeps).
//!
//! [`Store::snapshot_to`]: crate::store::Store::snapshot_to

use std::fs;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::domain::timestamp;
use crate::store::{self, SnapshotFacts};

/// The archive's last entry.
pub const MANIFEST: &str = "backup.json";
const FORMAT: &str = "hookvault-backup";
/// Archive layout version; restore refuses a newer one.
pub const VERSION: u32 = 1;
/// zstd level: the payloads inside are compressed already; the default level takes
/// what is left (page slack, indexes, records) at little CPU.
const LEVEL: i32 = 3;
/// Temporary copies made for a backup in the data directory begin with this; a
/// crash mid-backup can leave one, removed at the next start.
const TEMP_PREFIX: &str = ".backup-";

/// What an archive holds (`backup.json`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    pub format: String,
    pub version: u32,
    pub hookvault_version: String,
    pub schema_version: u64,
    pub created_at: String,
    pub events: u64,
    pub last_seq: u64,
    pub database_bytes: u64,
    pub database_sha256: String,
}

#[derive(Debug, thiserror::Error)]
pub enum RestoreError {
    #[error("{} is not empty: restore only into a new or empty directory", .0.display())]
    NotEmpty(PathBuf),
    #[error("not a complete hookvault backup: {0}")]
    Damaged(String),
    #[error(
        "the backup was made by a newer hookvault (archive version {found}, schema \
         {schema}); this build reads archive version {VERSION}, schema {known}"
    )]
    Newer { found: u32, schema: u64, known: u64 },
    #[error("{0}")]
    Io(#[from] io::Error),
}

/// A fresh path for a backup's temporary copy inside `data_dir`.
pub fn temp_path(data_dir: &Path) -> PathBuf {
    data_dir.join(format!(
        "{TEMP_PREFIX}{}.redb",
        hex::encode(rand::random::<[u8; 8]>())
    ))
}

/// Removes temporary copies a crash mid-backup left behind.
pub fn remove_leftovers(data_dir: &Path) {
    let Ok(entries) = fs::read_dir(data_dir) else {
        return;
    };
    for entry in entries.flatten() {
        if entry.file_name().to_string_lossy().starts_with(TEMP_PREFIX) {
            let _ = fs::remove_file(entry.path());
        }
    }
}

/// Writes the archive of the store copy `db` to `out`. Blocking.
pub fn write(db: &Path, facts: SnapshotFacts, out: impl Write) -> io::Result<Manifest> {
    let mut tar = tar::Builder::new(zstd::Encoder::new(out, LEVEL)?);
    let file = fs::File::open(db)?;
    let bytes = file.metadata()?.len();
    let mut hashed = Hashed::new(file);
    tar.append(&header(store::DB_FILE, bytes), &mut hashed)?;
    let manifest = Manifest {
        format: FORMAT.into(),
        version: VERSION,
        hookvault_version: env!("CARGO_PKG_VERSION").into(),
        schema_version: facts.schema_version,
        created_at: timestamp::to_rfc3339(timestamp::now_ms()),
        events: facts.events,
        last_seq: facts.last_seq,
        database_bytes: hashed.bytes,
        database_sha256: hex::encode(hashed.hasher.finalize()),
    };
    let json = serde_json::to_vec_pretty(&manifest).expect("a manifest serializes");
    tar.append(&header(MANIFEST, json.len() as u64), json.as_slice())?;
    tar.into_inner()?.finish()?.flush()?;
    Ok(manifest)
}

fn header(name: &str, size: u64) -> tar::Header {
    let mut header = tar::Header::new_gnu();
    header.set_path(name).expect("a short relative name");
    header.set_size(size);
    header.set_mode(0o600);
    header.set_mtime((timestamp::now_ms() / 1000).max(0) as u64);
    header.set_cksum();
    header
}

/// Lays out the archive read from `archive` in `dir` (created if missing, refused if
/// not empty), for a stopped instance to start from. On any error nothing is left
/// in `dir`. Blocking.
pub fn restore(archive: impl Read, dir: &Path) -> Result<Manifest, RestoreError> {
    if fs::read_dir(dir).is_ok_and(|mut entries| entries.next().is_some()) {
        return Err(RestoreError::NotEmpty(dir.to_owned()));
    }
    {
        use std::os::unix::fs::DirBuilderExt;
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)?;
    }
    let partial = dir.join(format!("{}.partial", store::DB_FILE));
    let result = unpack(archive, &partial).and_then(|manifest| {
        fs::rename(&partial, dir.join(store::DB_FILE))?;
        fs::File::open(dir)?.sync_all()?;
        Ok(manifest)
    });
    if result.is_err() {
        let _ = fs::remove_file(&partial);
    }
    result
}

/// Checks an archive whole without writing it anywhere. Blocking.
pub fn check(archive: impl Read) -> Result<Manifest, RestoreError> {
    read_archive(archive, io::sink())
}

fn unpack(archive: impl Read, to: &Path) -> Result<Manifest, RestoreError> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(to)?;
    let manifest = read_archive(archive, &mut file)?;
    file.sync_all()?;
    Ok(manifest)
}

/// Reads the database entry into `db` and checks it against the manifest.
fn read_archive(archive: impl Read, mut db: impl Write) -> Result<Manifest, RestoreError> {
    let damaged = |what: String| RestoreError::Damaged(what);
    let mut tar = tar::Archive::new(zstd::Decoder::new(archive)?);
    let (bytes, sha256, json) = {
        let mut entries = tar.entries().map_err(|e| damaged(e.to_string()))?;
        let mut hashed = Hashed::new(expect_entry(&mut entries, store::DB_FILE)?);
        io::copy(&mut hashed, &mut db).map_err(|e| damaged(e.to_string()))?;
        let (bytes, sha256) = (hashed.bytes, hex::encode(hashed.hasher.finalize()));
        let mut json = Vec::new();
        expect_entry(&mut entries, MANIFEST)?
            .read_to_end(&mut json)
            .map_err(|e| damaged(e.to_string()))?;
        if let Some(extra) = entries.next() {
            let what = extra.map_or_else(|e| e.to_string(), |e| format!("{:?}", e.path()));
            return Err(damaged(format!(
                "unexpected entry after {MANIFEST}: {what}"
            )));
        }
        (bytes, sha256, json)
    };
    // The compressed stream must end cleanly too (zstd reports a cut-off frame).
    io::copy(&mut tar.into_inner(), &mut io::sink())
        .map_err(|e| damaged(format!("the archive ends early: {e}")))?;
    let manifest: Manifest = serde_json::from_slice(&json)
        .map_err(|e| damaged(format!("{MANIFEST} does not parse: {e}")))?;
    if manifest.format != FORMAT {
        return Err(damaged(format!("{MANIFEST} is not a hookvault backup's")));
    }
    if manifest.version > VERSION || manifest.schema_version > store::SCHEMA_VERSION {
        return Err(RestoreError::Newer {
            found: manifest.version,
            schema: manifest.schema_version,
            known: store::SCHEMA_VERSION,
        });
    }
    if (bytes, sha256.as_str()) != (manifest.database_bytes, &manifest.database_sha256) {
        return Err(damaged(format!(
            "{} does not match its checksum in {MANIFEST}",
            store::DB_FILE
        )));
    }
    Ok(manifest)
}

/// The next entry, which must be `expected`.
fn expect_entry<'a, R: Read>(
    entries: &mut tar::Entries<'a, R>,
    expected: &str,
) -> Result<tar::Entry<'a, R>, RestoreError> {
    let damaged = |what: String| RestoreError::Damaged(what);
    let entry = entries
        .next()
        .ok_or_else(|| damaged(format!("{expected} is missing (cut off?)")))?
        .map_err(|e| damaged(e.to_string()))?;
    let name = entry.path().map_err(|e| damaged(e.to_string()))?;
    if name != Path::new(expected) {
        return Err(damaged(format!(
            "found {} where {expected} belongs",
            name.display()
        )));
    }
    Ok(entry)
}

/// Counts and hashes what is read through it.
struct Hashed<R> {
    inner: R,
    hasher: Sha256,
    bytes: u64,
}

impl<R> Hashed<R> {
    fn new(inner: R) -> Self {
        Self {
            inner,
            hasher: Sha256::new(),
            bytes: 0,
        }
    }
}

impl<R: Read> Read for Hashed<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn archive() -> (tempfile::TempDir, Vec<u8>) {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("copy.redb");
        fs::write(&db, b"pretend database pages".repeat(1000)).unwrap();
        let facts = SnapshotFacts {
            last_seq: 7,
            events: 7,
            schema_version: store::SCHEMA_VERSION,
        };
        let mut out = Vec::new();
        write(&db, facts, &mut out).unwrap();
        (dir, out)
    }

    #[test]
    fn an_archive_restores_into_an_empty_directory_only() {
        let (dir, bytes) = archive();
        let target = dir.path().join("restored");
        let manifest = restore(bytes.as_slice(), &target).unwrap();
        assert_eq!((manifest.events, manifest.last_seq), (7, 7));
        let restored = fs::read(target.join(store::DB_FILE)).unwrap();
        assert_eq!(restored, b"pretend database pages".repeat(1000));
        assert!(matches!(
            restore(bytes.as_slice(), &target),
            Err(RestoreError::NotEmpty(_))
        ));
    }

    #[test]
    fn a_cut_off_or_damaged_archive_is_refused_and_leaves_nothing() {
        let (dir, bytes) = archive();
        for cut in [bytes.len() / 3, bytes.len() - 40, bytes.len() - 1] {
            let target = dir.path().join(format!("cut-{cut}"));
            let result = restore(&bytes[..cut], &target);
            assert!(result.is_err(), "cut at {cut} of {}", bytes.len());
            assert_eq!(fs::read_dir(&target).unwrap().count(), 0, "nothing left");
        }
        assert!(check(&b"not zstd"[..]).is_err());
    }

    #[test]
    fn a_newer_archive_is_refused_naming_both_versions() {
        let (dir, _) = archive();
        let db = dir.path().join("copy.redb");
        let facts = SnapshotFacts {
            last_seq: 1,
            events: 1,
            schema_version: store::SCHEMA_VERSION + 1,
        };
        let mut out = Vec::new();
        write(&db, facts, &mut out).unwrap();
        let error = check(out.as_slice()).unwrap_err().to_string();
        assert!(error.contains("newer hookvault"), "{error}");
        assert!(
            error.contains(&format!("schema {}", store::SCHEMA_VERSION + 1)),
            "{error}"
        );
    }
}
