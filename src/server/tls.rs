//! Built-in TLS (`--tls-cert`, `--tls-key`): rustls with the ring provider, ALPN
//! `h2` and `http/1.1`, and a certificate that is replaced while serving. On SIGHUP,
//! or when either file's modification time or size changes, both files are read
//! again; a pair that does not load keeps the certificate in use and says why.
//! Connections already past their handshake are not touched by a reload.

use std::future::Future;
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use tokio_rustls::TlsAcceptor;

use crate::tls::TlsFiles;
pub use crate::tls::{TlsError, install_provider, load, provider};

/// How often the files' modification times are looked at. Renewals (certbot, acme.sh)
/// happen days ahead of expiry; seconds of delay cost nothing.
pub const POLL_EVERY: Duration = Duration::from_secs(5);

/// The certificate handed to new handshakes; swapped whole on a reload.
#[derive(Debug)]
struct Current(RwLock<Arc<CertifiedKey>>);

impl ResolvesServerCert for Current {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.0.read().unwrap_or_else(|e| e.into_inner()).clone())
    }
}

/// Without TLS, SIGHUP has nothing to reload, but it must not kill the server
/// either (its default action): `systemctl reload` sends it to every instance.
pub async fn ignore_hangups(shutdown: impl Future<Output = ()>) {
    use tokio::signal::unix::{SignalKind, signal};
    let Ok(mut hangup) = signal(SignalKind::hangup()) else {
        return;
    };
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => return,
            Some(()) = hangup.recv() => {
                tracing::info!("SIGHUP: nothing to reload (no HOOKVAULT_TLS_CERT)");
            }
        }
    }
}

/// The server's TLS: its acceptor and the files it reloads from.
pub struct Tls {
    files: TlsFiles,
    current: Arc<Current>,
    acceptor: TlsAcceptor,
}

impl Tls {
    pub fn new(files: TlsFiles) -> Result<Arc<Self>, TlsError> {
        let current = Arc::new(Current(RwLock::new(Arc::new(load(&files)?))));
        let mut config = rustls::ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .expect("ring supports TLS 1.2 and 1.3")
            .with_no_client_auth()
            .with_cert_resolver(current.clone());
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(Arc::new(Self {
            files,
            current,
            acceptor: TlsAcceptor::from(Arc::new(config)),
        }))
    }

    pub fn acceptor(&self) -> TlsAcceptor {
        self.acceptor.clone()
    }

    /// Reads the files again; on success new handshakes get the new certificate.
    pub fn reload(&self) -> Result<(), TlsError> {
        let loaded = Arc::new(load(&self.files)?);
        *self.current.0.write().unwrap_or_else(|e| e.into_inner()) = loaded;
        Ok(())
    }

    /// Reloads on SIGHUP and when the files change, until `shutdown`.
    pub async fn watch(self: Arc<Self>, shutdown: impl Future<Output = ()>) {
        use tokio::signal::unix::{SignalKind, signal};
        let mut hangup = match signal(SignalKind::hangup()) {
            Ok(hangup) => Some(hangup),
            Err(e) => {
                tracing::warn!("cannot listen for SIGHUP ({e}); TLS files are still watched");
                None
            }
        };
        let mut seen = self.stamps();
        tokio::pin!(shutdown);
        loop {
            let why = tokio::select! {
                () = &mut shutdown => return,
                Some(()) = async { hangup.as_mut()?.recv().await } => "SIGHUP",
                () = tokio::time::sleep(POLL_EVERY) => {
                    let now = self.stamps();
                    if now == seen {
                        continue;
                    }
                    "the files changed"
                }
            };
            seen = self.stamps();
            match self.reload() {
                Ok(()) => tracing::info!(
                    cert = %self.files.cert.display(),
                    reason = why,
                    "TLS certificate reloaded"
                ),
                Err(error) => tracing::warn!(
                    %error,
                    reason = why,
                    "kept the TLS certificate in use: the new files do not load"
                ),
            }
        }
    }

    /// Modification time and size of both files (following symlinks, as certbot's
    /// `live/` directory has them), `None` for a file that cannot be read.
    fn stamps(&self) -> [Option<(SystemTime, u64)>; 2] {
        [&self.files.cert, &self.files.key].map(|path| {
            let meta = std::fs::metadata(path).ok()?;
            Some((meta.modified().ok()?, meta.len()))
        })
    }
}
