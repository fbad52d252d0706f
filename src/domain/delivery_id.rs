//! `X-GitHub-Delivery`: the delivery's unique id (a GUID when GitHub sends it).

use super::DomainError;

/// Longest delivery id accepted. GitHub sends 36-character GUIDs; the slack is for
/// proxies and test tools that use their own ids.
const MAX_LEN: usize = 128;

/// A delivery id: 1 to 128 characters of `[A-Za-z0-9._:-]`, so it is safe to use as a
/// key, in a URL path and in a log line.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DeliveryId(String);

impl DeliveryId {
    pub fn parse(raw: &str) -> Result<Self, DomainError> {
        if raw.is_empty() || raw.len() > MAX_LEN {
            return Err(DomainError(format!(
                "delivery id must be 1 to {MAX_LEN} characters long"
            )));
        }
        let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':');
        if !raw.chars().all(allowed) {
            return Err(DomainError(
                "delivery id may only contain letters, digits and - _ . :".into(),
            ));
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for DeliveryId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_github_guids() {
        let id = DeliveryId::parse("72d3162e-cc78-11e3-81ab-4c9367dc0958").unwrap();
        assert_eq!(id.as_str(), "72d3162e-cc78-11e3-81ab-4c9367dc0958");
    }

    #[test]
    fn rejects_empty_long_and_unsafe_ids() {
        assert!(DeliveryId::parse("").is_err());
        assert!(DeliveryId::parse(&"a".repeat(129)).is_err());
        assert!(DeliveryId::parse("../etc/passwd").is_err());
        assert!(DeliveryId::parse("a b").is_err());
    }
}
