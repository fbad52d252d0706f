//! The guards in front of the API: lockout after wrong tokens, the
//! per-client rate limit behind a trusted proxy, the ingest concurrency cap, CORS.
//! Remote clients are simulated the way they arrive in production: through a
//! trusted proxy on loopback that names them in `X-Forwarded-For`.

use std::num::NonZeroU32;

use futures::future::join_all;
use hookvault::config::Secret;
use hookvault::guard::{CorsOrigins, MAX_FAILURES, RateLimit};
use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{Delivery, TestApp, fixture, new_id};

const TOKEN: &str = "correct-horse-battery-staple";

async fn spawn_behind_proxy(rate_per_second: Option<u32>) -> TestApp {
    TestApp::spawn_with(|c| {
        c.api_token = Some(Secret::new(TOKEN));
        c.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()];
        c.rate_limit = rate_per_second
            .and_then(NonZeroU32::new)
            .map(|per_second| RateLimit { per_second });
    })
    .await
}

/// GET as `client` (via the proxy), with `token`: status and `Retry-After`.
async fn get_as(app: &TestApp, client: &str, token: &str, path: &str) -> (StatusCode, Option<u64>) {
    let response = app
        .client
        .get(app.url(path))
        .header("X-Forwarded-For", client)
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let retry_after = response
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().parse().unwrap());
    (response.status(), retry_after)
}

/// GETs `path` as the clients `client(i)` names until `limited` answers were 429:
/// the answers, and the most a limit of `per_second` may let through in the time
/// they took (the burst of twice the rate, then one per 1/rate s). A slow machine
/// lets more through and the bound grows with it; timing cannot fail the test.
async fn until_limited(
    app: &TestApp,
    client: impl Fn(usize) -> String,
    path: &str,
    limited: usize,
    per_second: u32,
) -> (Vec<(StatusCode, Option<u64>)>, usize) {
    let started = std::time::Instant::now();
    let mut answers: Vec<(StatusCode, Option<u64>)> = Vec::new();
    while answers
        .iter()
        .filter(|(s, _)| *s == StatusCode::TOO_MANY_REQUESTS)
        .count()
        < limited
    {
        assert!(
            answers.len() < 1000,
            "1,000 requests and not {limited} limited: {answers:?}"
        );
        answers.push(get_as(app, &client(answers.len()), TOKEN, path).await);
    }
    let refills = (started.elapsed().as_secs_f64() * f64::from(per_second)).ceil();
    (answers, 2 * per_second as usize + refills as usize)
}

fn allowed(answers: &[(StatusCode, Option<u64>)]) -> usize {
    answers.iter().filter(|(s, _)| *s == StatusCode::OK).count()
}

#[tokio::test]
async fn a_client_that_keeps_guessing_the_token_is_locked_out() {
    let app = spawn_behind_proxy(None).await;
    let guesser = "198.51.100.7";
    for attempt in 1..=MAX_FAILURES {
        let (status, _) = get_as(
            &app,
            guesser,
            &format!("guess-{attempt}"),
            "/api/webhooks/events",
        )
        .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "attempt {attempt}");
    }
    // Locked: even the right token is refused now, with a time to come back.
    let (status, retry_after) = get_as(&app, guesser, TOKEN, "/api/webhooks/events").await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert!(
        retry_after.is_some_and(|s| (1..=60).contains(&s)),
        "{retry_after:?}"
    );
    // Another client behind the same proxy is not affected.
    let (status, _) = get_as(&app, "198.51.100.8", TOKEN, "/api/webhooks/events").await;
    assert_eq!(status, StatusCode::OK);
    // Health stays public and unaffected.
    let (status, _) = get_as(&app, guesser, "", "/api/webhooks/health").await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn each_client_has_its_own_request_rate_and_ingest_is_not_counted() {
    let app = spawn_behind_proxy(Some(2)).await; // bursts of 4
    let one = |_| "203.0.113.1".to_owned();
    let (statuses, most) = until_limited(&app, one, "/api/webhooks/statistics", 6, 2).await;
    assert!(
        (4..=most).contains(&allowed(&statuses)),
        "the burst, and at most {most}: {statuses:?}"
    );
    assert!(statuses.iter().all(|(status, retry)| match *status {
        StatusCode::OK => true,
        StatusCode::TOO_MANY_REQUESTS => retry.is_some_and(|s| s >= 1),
        _ => false,
    }));
    assert_eq!(statuses[0].0, StatusCode::OK);

    let (status, _) = get_as(&app, "203.0.113.2", TOKEN, "/api/webhooks/statistics").await;
    assert_eq!(status, StatusCode::OK, "another client has its own budget");

    // The limited client can still deliver webhooks: GitHub would not retry a 429.
    for _ in 0..5 {
        let body = fixture("ping", 1).bytes;
        let delivery =
            Delivery::new("ping", &new_id(), &body).with("X-Forwarded-For", "203.0.113.1");
        let (status, answer) = app.post(delivery).await;
        assert_eq!(status, StatusCode::OK, "{answer}");
    }
}

