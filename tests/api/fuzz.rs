//! Property tests (`cargo test fuzz`): the entry points of the `fuzz/` targets on
//! arbitrary bytes, and targeted properties of the signature check, the header and form
//! parsers, the query-string parsers and the search path.

use std::collections::HashMap;

use bytes::Bytes;
use hookvault::config::Secret;
use hookvault::domain::PayloadEncoding;
use hookvault::fuzzing::{self, hmac_hex};
use hookvault::ingest::{self, DeliveryHeaders, IngestError};
use http::{HeaderMap, HeaderValue};
use proptest::collection::{hash_map, vec};
use proptest::prelude::*;
use proptest::sample::select;
use serde_json::{Value, json};

/// A secret as the command line or environment can carry it: any text but NUL.
/// (HMAC pads keys with zero bytes, so `"a"` and `"a\0"` would sign alike.)
fn secret() -> impl Strategy<Value = String> {
    "[^\u{0}]{0,60}"
}

/// A JSON object body, or any bytes at all.
fn body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        (any::<String>(), any::<i64>()).prop_map(|(text, n)| {
            serde_json::to_vec(&json!({"zen": text, "hook_id": n, "nested": {"a": [n]}})).unwrap()
        }),
        vec(any::<u8>(), 0..512),
    ]
}

