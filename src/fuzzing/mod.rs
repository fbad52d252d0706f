//! Fuzz targets: one entry per target taking raw bytes, deriving its inputs from them
//! and asserting the invariants. A broken invariant panics, which is what libFuzzer
//! (`fuzz/`) and proptest (`tests/api/fuzz.rs`) both report. Not part of the API:
//! hidden from the docs and free to change.
//!
//! The signature checks compute the HMAC here, with `hmac` directly, so they do not
//! trust the [`Signature`] code they check.

mod search;

use std::collections::HashMap;

use bytes::Bytes;
use hmac::{Hmac, Mac};
use http::{HeaderMap, HeaderName, HeaderValue};
use sha2::Sha256;

use crate::api::{ApiError, query_parsers};
use crate::config::Secret;
use crate::domain::{ErrorCode, PayloadEncoding};
use crate::ingest::{self, DeliveryHeaders, Signature};
use crate::store::Status;

pub use search::{search_params, search_query};

/// Headers the ingest target picks from; any other name comes from the input.
const HEADER_NAMES: &[&str] = &[
    "x-github-event",
    "x-github-delivery",
    "user-agent",
    "x-hub-signature-256",
    "content-type",
    "x-github-hook-id",
    "authorization",
    "cookie",
];

/// The bytes of a fuzz input, read front to back. Reading past the end gives zeros
/// and empty slices, so every input is usable.
struct Input<'a>(&'a [u8]);

impl<'a> Input<'a> {
    fn new(data: &'a [u8]) -> Self {
        Self(data)
    }

    fn byte(&mut self) -> u8 {
        self.take(1).first().copied().unwrap_or(0)
    }

    fn take(&mut self, n: usize) -> &'a [u8] {
        let (taken, rest) = self.0.split_at(n.min(self.0.len()));
        self.0 = rest;
        taken
    }

    /// A chunk of up to 255 bytes, its length in the byte before it.
    fn chunk(&mut self) -> &'a [u8] {
        let n = self.byte();
        self.take(n.into())
    }

    fn text(&mut self) -> String {
        String::from_utf8_lossy(self.chunk()).into_owned()
    }

    fn rest(self) -> &'a [u8] {
        self.0
    }
}

/// Lowercase hex HMAC-SHA256 of `body` under `secret`, as GitHub sends it.
pub fn hmac_hex(secret: &[u8], body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes keys of any length");
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

/// Whether `header` is `sha256=` and the HMAC of `body` under one of `secrets`. Like
/// [`Signature::parse`], surrounding whitespace and the case of hex digits are not
/// significant: neither changes the digest named.
pub fn is_valid_signature(header: &str, secrets: &[Secret], body: &[u8]) -> bool {
    let Some(digest) = header.trim().strip_prefix("sha256=") else {
        return false;
    };
    secrets
        .iter()
        .any(|s| digest.eq_ignore_ascii_case(&hmac_hex(s.expose().as_bytes(), body)))
}

/// A request to `POST /api/webhooks/github` built from the input, checked by
/// [`check_delivery`]; see [`request_status`].
pub fn ingest_request(data: &[u8]) {
    request_status(data);
}

/// Builds a request from the input and returns the status [`check_delivery`] found.
/// The input is: a flags byte (bits 0-1: how many secrets; 2: start from well-formed
/// GitHub headers; 3: form-encode the body; 4-5: signature missing, right, one bit
/// off, or made with another secret; 6: check the User-Agent), each secret as a
/// length-prefixed chunk, a count of extra headers and each as a name pick and a
/// length-prefixed value, a byte picking the signing secret, and the body.
pub fn request_status(data: &[u8]) -> u16 {
    let mut input = Input::new(data);
    let flags = input.byte();
    let secrets: Vec<Secret> = (0..flags % 4).map(|_| Secret::new(input.text())).collect();
    let mut headers = HeaderMap::new();
    if flags & 0x04 != 0 {
        for (name, value) in [
            ("x-github-event", "push"),
            ("x-github-delivery", "72d3162e-cc78-11e3-81ab-4c9367dc0958"),
            ("user-agent", "GitHub-Hookshot/044aadd"),
            ("content-type", "application/json"),
        ] {
            headers.insert(name, HeaderValue::from_static(value));
        }
    }
    for _ in 0..input.byte() % 8 {
        let pick = input.byte();
        let name = match HEADER_NAMES.get(usize::from(pick % 16)) {
            Some(name) => HeaderName::from_static(name),
            None => match HeaderName::from_bytes(input.chunk()) {
                Ok(name) => name,
                Err(_) => continue,
            },
        };
        let Ok(value) = HeaderValue::from_bytes(input.chunk()) else {
            continue;
        };
        if pick & 0x80 != 0 {
            headers.append(name, value);
        } else {
            headers.insert(name, value);
        }
    }
    let signer = input.byte();
    let rest = input.rest();
    let body = if flags & 0x08 != 0 {
        headers.insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static("application/x-www-form-urlencoded"),
        );
        form_urlencoded::Serializer::new(String::new())
            .append_pair("payload", &String::from_utf8_lossy(rest))
            .finish()
            .into_bytes()
    } else {
        rest.to_vec()
    };
    let secret = match secrets.get(usize::from(signer) % secrets.len().max(1)) {
        Some(secret) => secret.expose().to_owned(),
        None => String::new(),
    };
    let signature = match (flags >> 4) & 3 {
        0 => None,
        1 => Some(hmac_hex(secret.as_bytes(), &body)),
        2 => Some(flip_hex_bit(
            &hmac_hex(secret.as_bytes(), &body),
            usize::from(signer),
        )),
        // Longer than, and ending unlike, every configured secret: a different key.
        _ => Some(hmac_hex(
            format!(
                "{}x",
                secrets.iter().map(Secret::expose).collect::<String>()
            )
            .as_bytes(),
            &body,
        )),
    };
    if let Some(hex) = signature {
        let value = HeaderValue::from_str(&format!("sha256={hex}")).expect("hex is a header");
        headers.insert("x-hub-signature-256", value);
    }
    check_delivery(&headers, &body, &secrets, flags & 0x40 != 0)
}

