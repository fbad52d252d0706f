//! The served OpenAPI description matches the routes actually mounted: every
//! documented operation answers (not the fallback's "no such route", not 405), and
//! the documented set is exactly the API's route table.

use std::collections::BTreeSet;

use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::helpers::TestApp;

const EXPECTED: &[(&str, &str)] = &[
    ("post", "/api/webhooks/github"),
    ("get", "/api/webhooks/events"),
    ("get", "/api/webhooks/events/{delivery_id}"),
    ("get", "/api/webhooks/events/{delivery_id}/raw"),
    ("get", "/api/webhooks/events/types"),
    ("get", "/api/webhooks/statistics"),
    ("get", "/api/webhooks/health"),
    ("get", "/api/webhooks/failed"),
    ("get", "/api/webhooks/rejected"),
    ("post", "/api/webhooks/replay/{delivery_id}"),
    ("post", "/api/webhooks/retry-failed"),
    ("post", "/api/webhooks/test"),
    ("delete", "/api/webhooks/test"),
    ("get", "/api/webhooks/search"),
    ("get", "/api/repositories"),
    ("get", "/api/repositories/{owner}/{repo}"),
    ("get", "/metrics"),
    ("get", "/api/backup"),
    ("get", "/api/export"),
    ("get", "/api/forwarding/targets"),
    ("post", "/api/forwarding/targets"),
    ("get", "/api/forwarding/targets/{name}"),
    ("put", "/api/forwarding/targets/{name}"),
    ("delete", "/api/forwarding/targets/{name}"),
    ("get", "/api/forwarding/targets/{name}/failed"),
    ("post", "/api/forwarding/targets/{name}/resend"),
    ("get", "/api/backfill"),
    ("post", "/api/backfill"),
    ("get", "/api/actions/queue"),
    ("get", "/api/actions/runners"),
    ("get", "/api/actions/insights"),
];

#[tokio::test]
async fn the_openapi_description_matches_the_mounted_routes() {
    let app = TestApp::spawn().await;
    let (status, spec) = app.get_json("/api/openapi.json").await;
    assert_eq!(status, StatusCode::OK);
    assert!(spec["openapi"].as_str().unwrap().starts_with("3."));
    assert_eq!(spec["info"]["title"], "hookvault");
    assert_eq!(
        spec["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );

    let mut documented = BTreeSet::new();
    for (path, item) in spec["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            documented.insert((method.clone(), path.clone()));
            let responses = operation["responses"].as_object().unwrap();
            assert!(
                ["200", "201", "202"]
                    .iter()
                    .any(|s| responses.contains_key(*s)),
                "{method} {path} documents its success"
            );
            let public = path == "/api/webhooks/github" || path == "/api/webhooks/health";
            if !public {
                assert!(
                    responses.contains_key("401"),
                    "{method} {path} documents access control"
                );
            }
            assert_eq!(
                operation["security"],
                if public {
                    Value::Null
                } else {
                    serde_json::json!([{"bearer": []}])
                },
                "{method} {path} names the bearer scheme exactly when it needs the token"
            );
        }
    }
    let expected: BTreeSet<(String, String)> = EXPECTED
        .iter()
        .map(|(m, p)| (m.to_string(), p.to_string()))
        .collect();
    assert_eq!(documented, expected);

    for (method, path) in &documented {
        let concrete = path
            .replace("{delivery_id}", "no-such-delivery")
            .replace("{owner}/{repo}", "nobody/nothing");
        let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
        let response = app
            .client
            .request(method.clone(), app.url(&concrete))
            .send()
            .await
            .unwrap();
        let status = response.status();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        assert_ne!(status, StatusCode::METHOD_NOT_ALLOWED, "{method} {path}");
        assert_ne!(
            body["error"]["message"], "no such route",
            "{method} {path} is documented but not mounted"
        );
    }
    // And the other way round: an undocumented path is the fallback.
    let (status, body) = app.get_json("/api/webhooks/nonexistent").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["error"]["message"], "no such route");
}

/// Found by probing past schemathesis: axum's own rejections (a path segment that is
/// not UTF-8, a body over the 2 MB default) were plain-text responses with status
/// codes the description did not list. Each is now a documented JSON error.
#[tokio::test]
async fn extractor_rejections_are_documented_json_errors() {
    let app = TestApp::spawn().await;
    let (_, spec) = app.get_json("/api/openapi.json").await;
    let with_params: Vec<(String, String)> = EXPECTED
        .iter()
        .filter(|(_, path)| path.contains('{'))
        .map(|(m, p)| (m.to_string(), p.to_string()))
        .collect();
    assert_eq!(with_params.len(), 9);
    let mut probes: Vec<(String, String, String, Vec<u8>)> = with_params
        .into_iter()
        .map(|(method, path)| {
            let concrete = path
                .replace("{delivery_id}", "%FF")
                .replace("{owner}", "%C3%28")
                .replace("{name}", "%FF");
            (method, path, concrete, Vec::new())
        })
        .collect();
    let oversized = format!(
        "{{\"eventType\": \"push\", \"pad\": \"{}\"}}",
        "x".repeat(3 << 20)
    );
    probes.push((
        "post".into(),
        "/api/webhooks/test".into(),
        "/api/webhooks/test".into(),
        oversized.into_bytes(),
    ));
    for (method, path, concrete, body) in probes {
        let response = app
            .client
            .request(
                Method::from_bytes(method.to_uppercase().as_bytes()).unwrap(),
                app.url(&concrete),
            )
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        let status = response.status();
        let content_type = response.headers()[reqwest::header::CONTENT_TYPE].clone();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        assert!(
            status.is_client_error(),
            "{method} {concrete}: {status} {body}"
        );
        assert!(
            spec["paths"][&path][&method]["responses"][status.as_str()].is_object(),
            "{method} {path} answers {status}, which it does not document"
        );
        assert_eq!(content_type, "application/json", "{method} {concrete}");
        assert_eq!(body["success"], false, "{method} {concrete}: {body}");
        assert!(
            body["error"]["code"].is_string(),
            "{method} {concrete}: {body}"
        );
    }
}

#[tokio::test]
async fn a_method_a_route_does_not_answer_is_a_json_405_with_allow() {
    let app = TestApp::spawn().await;
    let response = app
        .client
        .delete(app.url("/api/webhooks/events"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
    let allow = response.headers()["allow"].to_str().unwrap().to_owned();
    assert!(allow.contains("GET"), "{allow}");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "method_not_allowed");
}
