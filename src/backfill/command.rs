//! `hookvault backfill`: a thin client of `POST /api/backfill` on a running
//! instance. The missing delivery ids go to standard output, one a line (for
//! scripts); what the run did goes to standard error.

use std::process::ExitCode;

use reqwest::Method;
use serde_json::{Value, json};

use crate::config::{BackfillArgs, Config};

pub fn run(config: &Config, args: &BackfillArgs) -> ExitCode {
    if let Err(problem) = super::summary::parse_since(&args.since) {
        return crate::commands::refuse(format!("--since: {problem}"));
    }
    let (base, token) =
        crate::commands::running_instance(config, args.url.as_deref(), args.token.as_deref());
    let url = format!("{base}/api/backfill");
    let body = json!({"since": args.since, "dryRun": args.dry_run});
    // No overall timeout: a run waits out GitHub's rate limits when it must.
    let call = crate::commands::ask_instance(Method::POST, &url, token, Some(body), None);
    match crate::commands::runtime().block_on(call) {
        Ok(summary) => report(&summary),
        Err(e) => {
            eprintln!("hookvault backfill: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Prints the run; exit 0 for a run without errors, 1 otherwise.
fn report(summary: &Value) -> ExitCode {
    let n = |field: &str| summary[field].as_u64().unwrap_or(0);
    for id in summary["missingIds"].as_array().into_iter().flatten() {
        println!("{}", id.as_str().unwrap_or_default());
    }
    let dry_run = summary["dryRun"].as_bool().unwrap_or(false);
    eprintln!(
        "backfill{}: checked {} deliveries since {}: {} missing{}",
        if dry_run { " (dry run)" } else { "" },
        n("checked"),
        summary["since"].as_str().unwrap_or("?"),
        n("missing"),
        if dry_run {
            String::new()
        } else {
            format!(
                ", {} redeliveries requested, {} arrived",
                n("requested"),
                n("confirmed")
            )
        }
    );
    if n("inFlight") + n("gaveUp") > 0 {
        eprintln!(
            "  {} already being redelivered, {} given up after 3 redeliveries",
            n("inFlight"),
            n("gaveUp")
        );
    }
    for hook in summary["hooks"].as_array().into_iter().flatten() {
        eprintln!(
            "  {}: checked {}, missing {}, requested {}",
            hook["hook"].as_str().unwrap_or("?"),
            hook["checked"],
            hook["missing"],
            hook["requested"]
        );
    }
    let errors = summary["errors"].as_array().cloned().unwrap_or_default();
    for error in &errors {
        eprintln!("  error: {}", error.as_str().unwrap_or_default());
    }
    match errors.is_empty() {
        true => ExitCode::SUCCESS,
        false => ExitCode::FAILURE,
    }
}
