//! TLS shared by the server and the clients: the PEM certificate pair of
//! `HOOKVAULT_TLS_CERT`/`HOOKVAULT_TLS_KEY`, loading and checking it, and the one
//! crypto provider (ring) of every connection hookvault makes or accepts.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::sign::CertifiedKey;

/// PEM files of the certificate chain (leaf first) and its private key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// Why a certificate and key pair cannot be used; names the file at fault.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{} holds no PEM certificate (-----BEGIN CERTIFICATE-----)", .0.display())]
    NoCertificate(PathBuf),
    #[error("{} holds no PEM private key (PKCS#8, PKCS#1 or SEC1)", .0.display())]
    NoKey(PathBuf),
    #[error("{} is not valid PEM: {reason}", path.display())]
    Pem { path: PathBuf, reason: String },
    #[error("the key in {} is not usable: {reason}", path.display())]
    Key { path: PathBuf, reason: String },
    #[error("the key in {} does not belong to the certificate in {}", key.display(), cert.display())]
    Mismatch { cert: PathBuf, key: PathBuf },
}

impl TlsError {
    /// The file at fault (the key's, for a key that does not match).
    pub fn path(&self) -> &Path {
        match self {
            Self::Read { path, .. } | Self::Pem { path, .. } | Self::Key { path, .. } => path,
            Self::NoCertificate(path) | Self::NoKey(path) => path,
            Self::Mismatch { key, .. } => key,
        }
    }
}

/// The crypto provider of every TLS connection hookvault makes or accepts: ring.
/// aws-lc-rs, rustls' default, needs cmake and doubles the build; rustls 0.23.48
/// deprecates ring's provider for lacking post-quantum key exchange, which GitHub's
/// deliveries and a dashboard on a home network can do without.
#[allow(deprecated)]
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Makes ring the process-wide default, for clients (reqwest) that look it up.
/// Idempotent.
pub fn install_provider() {
    let _ = Arc::unwrap_or_clone(provider()).install_default();
}

/// Reads and checks a certificate chain and its key.
pub fn load(files: &TlsFiles) -> Result<CertifiedKey, TlsError> {
    let read = |path: &Path| {
        std::fs::read(path).map_err(|source| TlsError::Read {
            path: path.to_owned(),
            source,
        })
    };
    let pem_error = |path: &Path, e: pem::Error| TlsError::Pem {
        path: path.to_owned(),
        reason: e.to_string(),
    };
    let chain = CertificateDer::pem_slice_iter(&read(&files.cert)?)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| pem_error(&files.cert, e))?;
    if chain.is_empty() {
        return Err(TlsError::NoCertificate(files.cert.clone()));
    }
    let key = match PrivateKeyDer::from_pem_slice(&read(&files.key)?) {
        Ok(key) => key,
        Err(pem::Error::NoItemsFound) => return Err(TlsError::NoKey(files.key.clone())),
        Err(e) => return Err(pem_error(&files.key, e)),
    };
    CertifiedKey::from_der(chain, key, &provider()).map_err(|e| match e {
        rustls::Error::InconsistentKeys(_) => TlsError::Mismatch {
            cert: files.cert.clone(),
            key: files.key.clone(),
        },
        other => TlsError::Key {
            path: files.key.clone(),
            reason: other.to_string(),
        },
    })
}
