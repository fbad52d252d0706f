//! Scoped API tokens: shown once, stored only as a hash, `read` < `write` < `admin`
//! enforced on every route, revocation at once, and the `hookvault token` command.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::bearer::call;
use crate::helpers::{TestApp, fixture, new_id};

const ADMIN: &str = "admin-token-0123456789";

async fn with_admin_token() -> TestApp {
    TestApp::spawn_with(|c| c.api_token = Some(hookvault::config::Secret::new(ADMIN))).await
}

async fn create(app: &TestApp, body: Value) -> String {
    let (status, answer) = call(app, Method::POST, "/api/tokens", ADMIN, Some(body)).await;
    assert_eq!(status, StatusCode::CREATED, "{answer}");
    answer["data"]["token"].as_str().unwrap().to_owned()
}

/// Every file under `dir`, read whole.
fn files(dir: &std::path::Path) -> Vec<(std::path::PathBuf, Vec<u8>)> {
    let mut all = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            all.extend(files(&path));
        } else {
            all.push((path.clone(), std::fs::read(&path).unwrap()));
        }
    }
    all
}

#[tokio::test]
async fn a_token_is_shown_once_and_the_data_dir_never_holds_it() {
    let app = with_admin_token().await;
    let (status, answer) = call(
        &app,
        Method::POST,
        "/api/tokens",
        ADMIN,
        Some(json!({"name": "ci-reader", "scope": "read"})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{answer}");
    let token = answer["data"]["token"].as_str().unwrap().to_owned();
    assert!(token.starts_with("hvt_") && token.len() == 68, "{token}");
    assert_eq!(answer["data"]["scope"], "read");
    assert!(answer["data"]["lastUsedAt"].is_null());

    let (status, body) = call(&app, Method::GET, "/api/webhooks/events", &token, None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, listed) = call(&app, Method::GET, "/api/tokens", ADMIN, None).await;
    assert_eq!(status, StatusCode::OK);
    let entry = &listed["data"][0];
    assert_eq!(entry["name"], "ci-reader");
    assert!(entry["lastUsedAt"].is_string(), "{listed}");
    assert!(!listed.to_string().contains(&token[4..]), "{listed}");
    let (status, _) = call(
        &app,
        Method::POST,
        "/api/tokens",
        ADMIN,
        Some(json!({"name": "ci-reader", "scope": "admin"})),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT);

    // Stopped, so everything is on disk: no file holds the token or its random part.
    let mut app = app;
    app.stop().await;
    let secret = &token.as_bytes()[4..];
    for (path, bytes) in files(app.data_dir.path()) {
        assert!(
            !bytes.windows(secret.len()).any(|w| w == secret),
            "{} holds the token",
            path.display()
        );
    }
    // And it still works after the restart (its hash was kept).
    app.start_again_on_same_port().await;
    let (status, _) = call(&app, Method::GET, "/api/webhooks/statistics", &token, None).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn each_scope_gets_only_what_it_allows() {
    let app = with_admin_token().await;
    let id = new_id();
    let (status, _) = app
        .post_signed("push", &id, &fixture("push", 0).bytes)
        .await;
    assert_eq!(status, StatusCode::OK);
    let read = create(&app, json!({"name": "r", "scope": "read"})).await;
    let write = create(&app, json!({"name": "w", "scope": "write"})).await;
    let admin = create(&app, json!({"name": "a", "scope": "admin"})).await;

    let test_event = json!({"eventType": "push", "repository": "octo-org/app"});
    let writes = [
        (Method::POST, format!("/api/webhooks/replay/{id}"), None),
        (Method::POST, "/api/webhooks/retry-failed".to_owned(), None),
        (
            Method::POST,
            "/api/webhooks/test".to_owned(),
            Some(test_event),
        ),
        (Method::DELETE, "/api/webhooks/test".to_owned(), None),
    ];
    let admin_only = [
        (Method::GET, "/api/tokens".to_owned(), None),
        (
            Method::POST,
            "/api/tokens".to_owned(),
            Some(json!({"name": "x", "scope": "admin"})),
        ),
        (Method::DELETE, "/api/tokens/r".to_owned(), None),
        (Method::GET, "/api/filters".to_owned(), None),
        (
            Method::PUT,
            "/api/filters".to_owned(),
            Some(json!({"deny": ["event:push"]})),
        ),
        (Method::GET, "/api/forwarding/targets".to_owned(), None),
        (Method::GET, "/api/webhooks/rejected".to_owned(), None),
        (Method::GET, "/api/webhooks/ignored".to_owned(), None),
        (Method::GET, "/api/export".to_owned(), None),
    ];
    for path in [
        "/api/webhooks/events",
        &format!("/api/webhooks/events/{id}"),
        "/api/webhooks/statistics",
        "/api/webhooks/search?q=push",
        "/api/repositories",
        "/metrics",
    ] {
        let (status, body) = call(&app, Method::GET, path, &read, None).await;
        assert_eq!(status, StatusCode::OK, "{path}: {body}");
    }
    for (method, path, body) in writes.iter().chain(&admin_only) {
        let (status, answer) = call(&app, method.clone(), path, &read, body.clone()).await;
        assert_eq!(
            status,
            StatusCode::FORBIDDEN,
            "read {method} {path}: {answer}"
        );
        assert_eq!(answer["error"]["code"], "forbidden");
    }
    for (method, path, body) in &writes {
        let (status, answer) = call(&app, method.clone(), path, &write, body.clone()).await;
        assert!(status.is_success(), "write {method} {path}: {answer}");
    }
    for (method, path, body) in &admin_only {
        let (status, answer) = call(&app, method.clone(), path, &write, body.clone()).await;
        assert_eq!(
            status,
            StatusCode::FORBIDDEN,
            "write {method} {path}: {answer}"
        );
    }
    // An admin token manages tokens like HOOKVAULT_API_TOKEN does.
    let (status, answer) = call(&app, Method::DELETE, "/api/tokens/w", &admin, None).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let (status, _) = call(&app, Method::GET, "/api/filters", &admin, None).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn a_revoked_token_is_refused_at_once_and_after_a_restart() {
    let app = with_admin_token().await;
    let token = create(&app, json!({"name": "gone", "scope": "write"})).await;
    let (status, _) = call(&app, Method::GET, "/api/webhooks/events", &token, None).await;
    assert_eq!(status, StatusCode::OK);
    let (status, answer) = call(&app, Method::DELETE, "/api/tokens/gone", ADMIN, None).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let (status, answer) = call(&app, Method::GET, "/api/webhooks/events", &token, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{answer}");
    let (status, _) = call(&app, Method::DELETE, "/api/tokens/gone", ADMIN, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let app = app.restart().await;
    let (status, _) = call(&app, Method::GET, "/api/webhooks/events", &token, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (_, listed) = call(&app, Method::GET, "/api/tokens", ADMIN, None).await;
    assert_eq!(listed["data"], json!([]));
}

#[tokio::test]
async fn a_revoked_token_is_refused_even_to_a_local_caller_without_an_api_token() {
    let app = TestApp::spawn().await;
    let (status, answer) = app
        .post_json("/api/tokens", json!({"name": "local", "scope": "read"}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{answer}");
    let token = answer["data"]["token"].as_str().unwrap().to_owned();
    let (status, _) = call(&app, Method::GET, "/api/webhooks/events", &token, None).await;
    assert_eq!(status, StatusCode::OK);
    let response = app.client.delete(app.url("/api/tokens/local")).send().await;
    assert_eq!(response.unwrap().status(), StatusCode::OK);
    // Not the local admin it would be without presenting anything.
    let (status, _) = call(&app, Method::GET, "/api/webhooks/events", &token, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = app.get_json("/api/webhooks/events").await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn bad_requests_and_limited_tokens() {
    let app = with_admin_token().await;
    for bad in [
        json!({"name": "", "scope": "read"}),
        json!({"name": "x", "scope": "owner"}),
        json!({"name": "x", "scope": "read", "repositories": ["no-slash"]}),
        json!({"name": "x", "scope": "read", "organizations": ["a/b"]}),
        json!({"name": "x"}),
        json!(["x", "read"]),
    ] {
        let (status, answer) =
            call(&app, Method::POST, "/api/tokens", ADMIN, Some(bad.clone())).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {answer}");
    }
    // A limited token reads its organizations' events (tests/api/isolation.rs), and
    // nothing about the whole instance.
    let limited = create(
        &app,
        json!({"name": "octo", "scope": "read", "organizations": ["octo-org"]}),
    )
    .await;
    let (status, answer) = call(&app, Method::GET, "/api/webhooks/events", &limited, None).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let (status, answer) = call(&app, Method::GET, "/metrics", &limited, None).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{answer}");
    let (status, _) = call(
        &app,
        Method::GET,
        "/api/webhooks/events/types",
        &limited,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_token_command_creates_lists_and_revokes() {
    let app = with_admin_token().await;
    let run = |args: &[&str]| {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_hookvault"))
            .args(["token", "--url", &app.address, "--token", ADMIN])
            .args(args)
            .env_remove("HOOKVAULT_API_TOKEN")
            .output()
            .expect("hookvault runs");
        (
            output.status.success(),
            String::from_utf8(output.stdout).unwrap(),
            String::from_utf8(output.stderr).unwrap(),
        )
    };
    let (ok, token, err) = tokio::task::block_in_place(|| {
        run(&[
            "create", "--name", "cli", "--scope", "read", "--org", "octo-org",
        ])
    });
    assert!(ok, "{err}");
    let token = token.trim().to_owned();
    assert!(token.starts_with("hvt_"), "{token}");
    let (ok, listed, err) = tokio::task::block_in_place(|| run(&["list"]));
    assert!(ok, "{err}");
    assert!(listed.starts_with("cli\tread\tocto-org\t"), "{listed}");
    assert!(!listed.contains(&token));
    let (ok, _, err) = tokio::task::block_in_place(|| run(&["revoke", "cli"]));
    assert!(ok, "{err}");
    let (ok, _, err) = tokio::task::block_in_place(|| run(&["revoke", "cli"]));
    assert!(!ok && err.contains("404"), "{err}");
    let (status, _) = call(&app, Method::GET, "/api/openapi.json", &token, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}