/// The ingest invariants for one request: header problems are 400; past the headers,
/// the answer is 401 exactly when the signature is not a valid HMAC of the body under
/// a configured secret; anything accepted is that body, decoded to a JSON object,
/// without credentials among its kept headers; every refusal is a 4xx. Returns the
/// status: 200 when accepted.
pub fn check_delivery(headers: &HeaderMap, body: &[u8], secrets: &[Secret], check_ua: bool) -> u16 {
    let parsed = match DeliveryHeaders::parse(headers, check_ua) {
        Ok(parsed) => parsed,
        Err(error) => {
            let code = error.code();
            let status = code.status().as_u16();
            assert_eq!(status, 400, "header problem answered {status} {code}");
            return status;
        }
    };
    let authentic = headers
        .get("x-hub-signature-256")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| is_valid_signature(v, secrets, body));
    match ingest::verify(parsed, headers, Bytes::copy_from_slice(body), secrets) {
        Ok(delivery) => {
            assert!(
                authentic,
                "accepted a delivery without a valid signature of its body"
            );
            assert_eq!(
                delivery.body, body,
                "the stored body differs from the one received"
            );
            let payload = ingest::decode_payload(delivery.encoding, &delivery.body)
                .expect("an accepted body decodes again");
            assert!(payload.is_object());
            assert!(
                delivery.headers.iter().all(|(name, _)| {
                    !["authorization", "cookie", "proxy-authorization"].contains(&name.as_str())
                }),
                "credentials kept: {:?}",
                delivery.headers
            );
            200
        }
        Err(error) => {
            let code = error.code();
            let status = code.status().as_u16();
            assert_eq!(
                status == 401,
                !authentic,
                "{status} {code} for a delivery whose signature is {}",
                if authentic { "valid" } else { "not valid" }
            );
            assert!(matches!(status, 400 | 401 | 415), "{status} {code}");
            status
        }
    }
}

/// `hex` with one bit flipped in the digest it names (`bit` modulo 256).
pub fn flip_hex_bit(hex: &str, bit: usize) -> String {
    let mut digest = hex::decode(hex).expect("hex digits");
    let bit = bit % (digest.len() * 8);
    digest[bit / 8] ^= 1 << (bit % 8);
    hex::encode(digest)
}

