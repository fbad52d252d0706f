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
    ("get", "/api/webhooks/search"),
    ("get", "/api/repositories"),
    ("get", "/api/repositories/{owner}/{repo}"),
    ("get", "/metrics"),
];

#[tokio::test]
async fn the_openapi_description_matches_the_mounted_routes() {
    let app = TestApp::spawn().await;
    let (status, spec) = app.get_json("/api/openapi.json").await;
    assert_eq!(status, StatusCode::OK);
    assert!(spec["openapi"].as_str().unwrap().starts_with("3."));
    assert_eq!(spec["info"]["title"], "hookvault");

    let mut documented = BTreeSet::new();
    for (path, item) in spec["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            documented.insert((method.clone(), path.clone()));
            let responses = operation["responses"].as_object().unwrap();
            assert!(
                responses.contains_key("200"),
                "{method} {path} documents its success"
            );
            if path != "/api/webhooks/github" && path != "/api/webhooks/health" {
                assert!(
                    responses.contains_key("401"),
                    "{method} {path} documents access control"
                );
            }
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
