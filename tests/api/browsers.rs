//! Browsers on the same machine: a loopback-only instance must not be
//! driven by another site's page — neither by a cross-site "simple request" (no
//! preflight), nor through DNS rebinding (a foreign name resolving to 127.0.0.1).
//! Requests are sent with the headers a browser adds (`Origin`, `Sec-Fetch-Site`,
//! `Host`); scripts without them keep working.

use reqwest::StatusCode;
use reqwest::header::{CONTENT_TYPE, HOST, ORIGIN};
use serde_json::Value;

use crate::helpers::{TestApp, fixture, new_id};

const EVIL: &str = "https://evil.example";

/// `host:port` of the app, as a browser on the same machine sends it.
fn own_host(app: &TestApp) -> String {
    app.address.trim_start_matches("http://").to_owned()
}

async fn status_and_code(response: reqwest::Response) -> (StatusCode, String) {
    let status = response.status();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    (
        status,
        body["error"]["code"].as_str().unwrap_or("").to_owned(),
    )
}

/// A failed event to replay: a `workflow_job` without its `workflow_job` object.
async fn a_failed_event(app: &TestApp) -> String {
    let id = new_id();
    let (status, body) = app
        .post_signed("workflow_job", &id, br#"{"action":"queued"}"#)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    app.wait_for(&id, |e| e["status"] == "failed").await;
    id
}

#[tokio::test]
async fn cross_site_simple_requests_are_refused_and_scripts_still_work() {
    let app = TestApp::spawn_with(|c| c.max_retries = 0).await;
    let failed = a_failed_event(&app).await;
    let attempts = |e: &Value| e["attempts"].as_u64().unwrap();
    let before = app.wait_for(&failed, |_| true).await;

    // What a page on another site can send without a preflight: text/plain, a form,
    // or no body at all.
    let probes: Vec<(String, Option<&str>, &str)> = vec![
        (
            "/api/webhooks/test".into(),
            Some("text/plain"),
            r#"{"eventType":"push"}"#,
        ),
        (
            "/api/webhooks/retry-failed".into(),
            Some("application/x-www-form-urlencoded"),
            "a=b",
        ),
        (format!("/api/webhooks/replay/{failed}"), None, ""),
    ];
    for (path, content_type, body) in &probes {
        for (header, value) in [
            ("origin", EVIL),
            ("origin", "null"),
            ("sec-fetch-site", "cross-site"),
            ("sec-fetch-site", "same-site"),
        ] {
            let mut request = app
                .client
                .post(app.url(path))
                .header(header, value)
                .body(body.to_string());
            if let Some(content_type) = content_type {
                request = request.header(CONTENT_TYPE, *content_type);
            }
            let (status, code) = status_and_code(request.send().await.unwrap()).await;
            assert_eq!(
                status,
                StatusCode::FORBIDDEN,
                "{path} with {header}: {value}"
            );
            assert_eq!(code, "cross_site_request");
        }
    }
    assert_eq!(app.count("").await, 1, "no test event was stored");
    let after = app.wait_for(&failed, |_| true).await;
    assert_eq!(attempts(&after), attempts(&before), "nothing was replayed");

    // The same requests from a script (no browser headers), and from the instance's
    // own page, work as documented.
    let own_origin = app.address.clone();
    for origin in [None, Some(own_origin.as_str())] {
        let mut replay = app
            .client
            .post(app.url(&format!("/api/webhooks/replay/{failed}")));
        let mut retry = app.client.post(app.url("/api/webhooks/retry-failed"));
        if let Some(origin) = origin {
            replay = replay
                .header(ORIGIN, origin)
                .header("sec-fetch-site", "same-origin");
            retry = retry
                .header(ORIGIN, origin)
                .header("sec-fetch-site", "same-origin");
        }
        assert_eq!(replay.send().await.unwrap().status(), StatusCode::OK);
        assert_eq!(retry.send().await.unwrap().status(), StatusCode::OK);
    }
    let after = app.wait_for(&failed, |_| true).await;
    assert!(attempts(&after) > attempts(&before));

    // `test` reads its body only as JSON.
    let (status, code) = status_and_code(
        app.client
            .post(app.url("/api/webhooks/test"))
            .header(CONTENT_TYPE, "text/plain")
            .body(r#"{"eventType":"push"}"#)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(code, "unsupported_media_type");
    assert_eq!(app.count("").await, 1);
    let (status, _) = app
        .post_json(
            "/api/webhooks/test",
            serde_json::json!({"eventType": "push"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn configured_origins_may_call_with_cors() {
    let app = TestApp::spawn_with(|c| {
        c.cors_origins = hookvault::guard::CorsOrigins::parse("https://ci.example.com").unwrap();
    })
    .await;
    let allowed = app
        .client
        .post(app.url("/api/webhooks/retry-failed"))
        .header(ORIGIN, "https://ci.example.com")
        .header("sec-fetch-site", "cross-site")
        .send()
        .await
        .unwrap();
    assert_eq!(allowed.status(), StatusCode::OK);
    let other = app
        .client
        .post(app.url("/api/webhooks/retry-failed"))
        .header(ORIGIN, EVIL)
        .send()
        .await
        .unwrap();
    assert_eq!(other.status(), StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn a_foreign_host_name_is_refused_on_the_api_dashboard_and_socket_io() {
    let app = TestApp::spawn().await;
    let port = own_host(&app).rsplit_once(':').unwrap().1.to_owned();
    let id = new_id();
    let (status, _) = app
        .post_signed("ping", &id, &fixture("ping", 0).bytes)
        .await;
    assert_eq!(status, StatusCode::OK);

    let paths = [
        "/api/webhooks/events".to_owned(),
        format!("/api/webhooks/events/{id}"),
        format!("/api/webhooks/events/{id}/raw"),
        "/metrics".to_owned(),
        "/dashboard".to_owned(),
        "/socket.io/?EIO=4&transport=polling".to_owned(),
    ];
    let get = |path: &str, host: &str| {
        app.client
            .get(app.url(path))
            .header(HOST, host.to_owned())
            .send()
    };
    for path in &paths {
        // DNS rebinding: the name is the attacker's, the address is loopback.
        let (status, code) =
            status_and_code(get(path, &format!("evil.example:{port}")).await.unwrap()).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{path}");
        assert_eq!(code, "host_not_allowed", "{path}");
        for host in [own_host(&app), format!("localhost:{port}")] {
            let response = get(path, &host).await.unwrap();
            assert!(
                response.status().is_success(),
                "{path} under {host}: {}",
                response.status()
            );
        }
    }
    // The engine.io handshake under the right name really opens a session.
    let open = get("/socket.io/?EIO=4&transport=polling", &own_host(&app))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(open.starts_with("0{\"sid\""), "{open}");

    // Ingest answers whatever Host GitHub was configured with.
    let delivery = crate::helpers::Delivery::new("ping", &new_id(), &fixture("ping", 0).bytes)
        .with("Host", "hooks.example.com");
    let (status, body) = app.post(delivery).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[tokio::test]
async fn configured_host_names_are_answered() {
    let app = TestApp::spawn_with(|c| {
        c.allowed_hosts = hookvault::guard::AllowedHosts::parse("hooks.example.com").unwrap();
    })
    .await;
    let get = |host: &'static str| {
        app.client
            .get(app.url("/api/webhooks/events"))
            .header(HOST, host)
            .send()
    };
    assert_eq!(
        get("hooks.example.com").await.unwrap().status(),
        StatusCode::OK
    );
    assert_eq!(
        get("evil.example").await.unwrap().status(),
        StatusCode::FORBIDDEN
    );
}

#[tokio::test]
async fn the_dashboard_may_not_be_framed() {
    let app = TestApp::spawn().await;
    let response = app.client.get(app.url("/dashboard")).send().await.unwrap();
    let csp = response.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    assert_eq!(response.headers()["x-frame-options"], "DENY");
}

/// `HOOKVAULT_CORS_ORIGINS=*` opens the API to other sites only when every caller
/// must send a token. The token generated into the data directory lets local callers
/// in without it, so a page on another site, in a browser on this machine, stays
/// refused.
#[tokio::test]
async fn the_generated_token_does_not_open_cors_to_every_site() {
    let token = "generated-token-0123456789abcdef";
    let app = TestApp::spawn_with(|c| {
        c.cors_origins = hookvault::guard::CorsOrigins::Any;
        c.api_token = Some(hookvault::config::Secret::new(token));
        c.api_token_source =
            hookvault::config::SecretSource::LoadedFromFile(c.data_dir.join("api-token"));
    })
    .await;
    let cross_site = app
        .client
        .post(app.url("/api/webhooks/retry-failed"))
        .header(ORIGIN, EVIL)
        .header("sec-fetch-site", "cross-site")
        .send()
        .await
        .unwrap();
    let (status, code) = status_and_code(cross_site).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(code, "cross_site_request");
    // A script on this machine still needs no token.
    let local = app
        .client
        .post(app.url("/api/webhooks/retry-failed"))
        .send()
        .await
        .unwrap();
    assert_eq!(local.status(), StatusCode::OK);
}
