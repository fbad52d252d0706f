//! Requests with a bearer token: what tests of scoped tokens send.

use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::TestApp;

/// A request with a bearer token (and a JSON body); the status and the JSON answer.
pub async fn call(
    app: &TestApp,
    method: reqwest::Method,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut request = app.client.request(method, app.url(path)).bearer_auth(token);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.expect("request sent");
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}
