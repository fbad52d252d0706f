//! `hookvault token create|list|revoke`: a thin client of `/api/tokens` on a running
//! instance (the store is the server's while it runs). Without `HOOKVAULT_API_TOKEN`
//! a client on the server's own machine may manage tokens, like the API allows.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use reqwest::Method;
use serde_json::{Value, json};

use crate::config::{Config, TokenAction, TokenArgs};

pub fn run(config: &Config, args: &TokenArgs) -> ExitCode {
    let base = match &args.url {
        Some(url) => url.trim_end_matches('/').to_owned(),
        None => crate::banner::Banner::new(config, config.listen)
            .local_url()
            .to_owned(),
    };
    let token = args
        .token
        .clone()
        .or_else(|| config.api_token.as_ref().map(|t| t.expose().to_owned()));
    let (method, path, body) = match &args.action {
        TokenAction::Create {
            name,
            scope,
            org,
            repo,
        } => (
            Method::POST,
            "/api/tokens".to_owned(),
            Some(json!({"name": name, "scope": scope, "organizations": org, "repositories": repo})),
        ),
        TokenAction::List => (Method::GET, "/api/tokens".to_owned(), None),
        TokenAction::Revoke { name } => (
            Method::DELETE,
            format!("/api/tokens/{}", urlencode(name)),
            None,
        ),
    };
    let url = format!("{base}{path}");
    let answer = crate::commands::runtime().block_on(call(method, &url, token, body));
    match (answer, &args.action) {
        (Err(e), _) => {
            eprintln!("hookvault token: {e:#}");
            ExitCode::FAILURE
        }
        (Ok(data), TokenAction::Create { .. }) => {
            // The token alone on standard output, for scripts; shown this once.
            println!("{}", data["token"].as_str().unwrap_or_default());
            eprintln!(
                "token {} ({}) created; it is shown only now",
                data["name"].as_str().unwrap_or("?"),
                data["scope"].as_str().unwrap_or("?")
            );
            ExitCode::SUCCESS
        }
        (Ok(data), TokenAction::List) => {
            for t in data.as_array().into_iter().flatten() {
                let limits: Vec<&str> = ["organizations", "repositories"]
                    .iter()
                    .flat_map(|f| t[*f].as_array().into_iter().flatten())
                    .filter_map(Value::as_str)
                    .collect();
                println!(
                    "{}\t{}\t{}\tcreated {}\tlast used {}",
                    t["name"].as_str().unwrap_or("?"),
                    t["scope"].as_str().unwrap_or("?"),
                    if limits.is_empty() {
                        "everything".to_owned()
                    } else {
                        limits.join(",")
                    },
                    t["createdAt"].as_str().unwrap_or("?"),
                    t["lastUsedAt"].as_str().unwrap_or("never"),
                );
            }
            ExitCode::SUCCESS
        }
        (Ok(_), TokenAction::Revoke { name }) => {
            eprintln!("token {name} revoked");
            ExitCode::SUCCESS
        }
    }
}

fn urlencode(text: &str) -> String {
    form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

async fn call(
    method: Method,
    url: &str,
    token: Option<String>,
    body: Option<Value>,
) -> anyhow::Result<Value> {
    crate::server::tls::install_provider();
    let client = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(10))
        .timeout(Duration::from_secs(30))
        .build()?;
    let mut request = client.request(method, url);
    if let Some(body) = body {
        request = request
            .header("Content-Type", "application/json")
            .body(body.to_string());
    }
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request
        .send()
        .await
        .with_context(|| format!("cannot reach {url}"))?;
    let status = response.status();
    let answer: Value = serde_json::from_slice(&response.bytes().await?).unwrap_or_default();
    if !status.is_success() {
        let message = answer["error"]["message"].as_str().unwrap_or("no message");
        anyhow::bail!("{url} answered {status}: {message}");
    }
    Ok(answer["data"].clone())
}
