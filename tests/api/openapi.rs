//! The served OpenAPI description matches the routes actually mounted: the
//! documented set is exactly the API's route table, walked from the mounted router,
//! and every documented operation answers (not the fallback's "no such route", not
//! 405).

use std::collections::{BTreeSet, HashMap};

use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::helpers::TestApp;

const METHODS: &[&str] = &[
    "get", "head", "delete", "options", "patch", "post", "put", "trace", "connect",
];

/// The API's routes as mounted, as (method, path): walked from the router that
/// `hookvault::api::router` mounts ([`hookvault::api::routes`]). axum has no API
/// that lists a router's routes, but its `Debug` output names each route's path and
/// which methods have a handler; a route mounted whole (a service, a nest) is listed
/// with the method `*`. Should that output change, this fails instead of passing.
fn mounted_routes() -> BTreeSet<(String, String)> {
    let (router, _) = hookvault::api::routes(hookvault::guard::access::Access::new(None));
    let text = format!("{router:?}");
    let main = text
        .split(", fallback_router: ")
        .next()
        .expect("a Router's Debug output");
    let (routes, paths) = main
        .split_once("node: Node { paths: {")
        .unwrap_or_else(|| panic!("no route paths in the router's Debug output: {text}"));
    let mut path_of = HashMap::new();
    for entry in paths.split("RouteId(").skip(1) {
        let (id, rest) = entry.split_once("): \"").expect("RouteId(n): \"path\"");
        path_of.insert(id, rest.split('"').next().unwrap().to_owned());
    }
    let mut mounted = BTreeSet::new();
    let mut route_count = 0;
    for entry in routes.split("RouteId(").skip(1) {
        route_count += 1;
        let (id, endpoint) = entry.split_once("): ").expect("RouteId(n): endpoint");
        let path = path_of
            .get(id)
            .unwrap_or_else(|| panic!("route {id} has no path: {text}"));
        let Some(fields) = endpoint.strip_prefix("MethodRouter(MethodRouter { ") else {
            mounted.insert(("*".to_owned(), path.clone()));
            continue;
        };
        let before = mounted.len();
        for field in fields.split(", ") {
            if let Some((method, handler)) = field.split_once(": ")
                && METHODS.contains(&method)
                && handler != "None"
            {
                mounted.insert((method.to_owned(), path.clone()));
            }
        }
        assert!(mounted.len() > before, "no method read for {path}: {text}");
    }
    assert!(
        route_count > 0 && route_count == path_of.len(),
        "{route_count} routes and {} paths read from {text}",
        path_of.len()
    );
    mounted
}

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
    let mut mounted = mounted_routes();
    assert!(
        mounted.remove(&("get".to_owned(), "/api/openapi.json".to_owned())),
        "the description is served: {mounted:?}"
    );
    let undocumented: Vec<_> = mounted.difference(&documented).collect();
    let unmounted: Vec<_> = documented.difference(&mounted).collect();
    assert!(
        undocumented.is_empty() && unmounted.is_empty(),
        "mounted but not documented: {undocumented:?}; documented but not mounted: {unmounted:?}"
    );

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
    let mut with_params = Vec::new();
    for (path, item) in spec["paths"].as_object().unwrap() {
        if path.contains('{') {
            with_params.extend(
                item.as_object()
                    .unwrap()
                    .keys()
                    .map(|m| (m.clone(), path.clone())),
            );
        }
    }
    assert!(with_params.len() >= 9, "{with_params:?}");
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