#[tokio::test]
async fn a_forwarded_header_from_an_untrusted_peer_does_not_change_the_client() {
    // No trusted proxy: every request below is the same client (127.0.0.1), and
    // because it carries X-Forwarded-For it is not a direct local one either.
    let app = TestApp::spawn_with(|c| {
        c.api_token = Some(Secret::new(TOKEN));
        c.rate_limit = NonZeroU32::new(1).map(|per_second| RateLimit { per_second });
    })
    .await;
    let rotating = |i| format!("192.0.2.{}", i % 250);
    let (answers, most) = until_limited(&app, rotating, "/api/webhooks/events", 5, 1).await;
    assert!(
        allowed(&answers) <= most,
        "rotating X-Forwarded-For escaped the limit: {} allowed, at most {most}",
        allowed(&answers)
    );
}

#[tokio::test]
async fn direct_local_clients_are_not_rate_limited() {
    let app = TestApp::spawn_with(|c| {
        c.rate_limit = NonZeroU32::new(1).map(|per_second| RateLimit { per_second });
    })
    .await;
    for _ in 0..20 {
        let (status, body) = app.get_json("/api/webhooks/events?limit=1").await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
}

#[tokio::test]
async fn past_the_concurrency_cap_deliveries_get_503_and_are_not_stored() {
    let app = TestApp::spawn_with(|c| {
        c.max_concurrent_ingest = 1;
        c.dedup_ttl = std::time::Duration::ZERO;
    })
    .await;
    let body = fixture("push", 1).bytes;
    let ids: Vec<String> = (0..64).map(|_| new_id()).collect();
    let answers = join_all(ids.iter().map(|id| async {
        let response = app
            .client
            .post(app.url("/api/webhooks/github"))
            .headers(headers_of(&Delivery::new("push", id, &body)))
            .body(body.clone())
            .send()
            .await
            .unwrap();
        let retry_after = response.headers().get("retry-after").cloned();
        let status = response.status();
        let json: Value = response.json().await.unwrap();
        (id.clone(), status, retry_after, json)
    }))
    .await;

    let refused: Vec<&String> = answers
        .iter()
        .filter(|(_, status, ..)| *status == StatusCode::SERVICE_UNAVAILABLE)
        .map(|(id, ..)| id)
        .collect();
    assert!(
        !refused.is_empty(),
        "64 concurrent deliveries never exceeded a cap of 1"
    );
    for (id, status, retry_after, json) in &answers {
        match *status {
            StatusCode::OK => assert_eq!(json["data"]["status"], "stored", "{id}"),
            StatusCode::SERVICE_UNAVAILABLE => {
                assert_eq!(json["error"]["code"], "overloaded");
                assert_eq!(retry_after.as_ref().unwrap(), "1");
            }
            other => panic!("unexpected {other} for {id}: {json}"),
        }
    }
    let stored = app.listed_ids("").await;
    assert_eq!(stored.len(), 64 - refused.len());
    assert!(refused.iter().all(|id| !stored.contains(id)));

    // GitHub's redelivery of the refused ones (same ids) is stored, once each.
    for id in &refused {
        let (status, json) = app.post(Delivery::new("push", id, &body)).await;
        assert_eq!(status, StatusCode::OK, "{json}");
    }
    assert_eq!(app.listed_ids("").await.len(), 64);
}

fn headers_of(delivery: &Delivery) -> reqwest::header::HeaderMap {
    delivery
        .headers
        .iter()
        .map(|(name, value)| {
            (
                reqwest::header::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                value.parse().unwrap(),
            )
        })
        .collect()
}

async fn preflight(app: &TestApp, origin: &str) -> reqwest::Response {
    app.client
        .request(reqwest::Method::OPTIONS, app.url("/api/webhooks/events"))
        .header("Origin", origin)
        .header("Access-Control-Request-Method", "GET")
        .header("Access-Control-Request-Headers", "authorization")
        .send()
        .await
        .unwrap()
}

fn allowed_origin(response: &reqwest::Response) -> Option<&str> {
    response
        .headers()
        .get("access-control-allow-origin")
        .map(|v| v.to_str().unwrap())
}

#[tokio::test]
async fn cors_is_closed_by_default() {
    let app = TestApp::spawn().await;
    let response = preflight(&app, "https://evil.example").await;
    assert_eq!(allowed_origin(&response), None);
    let response = app
        .client
        .get(app.url("/api/webhooks/events"))
        .header("Origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(allowed_origin(&response), None);
}

#[tokio::test]
async fn cors_allows_exactly_the_configured_origins() {
    let app = TestApp::spawn_with(|c| {
        c.cors_origins = CorsOrigins::parse("https://ci.example.com").unwrap();
    })
    .await;
    let response = preflight(&app, "https://ci.example.com").await;
    assert_eq!(allowed_origin(&response), Some("https://ci.example.com"));
    let allowed_headers = response.headers()["access-control-allow-headers"]
        .to_str()
        .unwrap()
        .to_ascii_lowercase();
    assert!(
        allowed_headers.contains("authorization"),
        "{allowed_headers}"
    );
    assert!(
        response
            .headers()
            .get("access-control-allow-credentials")
            .is_none()
    );
    let response = preflight(&app, "https://evil.example").await;
    assert_eq!(allowed_origin(&response), None);

    let any = TestApp::spawn_with(|c| c.cors_origins = CorsOrigins::Any).await;
    let response = preflight(&any, "https://anywhere.example").await;
    assert_eq!(allowed_origin(&response), Some("*"));
    assert!(
        response
            .headers()
            .get("access-control-allow-credentials")
            .is_none()
    );
}

#[tokio::test]
async fn the_hosts_own_processes_are_not_locked_out() {
    let app = TestApp::spawn_with(|c| c.api_token = Some(Secret::new(TOKEN))).await;
    for attempt in 0..MAX_FAILURES * 2 {
        let response = app
            .client
            .get(app.url("/api/webhooks/events"))
            .bearer_auth(format!("guess-{attempt}"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    }
    let response = app
        .client
        .get(app.url("/api/webhooks/events"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
}

/// nginx's `proxy_set_header X-Real-IP $remote_addr;` without `X-Forwarded-For`, and
/// the headers of CDNs: each names a client behind a proxy, so none is local.
#[tokio::test]
async fn any_client_address_header_from_an_untrusted_peer_is_not_local() {
    let app = TestApp::spawn().await;
    for header in [
        "X-Real-IP",
        "True-Client-IP",
        "CF-Connecting-IP",
        "Fastly-Client-IP",
        "X-Client-IP",
        "X-Cluster-Client-IP",
        "X-Forwarded-For",
        "Forwarded",
    ] {
        let value = if header == "Forwarded" {
            "for=203.0.113.9"
        } else {
            "203.0.113.9"
        };
        let response = app
            .client
            .get(app.url("/api/webhooks/events"))
            .header(header, value)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{header}");
    }
    // Behind a trusted proxy that names the client in the documented header, the
    // client is that address: remote, so a token is needed.
    let proxied =
        TestApp::spawn_with(|c| c.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()]).await;
    let response = proxied
        .client
        .get(proxied.url("/api/webhooks/events"))
        .header("X-Forwarded-For", "203.0.113.9")
        .header("X-Real-IP", "203.0.113.9")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        proxied.get_json("/api/webhooks/events").await.0,
        StatusCode::OK,
        "the host itself, not proxied"
    );
}
