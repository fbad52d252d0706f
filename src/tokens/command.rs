//! `hookvault token create|list|revoke`: a thin client of `/api/tokens` on a running
//! instance (the store is the server's while it runs). Without `HOOKVAULT_API_TOKEN`
//! a client on the server's own machine may manage tokens, like the API allows.

use std::process::ExitCode;
use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};

use crate::config::{Config, TokenAction, TokenArgs};

pub fn run(config: &Config, args: &TokenArgs) -> ExitCode {
    let (base, token) =
        crate::commands::running_instance(config, args.url.as_deref(), args.token.as_deref());
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
    let call =
        crate::commands::ask_instance(method, &url, token, body, Some(Duration::from_secs(30)));
    let answer = crate::commands::runtime().block_on(call);
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