/// Well-formed GitHub headers for a JSON delivery with this signature header.
fn github_headers(signature: &str) -> HeaderMap {
    let mut headers = HeaderMap::new();
    for (name, value) in [
        ("x-github-event", "push"),
        ("x-github-delivery", "72d3162e-cc78-11e3-81ab-4c9367dc0958"),
        ("user-agent", "GitHub-Hookshot/044aadd"),
        ("content-type", "application/json"),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    headers.insert(
        "x-hub-signature-256",
        HeaderValue::from_str(signature).unwrap(),
    );
    headers
}

fn verify(headers: &HeaderMap, body: &[u8], secrets: &[String]) -> Result<(), IngestError> {
    let secrets: Vec<Secret> = secrets.iter().map(Secret::new).collect();
    let parsed = DeliveryHeaders::parse(headers, true).expect("well-formed headers");
    ingest::verify(parsed, headers, Bytes::copy_from_slice(body), &secrets).map(|_| ())
}

fn assert_401(result: Result<(), IngestError>) -> Result<(), TestCaseError> {
    match result {
        Ok(()) => Err(TestCaseError::fail("accepted")),
        Err(error) => {
            prop_assert!(
                matches!(
                    error,
                    IngestError::SignatureMismatch | IngestError::SignatureMalformed
                ),
                "{error:?}"
            );
            prop_assert_eq!(error.code().status().as_u16(), 401);
            Ok(())
        }
    }
}

proptest! {
    // A case takes well under a millisecond: the whole module runs in about a second.
    #![proptest_config(ProptestConfig::with_cases(1024))]

    #[test]
    fn query_parameters_map_bad_input_to_400(
        params in hash_map(param_name(), param_value(), 0..6),
    ) {
        fuzzing::check_query_params(&params);
    }

    #[test]
    fn fuzz_targets_hold_on_arbitrary_bytes(data in vec(any::<u8>(), 0..600)) {
        fuzzing::ingest_request(&data);
        fuzzing::signature(&data);
        fuzzing::payload(&data);
        fuzzing::query_params(&data);
        fuzzing::search_query(&data);
    }

    #[test]
    fn a_correct_signature_verifies(
        secrets in vec(secret(), 1..4),
        signer in any::<prop::sample::Index>(),
        body in body(),
    ) {
        let secret = signer.get(&secrets);
        let headers = github_headers(&format!("sha256={}", hmac_hex(secret.as_bytes(), &body)));
        match verify(&headers, &body, &secrets) {
            Ok(()) => prop_assert!(serde_json::from_slice::<Value>(&body).is_ok()),
            // Authentic but not a JSON object: refused later, never as unsigned.
            Err(error) => prop_assert_eq!(error.code().status().as_u16(), 400, "{:?}", error),
        }
    }

    #[test]
    fn a_flipped_bit_in_the_body_is_refused(
        secret in secret(),
        body in body(),
        bit in any::<prop::sample::Index>(),
    ) {
        prop_assume!(!body.is_empty());
        let headers = github_headers(&format!("sha256={}", hmac_hex(secret.as_bytes(), &body)));
        let mut flipped = body.clone();
        let bit = bit.index(body.len() * 8);
        flipped[bit / 8] ^= 1 << (bit % 8);
        assert_401(verify(&headers, &flipped, &[secret]))?;
    }

    #[test]
    fn a_flipped_bit_in_the_digest_is_refused(
        secret in secret(),
        body in body(),
        bit in 0..256usize,
    ) {
        let flipped = fuzzing::flip_hex_bit(&hmac_hex(secret.as_bytes(), &body), bit);
        let headers = github_headers(&format!("sha256={flipped}"));
        assert_401(verify(&headers, &body, &[secret]))?;
    }

    /// Any bit of the header text, `sha256=` included. Flipping 0x20 of a hex letter
    /// only changes its case, which names the same digest: that one stays accepted.
    #[test]
    fn a_flipped_bit_in_the_signature_header_is_refused(
        secret in secret(),
        body in vec(any::<u8>(), 0..64),
        bit in 0..(71 * 8usize),
    ) {
        let body = serde_json::to_vec(&json!({"data": body})).unwrap();
        let mut header = format!("sha256={}", hmac_hex(secret.as_bytes(), &body)).into_bytes();
        let original = header[bit / 8];
        header[bit / 8] ^= 1 << (bit % 8);
        let Ok(value) = HeaderValue::from_bytes(&header) else {
            // Not a header value at all: nothing could send it.
            return Ok(());
        };
        let mut headers = github_headers("sha256=");
        headers.insert("x-hub-signature-256", value);
        let result = verify(&headers, &body, &[secret]);
        let same_digest = bit / 8 >= 7
            && original.is_ascii_hexdigit()
            && original.eq_ignore_ascii_case(&header[bit / 8]);
        if same_digest {
            prop_assert!(result.is_ok(), "{:?}", result);
        } else {
            assert_401(result)?;
        }
    }

    #[test]
    fn a_signature_made_with_another_secret_is_refused(
        secrets in vec(secret(), 0..4),
        other in secret(),
        body in body(),
    ) {
        prop_assume!(!secrets.contains(&other));
        let headers = github_headers(&format!("sha256={}", hmac_hex(other.as_bytes(), &body)));
        assert_401(verify(&headers, &body, &secrets))?;
    }

    /// Through the fuzz target's input format: a well-formed JSON or form delivery
    /// gets 200 when signed right, and 401 without a signature, with one bit off or
    /// with a secret not configured.
    #[test]
    fn well_formed_requests_get_the_status_their_signature_earns(
        mode in 0..4u8,
        form in any::<bool>(),
        secrets in vec(secret(), 1..4),
        signer in any::<u8>(),
        zen in any::<String>(),
    ) {
        let flags = secrets.len() as u8 | 0x04 | if form { 0x08 } else { 0 } | mode << 4;
        let mut data = vec![flags];
        for secret in &secrets {
            data.push(secret.len() as u8);
            data.extend(secret.as_bytes());
        }
        data.extend([0, signer]);
        data.extend(json!({"zen": zen}).to_string().as_bytes());
        let expected = if mode == 1 { 200 } else { 401 };
        prop_assert_eq!(fuzzing::request_status(&data), expected);
    }

    #[test]
    fn random_header_maps_are_refused_or_verified_correctly(
        headers in vec((header_name(), vec(any::<u8>(), 0..80)), 0..10),
        secrets in vec(secret(), 0..3),
        body in body(),
        check_ua in any::<bool>(),
    ) {
        let mut map = HeaderMap::new();
        for (name, value) in headers {
            if let Ok(value) = HeaderValue::from_bytes(&value) {
                map.append(name, value);
            }
        }
        let secrets: Vec<Secret> = secrets.into_iter().map(Secret::new).collect();
        fuzzing::check_delivery(&map, &body, &secrets, check_ua);
    }

    /// The first `payload` field is the payload, whatever surrounds it.
    #[test]
    fn form_bodies_decode_to_their_payload_field(
        pairs in vec((select(&["payload", "other", "payload[]", ""][..]), form_value()), 0..5),
    ) {
        let mut form = form_urlencoded::Serializer::new(String::new());
        for (key, value) in &pairs {
            form.append_pair(key, value);
        }
        let body = form.finish();
        fuzzing::payload(body.as_bytes());
        let expected = pairs.iter().find(|(key, _)| *key == "payload").map(|(_, value)| value);
        match (ingest::decode_payload(PayloadEncoding::Form, body.as_bytes()), expected) {
            (Ok(value), Some(raw)) => {
                prop_assert_eq!(value, serde_json::from_str::<Value>(raw).unwrap());
            }
            (Err(IngestError::FormWithoutPayload), None) => {}
            (Err(IngestError::InvalidJson(_) | IngestError::NotAnObject), Some(raw)) => {
                prop_assert!(!serde_json::from_str::<Value>(raw).is_ok_and(|v| v.is_object()));
            }
            (result, expected) => prop_assert!(false, "{:?} for payload {:?}", result, expected),
        }
    }

    /// Alone and with other parameters, so both reach the search.
    #[test]
    fn search_queries_are_answered_or_400(
        q in prop_oneof![2 => query(), 1 => vec(query_word(), 0..8).prop_map(|w| w.join(" "))],
        mut params in hash_map(search_parameter(), param_value(), 0..3),
    ) {
        fuzzing::search_params(&HashMap::from([("q".to_owned(), q.clone())]));
        params.insert("q".into(), q);
        fuzzing::search_params(&params);
    }

    /// Deep enough to overflow the server's stack in tantivy's parser, unless refused.
    #[test]
    fn deeply_nested_search_queries_are_refused(
        depth in 0..6000usize,
        open in select(&["(", "+(", "NOT (a AND ", "(a "][..]),
        word in query_word(),
    ) {
        let q = format!("{}{word}{}", open.repeat(depth), ")".repeat(depth));
        fuzzing::search_params(&HashMap::from([("q".to_owned(), q)]));
    }
}

fn header_name() -> impl Strategy<Value = http::HeaderName> {
    prop_oneof![
        select(
            &[
                "x-github-event",
                "x-github-delivery",
                "user-agent",
                "x-hub-signature-256",
                "content-type",
                "x-github-hook-id",
                "authorization",
            ][..]
        )
        .prop_map(http::HeaderName::from_static),
        "[a-z][a-z0-9-]{0,20}".prop_map(|n| http::HeaderName::from_bytes(n.as_bytes()).unwrap()),
    ]
}

/// JSON objects, other JSON, and text that is not JSON.
fn form_value() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>().prop_map(|s| json!({"zen": s}).to_string()),
        any::<i32>().prop_map(|n| json!([n]).to_string()),
        any::<String>(),
    ]
}

