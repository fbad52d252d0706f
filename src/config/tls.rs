//! The built-in TLS settings (`HOOKVAULT_TLS_CERT`, `HOOKVAULT_TLS_KEY`): both or
//! neither, and for `serve` a pair that loads, checked at startup like every other
//! setting.

use std::path::PathBuf;

use super::{ConfigError, Settings};
pub use crate::tls::TlsFiles;

const CERT_SETTING: &str = "HOOKVAULT_TLS_CERT (--tls-cert)";
const KEY_SETTING: &str = "HOOKVAULT_TLS_KEY (--tls-key)";

impl TlsFiles {
    /// `None` when neither is set; `check` also loads the pair (for `serve`).
    pub(super) fn parse(settings: &Settings, check: bool) -> Result<Option<Self>, ConfigError> {
        let set = |path: &Option<PathBuf>| path.clone().filter(|p| !p.as_os_str().is_empty());
        let files = match (set(&settings.tls_cert), set(&settings.tls_key)) {
            (None, None) => return Ok(None),
            (Some(cert), Some(key)) => Self { cert, key },
            (Some(_), None) => {
                return Err(ConfigError::new(
                    KEY_SETTING,
                    "is needed with HOOKVAULT_TLS_CERT (the certificate's private key, PEM)",
                ));
            }
            (None, Some(_)) => {
                return Err(ConfigError::new(
                    CERT_SETTING,
                    "is needed with HOOKVAULT_TLS_KEY (the certificate chain, PEM)",
                ));
            }
        };
        if check && let Err(e) = crate::tls::load(&files) {
            let setting = if e.path() == files.cert {
                CERT_SETTING
            } else {
                KEY_SETTING
            };
            return Err(ConfigError::new(setting, e.to_string()));
        }
        Ok(Some(files))
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::settings;
    use super::*;

    fn parse(args: &[&str]) -> Result<Option<TlsFiles>, ConfigError> {
        TlsFiles::parse(&settings(args), true)
    }

    #[test]
    fn both_files_or_neither() {
        assert_eq!(parse(&[]).unwrap(), None);
        let err = parse(&["--tls-cert", "/x/cert.pem"]).unwrap_err();
        assert!(err.to_string().contains("HOOKVAULT_TLS_KEY"), "{err}");
        let err = parse(&["--tls-key", "/x/key.pem"]).unwrap_err();
        assert!(err.to_string().contains("HOOKVAULT_TLS_CERT"), "{err}");
    }

    #[test]
    fn a_file_that_does_not_load_is_named_with_its_setting() {
        let dir = tempfile::tempdir().unwrap();
        let cert = dir.path().join("cert.pem");
        let key = dir.path().join("key.pem");
        std::fs::write(&cert, "not a certificate").unwrap();
        std::fs::write(&key, "not a key").unwrap();
        let args = [
            "--tls-cert",
            cert.to_str().unwrap(),
            "--tls-key",
            key.to_str().unwrap(),
        ];
        let err = parse(&args).unwrap_err();
        assert!(err.to_string().contains("HOOKVAULT_TLS_CERT"), "{err}");
        assert!(err.to_string().contains("no PEM certificate"), "{err}");

        let generated = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
        std::fs::write(&cert, generated.cert.pem()).unwrap();
        let err = parse(&args).unwrap_err();
        assert!(err.to_string().contains("HOOKVAULT_TLS_KEY"), "{err}");

        let other = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
        std::fs::write(&key, other.signing_key.serialize_pem()).unwrap();
        let err = parse(&args).unwrap_err();
        assert!(err.to_string().contains("does not belong"), "{err}");

        std::fs::write(&key, generated.signing_key.serialize_pem()).unwrap();
        assert_eq!(
            parse(&args).unwrap(),
            Some(TlsFiles { cert, key }),
            "a matching pair loads"
        );
    }
}