/// The signature alone: an arbitrary header is accepted exactly when it names the
/// HMAC of the body; the right signature verifies and round-trips; a flipped bit in
/// the digest or the body, or another secret, does not verify.
pub fn signature(data: &[u8]) {
    let mut input = Input::new(data);
    let secret = input.text();
    let header = input.text();
    let bit = usize::from(input.byte()) << 8 | usize::from(input.byte());
    let body = input.rest();
    let secrets = [Secret::new(secret.clone())];

    match Signature::parse(&header) {
        Some(parsed) => {
            assert_eq!(
                parsed.matches_any(&secrets, body),
                is_valid_signature(&header, &secrets, body),
                "header {header:?}"
            );
            assert_eq!(Signature::parse(&parsed.to_header()), Some(parsed));
        }
        None => assert!(
            !is_valid_signature(&header, &secrets, body),
            "a valid signature was refused as malformed: {header:?}"
        ),
    }

    let right = hmac_hex(secret.as_bytes(), body);
    let parse = |hex: &str| Signature::parse(&format!("sha256={hex}")).expect("well-formed");
    assert!(parse(&right).matches_any(&secrets, body));
    assert_eq!(
        Signature::compute(secret.as_bytes(), body).to_header(),
        format!("sha256={right}")
    );
    assert!(!parse(&flip_hex_bit(&right, bit)).matches_any(&secrets, body));
    let other = hmac_hex(format!("{secret}x").as_bytes(), body);
    assert!(!parse(&other).matches_any(&secrets, body));
    if !body.is_empty() {
        let mut flipped = body.to_vec();
        flipped[bit / 8 % body.len()] ^= 1 << (bit % 8);
        assert!(!parse(&right).matches_any(&secrets, &flipped));
    }
}

/// Decoding a body as either content type: an error or a JSON object, never a panic.
pub fn payload(data: &[u8]) {
    for encoding in [PayloadEncoding::Json, PayloadEncoding::Form] {
        match ingest::decode_payload(encoding, data) {
            Ok(value) => assert!(value.is_object()),
            Err(error) => assert_eq!(error.code().status().as_u16(), 400, "{error}"),
        }
    }
}

/// The input as a query string, given to every API area's parser.
pub fn query_params(data: &[u8]) {
    let params: HashMap<String, String> = form_urlencoded::parse(data).into_owned().collect();
    check_query_params(&params);
}

/// Every query-string parser maps bad input to a 400 naming the parameter, keeps
/// what it accepts within the documented bounds, and treats a blank value like a
/// missing one (except the search text `q`, kept as given for the query parser).
pub fn check_query_params(params: &HashMap<String, String>) {
    let blank_dropped: HashMap<String, String> = params
        .iter()
        .filter(|(k, v)| *k == "q" || !v.trim().is_empty())
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let outcomes = |params: &HashMap<String, String>| {
        [
            format!("{:?}", query_parsers::events(params)),
            format!("{:?}", query_parsers::failed(params)),
            format!("{:?}", query_parsers::repositories(params)),
            format!("{:?}", query_parsers::search(params)),
            format!("{:?}", query_parsers::statistics(params)),
        ]
    };
    let (with_blanks, without) = (outcomes(params), outcomes(&blank_dropped));
    for (a, b) in with_blanks.iter().zip(&without) {
        assert_eq!(a, b, "a blank parameter is not treated as missing");
    }

    match query_parsers::events(params) {
        Ok(query) => {
            assert!((1..=1000).contains(&query.limit), "limit {}", query.limit);
            assert!(query.statuses.len() < Status::ALL.len());
            if let (Some(start), Some(end)) = (query.start_ms, query.end_ms) {
                assert!(start <= end);
            }
        }
        Err(error) => bad_parameter(error),
    }
    match query_parsers::failed(params) {
        Ok(limit) => assert!((1..=1000).contains(&limit), "limit {limit}"),
        Err(error) => bad_parameter(error),
    }
    match query_parsers::repositories(params) {
        Ok((_, limit)) => assert!((1..=1000).contains(&limit), "limit {limit}"),
        Err(error) => bad_parameter(error),
    }
    match query_parsers::search(params) {
        Ok(request) => {
            assert!(
                (1..=100).contains(&request.limit),
                "limit {}",
                request.limit
            );
            assert!(request.offset <= 10_000, "offset {}", request.offset);
        }
        Err(error) => bad_parameter(error),
    }
    match query_parsers::statistics(params) {
        Ok(hours) => assert!((1..=24 * 366).contains(&hours), "hours {hours}"),
        Err(error) => bad_parameter(error),
    }
}

fn bad_parameter(error: ApiError) {
    assert_eq!(error.status, 400, "{error:?}");
    assert_eq!(error.code, ErrorCode::InvalidParameter, "{error:?}");
    assert!(
        error.message.starts_with("query parameter "),
        "the message names the parameter: {error:?}"
    );
}
