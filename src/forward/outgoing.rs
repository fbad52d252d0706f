//! What a forwarding target (or the relay's local URL) receives for a stored
//! delivery: the body exactly as GitHub sent it, with GitHub's own headers, so an
//! existing GitHub-webhook consumer (Jenkins, Atlantis, Argo, a probot app) takes it
//! unchanged. With a secret of the target's own, the signatures are computed again
//! with it; without one, GitHub's are passed through (valid where the target shares
//! the webhook's secret).

use hmac::{Hmac, Mac};
use http::{HeaderMap, HeaderName, HeaderValue};
use sha2::Sha256;

/// Which attempt this is for the target, from 1.
pub const ATTEMPT_HEADER: &str = "x-hookvault-delivery-attempt";
/// The store's sequence number of the delivery.
pub const SEQ_HEADER: &str = "x-hookvault-seq";

const SIGNATURE_256: &str = "x-hub-signature-256";
const SIGNATURE_SHA1: &str = "x-hub-signature";

// The names above as header names, checked once at compile time, not per request.
const ATTEMPT_NAME: HeaderName = HeaderName::from_static(ATTEMPT_HEADER);
const SEQ_NAME: HeaderName = HeaderName::from_static(SEQ_HEADER);
const SIGNATURE_256_NAME: HeaderName = HeaderName::from_static(SIGNATURE_256);
const SIGNATURE_SHA1_NAME: HeaderName = HeaderName::from_static(SIGNATURE_SHA1);

/// Stored request headers that are passed on: GitHub's and the body's type. The rest
/// (host, length, proxy headers) belong to the hop that brought the delivery here.
fn passed_on(name: &str) -> bool {
    name.starts_with("x-github-")
        || name == "content-type"
        || name == "user-agent"
        || name == SIGNATURE_256
        || name == SIGNATURE_SHA1
}

/// The headers to send with `body`. `stored` are the delivery's request headers as
/// kept by the store (names in lower case); `secret` is the target's own, if any.
pub fn headers(
    stored: &[(String, String)],
    body: &[u8],
    secret: Option<&[u8]>,
    seq: u64,
    attempt: u32,
) -> HeaderMap {
    let mut headers = HeaderMap::with_capacity(stored.len() + 2);
    for (name, value) in stored {
        // HeaderName::from_bytes makes the name lower case (the store keeps it so).
        let Ok(name) = HeaderName::from_bytes(name.as_bytes()) else {
            continue;
        };
        if !passed_on(name.as_str()) || (secret.is_some() && is_signature(name.as_str())) {
            continue;
        }
        if let Ok(value) = HeaderValue::from_str(value) {
            headers.append(name, value);
        }
    }
    if let Some(secret) = secret {
        let (sha256, sha1) = sign(secret, body);
        headers.insert(SIGNATURE_256_NAME, value(format!("sha256={sha256}")));
        headers.insert(SIGNATURE_SHA1_NAME, value(format!("sha1={sha1}")));
    }
    headers.insert(ATTEMPT_NAME, HeaderValue::from(attempt));
    headers.insert(SEQ_NAME, HeaderValue::from(seq));
    headers
}

fn is_signature(name: &str) -> bool {
    name == SIGNATURE_256 || name == SIGNATURE_SHA1
}

fn value(text: String) -> HeaderValue {
    HeaderValue::try_from(text).expect("digits, letters and '=' make a valid header value")
}

/// GitHub's two signatures of `body` under `secret`, hex: HMAC-SHA256
/// (`X-Hub-Signature-256`) and the legacy HMAC-SHA1 (`X-Hub-Signature`), which older
/// consumers still check.
pub fn sign(secret: &[u8], body: &[u8]) -> (String, String) {
    let mut sha256 = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes any key");
    sha256.update(body);
    let mut sha1 = Hmac::<sha1::Sha1>::new_from_slice(secret).expect("HMAC takes any key");
    sha1.update(body);
    (
        hex::encode(sha256.finalize().into_bytes()),
        hex::encode(sha1.finalize().into_bytes()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stored() -> Vec<(String, String)> {
        [
            ("host", "hooks.example.net"),
            ("content-type", "application/json"),
            ("user-agent", "GitHub-Hookshot/044aadd"),
            ("x-github-event", "push"),
            ("x-github-delivery", "72d3162e-cc78-11e3-81ab-4c9367dc0958"),
            ("x-github-hook-id", "292430182"),
            ("x-hub-signature-256", "sha256=original"),
            ("x-hub-signature", "sha1=original"),
            ("x-forwarded-for", "140.82.115.1"),
            ("content-length", "2"),
        ]
        .into_iter()
        .map(|(n, v)| (n.to_owned(), v.to_owned()))
        .collect()
    }

    #[test]
    fn passes_github_headers_and_signatures_through_without_a_secret() {
        let headers = headers(&stored(), b"{}", None, 7, 1);
        assert_eq!(headers["x-github-event"], "push");
        assert_eq!(headers["x-github-hook-id"], "292430182");
        assert_eq!(headers["user-agent"], "GitHub-Hookshot/044aadd");
        assert_eq!(headers["x-hub-signature-256"], "sha256=original");
        assert_eq!(headers["x-hub-signature"], "sha1=original");
        assert_eq!(headers[ATTEMPT_HEADER], "1");
        assert_eq!(headers[SEQ_HEADER], "7");
        for hop in ["host", "x-forwarded-for", "content-length"] {
            assert!(!headers.contains_key(hop), "{hop} belongs to the hop");
        }
    }

    #[test]
    fn signs_again_with_the_targets_secret() {
        let body = b"Hello, World!";
        let headers = headers(&stored(), body, Some(b"It's a Secret to Everybody"), 7, 3);
        // The example of GitHub's "Validating webhook deliveries" page.
        assert_eq!(
            headers["x-hub-signature-256"],
            "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
        );
        assert_eq!(headers.get_all("x-hub-signature-256").iter().count(), 1);
        assert!(
            headers["x-hub-signature"]
                .to_str()
                .unwrap()
                .starts_with("sha1=")
        );
        assert_ne!(headers["x-hub-signature"], "sha1=original");
        assert_eq!(headers[ATTEMPT_HEADER], "3");
    }
}
