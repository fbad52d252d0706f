//! What redb's crash-safety options cost in durable commits per second on this disk,
//! with commits shaped like hookvault's group commits (10 deliveries: ~1.5 KB
//! compressed payload, metadata, headers, four index entries each), and how long
//! opening takes after a crash with each. Decides the store's settings (README
//! "Durability").
//!
//!     cargo bench --bench commit_modes -- [--commits 3000] [--events 200000]

use std::time::{Duration, Instant};

use redb::{Database, Durability, ReadableDatabase, ReadableTableMetadata, TableDefinition};

const PAYLOADS: TableDefinition<u64, &[u8]> = TableDefinition::new("payloads");
const EVENTS: TableDefinition<u64, &[u8]> = TableDefinition::new("events");
const INDEX: TableDefinition<(&str, &str, i64, u64), ()> = TableDefinition::new("index");

#[derive(Clone, Copy, Debug)]
enum Mode {
    Default,
    TwoPhase,
    QuickRepair,
}

fn arg(name: &str, default: u64) -> u64 {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn commit(db: &Database, mode: Mode, seq: &mut u64, payload: &[u8], record: &[u8]) {
    let mut txn = db.begin_write().unwrap();
    txn.set_durability(Durability::Immediate).unwrap();
    match mode {
        Mode::Default => {}
        Mode::TwoPhase => txn.set_two_phase_commit(true),
        Mode::QuickRepair => txn.set_quick_repair(true),
    }
    {
        let mut payloads = txn.open_table(PAYLOADS).unwrap();
        let mut events = txn.open_table(EVENTS).unwrap();
        let mut index = txn.open_table(INDEX).unwrap();
        for _ in 0..10 {
            *seq += 1;
            let s = *seq;
            payloads.insert(s, payload).unwrap();
            events.insert(s, record).unwrap();
            let repo = format!("org/repo-{}", s % 40);
            let ts = s as i64;
            for (field, value) in [
                ("all", ""),
                ("event", "push"),
                ("repository", repo.as_str()),
                ("status", "pending"),
            ] {
                index.insert((field, value, ts, s), ()).unwrap();
            }
        }
    }
    txn.commit().unwrap();
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--child") {
        return child(&args[i + 1], std::path::Path::new(&args[i + 2]));
    }
    let commits = arg("--commits", 3000);
    let events = arg("--events", 200_000);
    println!("{commits} durable commits of 10 deliveries each; crash after {events} deliveries");
    println!("| mode | durable commits/s | deliveries/s | open after crash |");
    println!("|---|---|---|---|");
    for mode in ["Default", "TwoPhase", "QuickRepair"] {
        let dir = tempfile::tempdir_in(std::env::var("BENCH_DIR").unwrap_or_else(|_| ".".into()))
            .unwrap();
        let path = dir.path().join("bench.redb");
        // The writes happen in a child process that exits without closing the
        // database, as a SIGKILL would leave it.
        let output = std::process::Command::new(&args[0])
            .args(["--child", mode])
            .arg(&path)
            .args([
                "--commits",
                &commits.to_string(),
                "--events",
                &events.to_string(),
            ])
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let rate: f64 = String::from_utf8_lossy(&output.stdout)
            .trim()
            .parse()
            .unwrap();
        let started = Instant::now();
        let db = Database::builder()
            .set_cache_size(64 << 20)
            .create(&path)
            .unwrap();
        let open_time = started.elapsed();
        let count = db
            .begin_read()
            .unwrap()
            .open_table(EVENTS)
            .unwrap()
            .len()
            .unwrap();
        assert!(count >= events, "{count} < {events}");
        println!(
            "| {mode} | {rate:.0} | {:.0} | {} |",
            rate * 10.0,
            format_duration(open_time)
        );
    }
}

fn child(mode: &str, path: &std::path::Path) {
    let mode = match mode {
        "TwoPhase" => Mode::TwoPhase,
        "QuickRepair" => Mode::QuickRepair,
        _ => Mode::Default,
    };
    let payload = vec![0x5Au8; 1500];
    let record = vec![0x11u8; 250];
    let db = Database::builder()
        .set_cache_size(64 << 20)
        .create(path)
        .unwrap();
    let mut seq = 0;
    let started = Instant::now();
    for _ in 0..arg("--commits", 3000) {
        commit(&db, mode, &mut seq, &payload, &record);
    }
    let rate = arg("--commits", 3000) as f64 / started.elapsed().as_secs_f64();
    while seq < arg("--events", 200_000) {
        commit(&db, mode, &mut seq, &payload, &record);
    }
    println!("{rate}");
    // Ends the process with the database still open: no clean shutdown.
    std::process::exit(0);
}

fn format_duration(d: Duration) -> String {
    format!("{:.0} ms", d.as_secs_f64() * 1000.0)
}
