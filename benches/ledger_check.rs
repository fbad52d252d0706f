//! Confirms the load generator's ledger against the store: every delivery it saw
//! acknowledged as stored must be in `hookvault export` exactly once.
//!
//! ```text
//! hookvault export --data-dir D | ledger_check acked.txt [more-acked.txt …]
//! ```
//! Reads the export from standard input (streamed: a million events are ~10 GB of
//! NDJSON), prints `acknowledged=… found=… missing=… repeated=… exported=…` and
//! exits 1 when an acknowledged delivery is missing or exported more than once.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::process::ExitCode;

use serde::Deserialize;

/// The one field of an export line this check reads; serde skips the rest.
#[derive(Deserialize)]
struct ExportLine {
    #[serde(rename = "deliveryId")]
    delivery_id: String,
}

fn main() -> ExitCode {
    let ledgers: Vec<String> = std::env::args().skip(1).collect();
    if ledgers.is_empty() {
        eprintln!("usage: hookvault export --data-dir D | ledger_check ACKED_FILE…");
        return ExitCode::FAILURE;
    }
    // Acknowledged id → times it appears in the export.
    let mut seen: HashMap<String, u32> = HashMap::new();
    for ledger in &ledgers {
        let text = std::fs::read_to_string(ledger)
            .unwrap_or_else(|e| panic!("reading the ledger {ledger}: {e}"));
        seen.extend(text.lines().map(|id| (id.to_owned(), 0)));
    }

    let mut exported = 0u64;
    let mut line = String::new();
    let mut input = BufReader::with_capacity(1 << 20, std::io::stdin().lock());
    while input.read_line(&mut line).expect("reading the export") > 0 {
        let parsed: ExportLine = serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("export line {}: {e}", exported + 1));
        if let Some(times) = seen.get_mut(&parsed.delivery_id) {
            *times += 1;
        }
        exported += 1;
        line.clear();
    }

    let missing: Vec<&String> = seen
        .iter()
        .filter(|(_, times)| **times == 0)
        .map(|(id, _)| id)
        .collect();
    let repeated = seen.values().filter(|times| **times > 1).count();
    println!(
        "acknowledged={} found={} missing={} repeated={repeated} exported={exported}",
        seen.len(),
        seen.len() - missing.len(),
        missing.len(),
    );
    for id in missing.iter().take(10) {
        println!("missing: {id}");
    }
    if missing.is_empty() && repeated == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
