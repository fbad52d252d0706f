//! `X-Hub-Signature-256`: HMAC-SHA256 of the raw body, checked against every
//! configured secret in constant time.

use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::{Choice, ConstantTimeEq};

use crate::config::Secret;

type HmacSha256 = Hmac<Sha256>;

/// A parsed `sha256=<64 hex digits>` header value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signature([u8; 32]);

impl Signature {
    pub fn parse(header: &str) -> Option<Self> {
        let hex_digest = header.trim().strip_prefix("sha256=")?;
        let mut digest = [0u8; 32];
        hex::decode_to_slice(hex_digest, &mut digest).ok()?;
        Some(Self(digest))
    }

    /// The signature GitHub would send for `body` signed with `secret`.
    pub fn compute(secret: &[u8], body: &[u8]) -> Self {
        let mut mac = HmacSha256::new_from_slice(secret).expect("HMAC takes keys of any length");
        mac.update(body);
        Self(mac.finalize().into_bytes().into())
    }

    pub fn to_header(&self) -> String {
        format!("sha256={}", hex::encode(self.0))
    }

    /// True when any secret signs `body` to this signature. Every secret is tried,
    /// and each comparison takes the same time whether it matches or not.
    pub fn matches_any(&self, secrets: &[Secret], body: &[u8]) -> bool {
        let matched = secrets.iter().fold(Choice::from(0), |acc, secret| {
            acc | Self::compute(secret.expose().as_bytes(), body)
                .0
                .ct_eq(&self.0)
        });
        matched.into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// GitHub's documented test vector ("Validating webhook deliveries").
    #[test]
    fn github_documented_vector() {
        let sig = Signature::compute(b"It's a Secret to Everybody", b"Hello, World!");
        assert_eq!(
            sig.to_header(),
            "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
        );
    }

    #[test]
    fn any_configured_secret_may_match() {
        let secrets = [
            Secret::new("old"),
            Secret::new("It's a Secret to Everybody"),
        ];
        let header = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
        let sig = Signature::parse(header).unwrap();
        assert!(sig.matches_any(&secrets, b"Hello, World!"));
        assert!(!sig.matches_any(&secrets, b"Hello, World?"));
        assert!(!sig.matches_any(&secrets[..1], b"Hello, World!"));
    }

    #[test]
    fn rejects_malformed_headers() {
        assert_eq!(Signature::parse("sha1=abc"), None);
        assert_eq!(Signature::parse("sha256=zz"), None);
        assert_eq!(
            Signature::parse(&format!("sha256={}", "0".repeat(63))),
            None
        );
    }
}