fn param_name() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => select(&[
            "limit", "offset", "status", "processed", "startDate", "endDate", "repository",
            "event", "action", "sender", "sort", "hours", "q",
        ][..]).prop_map(str::to_owned),
        1 => "[a-zA-Z]{0,8}",
    ]
}

fn search_parameter() -> impl Strategy<Value = String> {
    select(
        &[
            "limit",
            "offset",
            "sort",
            "startDate",
            "endDate",
            "repository",
            "event",
            "action",
            "sender",
        ][..],
    )
    .prop_map(str::to_owned)
}

/// Values near the edges of what the parsers accept, blank, padded or arbitrary.
fn param_value() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<i64>().prop_map(|n| n.to_string()),
        (0..1100u32).prop_map(|n| n.to_string()),
        Just("18446744073709551616".to_owned()),
        select(
            &[
                "",
                " ",
                "pending",
                "processed",
                "failed",
                "true",
                "false",
                "TRUE",
                "relevance",
                "newest",
                "oldest",
                "time",
                "activity",
                "recent",
                "name",
                "-0",
                "+5",
                "1e3",
            ][..]
        )
        .prop_map(str::to_owned),
        (0..10_000i32, 1..13u8, 1..32u8).prop_map(|(y, m, d)| format!("{y:04}-{m:02}-{d:02}")),
        (1900..2200i32, 0..24u8, -14..15i8)
            .prop_map(|(y, h, o)| { format!("{y}-06-15T{h:02}:30:00.123{o:+03}:00") }),
        select(&["", " ", "\t", "  "][..]).prop_map(str::to_owned),
        (
            select(
                &[
                    "10",
                    "0",
                    "1000",
                    "2024-01-01",
                    "failed",
                    "true",
                    "name",
                    "newest"
                ][..]
            ),
            select(&[" ", "\t"][..])
        )
            .prop_map(|(value, pad)| format!("{pad}{value}{pad}")),
        any::<String>(),
    ]
}

/// Queries that parse more often than not: words, `field:value`, `field:*`, phrases
/// and ranges, grouped with `+`, `-`, `NOT`, `AND` and `OR`, a few levels deep.
fn query() -> impl Strategy<Value = String> {
    const FIELDS: &[&str] = &[
        "event",
        "action",
        "repository",
        "sender",
        "status",
        "ref",
        "label",
        "delivery",
        "text",
        "seq",
        "received",
        "nofield",
    ];
    const VALUES: &[&str] = &[
        "push",
        "opened",
        "\"octo/app\"",
        "mona",
        "refs/heads/main",
        "failure",
        "fuzz-1",
        "1",
        "2024-01-01T00:00:00Z",
        "/event/push",
        "*",
    ];
    let atom = prop_oneof![
        select(
            &[
                "parser", "flux", "keep", "octo", "mona", "script", "88", "linux"
            ][..]
        )
        .prop_map(str::to_owned),
        (select(FIELDS), select(VALUES)).prop_map(|(f, v)| format!("{f}:{v}")),
        (select(&["parser flux", "build linux", "<input>", "a"][..]))
            .prop_map(|p| format!("\"{p}\"")),
        (
            select(FIELDS),
            select(&["0", "2020-01-01T00:00:00Z", "a"][..]),
            select(&["*", "10", "z"][..])
        )
            .prop_map(|(f, low, high)| format!("{f}:[{low} TO {high}]")),
    ];
    atom.prop_recursive(3, 24, 4, |inner| {
        (
            vec((select(&["", "+", "-", "NOT "][..]), inner), 1..4),
            select(&[" ", " AND ", " OR "][..]),
        )
            .prop_map(|(parts, joiner)| {
                let parts: Vec<String> = parts.iter().map(|(op, q)| format!("{op}{q}")).collect();
                format!("({})", parts.join(joiner))
            })
    })
}

/// Words of tantivy's query language, fields of the index and plain words.
fn query_word() -> impl Strategy<Value = String> {
    prop_oneof![
        select(
            &[
                "parser",
                "flux",
                "Keep",
                "AND",
                "OR",
                "NOT",
                "(",
                ")",
                "\"",
                "-",
                "+",
                "*",
                "~2",
                "^3",
                "event:push",
                "repository:\"octo/app\"",
                "action:opened",
                "sender:mona",
                "received:[2020-01-01T00:00:00Z TO *]",
                "seq:1",
                "seq:>0",
                "text:flux",
                "facet:/event",
                "delivery:fuzz-1",
                "IN [a b]",
                "ref:refs/heads/main",
                "nofield:x",
                "nofield:*",
                "text:*",
                "event:*",
                "<script>",
                "&amp;",
                "'",
                ":",
                "\\",
            ][..]
        )
        .prop_map(str::to_owned),
        "[a-z<>&]{1,6}",
        any::<String>(),
    ]
}

/// GitHub's documented test vector ("Validating webhook deliveries"): the checks'
/// own HMAC is right, so agreeing with it means something.
#[test]
fn fuzz_oracle_signs_like_github() {
    assert_eq!(
        hmac_hex(b"It's a Secret to Everybody", b"Hello, World!"),
        "757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
    );
}
