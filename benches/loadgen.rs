//! Load generator: signed GitHub deliveries built from `fixtures/`, each made unique
//! (fresh delivery id, mutated entity ids) so neither dedup layer collapses them.
//!
//! ```text
//! cargo bench --bench loadgen -- --url http://127.0.0.1:3000 --secret S \
//!     [--concurrency 32] [--seconds 10] [--rate 1000] [--ledger acked.txt] [--size 8192]
//!     [--max-requests N] [--exclude-events code_scanning_alert,dependabot_alert]
//! ```
//! Closed loop by default (`--concurrency` requests in flight); `--rate` switches to an
//! open loop at that many deliveries per second. Prints requests/s, status counts and
//! latency percentiles from an HDR histogram; `--ledger` writes the id of every
//! delivery acknowledged as a new event, one a line, for `ledger_check`. Deliveries are
//! built before the clock starts (60,000 per second of the run unless `--max-requests`
//! caps them); a closed-loop run that uses them all up ends early and reports its real
//! duration. `--exclude-events` leaves the fixtures of those event types out (the
//! realtime bench sends a mix without the security alerts, which go to every connected
//! Socket.IO client).

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;
use tokio::sync::Mutex;

struct Args {
    url: String,
    secret: String,
    concurrency: usize,
    seconds: u64,
    rate: Option<u64>,
    ledger: Option<String>,
    size: usize,
    max_requests: Option<usize>,
    exclude_events: Vec<String>,
}

fn parse_args() -> Args {
    let mut args = Args {
        url: "http://127.0.0.1:3000".into(),
        secret: String::new(),
        concurrency: 32,
        seconds: 10,
        rate: None,
        ledger: None,
        size: 8192,
        max_requests: None,
        exclude_events: Vec::new(),
    };
    let mut it = std::env::args().skip(1).filter(|a| a != "--bench");
    while let Some(flag) = it.next() {
        let mut value = || it.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--url" => args.url = value(),
            "--secret" => args.secret = value(),
            "--concurrency" => args.concurrency = value().parse().expect("--concurrency"),
            "--seconds" => args.seconds = value().parse().expect("--seconds"),
            "--rate" => args.rate = Some(value().parse().expect("--rate")),
            "--ledger" => args.ledger = Some(value()),
            "--size" => args.size = value().parse().expect("--size"),
            "--max-requests" => args.max_requests = Some(value().parse().expect("--max-requests")),
            "--exclude-events" => {
                args.exclude_events = value().split(',').map(str::to_owned).collect();
            }
            other => panic!("unknown flag {other}"),
        }
    }
    args
}

/// Fixture payloads near the target size, with their event types.
fn templates(target: usize, exclude: &[String]) -> Vec<(String, Value)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures");
    let mut all = Vec::new();
    for dir in std::fs::read_dir(root)
        .unwrap()
        .flatten()
        .filter(|d| d.path().is_dir())
    {
        let event = dir.file_name().to_string_lossy().into_owned();
        if exclude.contains(&event) {
            continue;
        }
        for file in std::fs::read_dir(dir.path()).unwrap().flatten() {
            let bytes = std::fs::read(file.path()).unwrap();
            if bytes.len() * 4 >= target * 3 && bytes.len() * 4 <= target * 5 {
                all.push((event.clone(), serde_json::from_slice(&bytes).unwrap()));
            }
        }
    }
    assert!(!all.is_empty(), "no fixture near {target} bytes");
    all
}

/// Gives every top-level object's `id`, `number`, `node_id`, `ghsa_id` and
/// `head_sha` and `commit`, and the payload's `after`, `sha`, `ref`, `starred_at`
/// and first page a unique value.
fn make_unique(payload: &mut Value, n: u64) {
    if let Value::Object(map) = payload {
        for value in map.values_mut() {
            if let Some(id) = value.get_mut("id").filter(|id| id.is_u64()) {
                *id = Value::from(1_000_000_000_000 + n);
            }
            if let Some(number) = value.get_mut("number").filter(|v| v.is_u64()) {
                *number = Value::from(n);
            }
            // Entities named by a string (review threads, sponsorships, advisories,
            // merge groups).
            for (key, prefix) in [
                ("node_id", "N_"),
                ("ghsa_id", "GHSA-"),
                ("head_sha", ""),
                ("commit", ""),
            ] {
                if let Some(text) = value.get_mut(key).filter(|v| v.is_string()) {
                    *text = Value::from(format!("{prefix}{n:040x}"));
                }
            }
        }
        // Events named by a ref or a commit rather than an id (create, delete, status,
        // gollum) get their own too, or the content key would fold them together.
        for key in ["after", "sha"] {
            if map.contains_key(key) {
                map.insert(key.into(), Value::from(format!("{n:040x}")));
            }
        }
        if let Some(Value::String(at)) = map.get_mut("starred_at") {
            *at = format!("2020-01-01T00:00:00.{n}Z");
        }
        if let Some(Value::String(name)) = map.get_mut("ref") {
            name.push_str(&format!("-{n}"));
        }
        if let Some(Value::Object(page)) = map.get_mut("pages").and_then(|p| p.get_mut(0)) {
            page.insert("sha".into(), Value::from(format!("{n:040x}")));
        }
    }
}

struct Prepared {
    event: String,
    id: String,
    body: bytes::Bytes,
    signature: String,
}

/// Builds and signs `count` deliveries, split over every core: a closed-loop run at
/// tens of thousands per second needs hundreds of thousands of them.
fn prepare(templates: &[(String, Value)], secret: &str, count: usize, run: u128) -> Vec<Prepared> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let per_thread = count.div_ceil(threads).max(1);
    std::thread::scope(|scope| {
        let parts: Vec<_> = (0..count)
            .step_by(per_thread)
            .map(|start| {
                let end = (start + per_thread).min(count);
                scope.spawn(move || {
                    (start..end)
                        .map(|n| prepare_one(templates, secret, n, run))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        parts
            .into_iter()
            .flat_map(|part| part.join().unwrap())
            .collect()
    })
}

fn prepare_one(templates: &[(String, Value)], secret: &str, n: usize, run: u128) -> Prepared {
    let (event, template) = &templates[n % templates.len()];
    let mut payload = template.clone();
    // Unique across runs too: a second run against the same store must not be
    // folded into the first by the content key.
    make_unique(
        &mut payload,
        (run % 100_000_000) as u64 * 10_000_000 + n as u64,
    );
    let body = serde_json::to_vec(&payload).unwrap();
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(&body);
    Prepared {
        event: event.clone(),
        id: format!("bench-{run:x}-{n}"),
        signature: format!("sha256={}", hex::encode(mac.finalize().into_bytes())),
        body: body.into(),
    }
}

#[derive(Default)]
struct Tally {
    statuses: BTreeMap<String, u64>,
    latency_us: Option<Histogram<u64>>,
    acked: Vec<String>,
}

async fn send(client: &reqwest::Client, url: &str, delivery: &Prepared, tally: &Mutex<Tally>) {
    let started = Instant::now();
    let result = client
        .post(url)
        .header("X-GitHub-Event", &delivery.event)
        .header("X-GitHub-Delivery", &delivery.id)
        .header("User-Agent", "GitHub-Hookshot/loadgen")
        .header("Content-Type", "application/json")
        .header("X-Hub-Signature-256", &delivery.signature)
        .body(delivery.body.clone())
        .send()
        .await;
    let status = match result {
        Ok(response) => {
            let status = response.status().as_u16().to_string();
            let body = response.bytes().await.unwrap_or_default();
            // Acknowledged but folded into an earlier delivery: not a new event.
            const DUPLICATE: &[u8] = br#""status":"duplicate""#;
            if body.windows(DUPLICATE.len()).any(|w| w == DUPLICATE) {
                format!("{status} duplicate")
            } else {
                status
            }
        }
        Err(e) if e.is_timeout() => "timeout".into(),
        Err(_) => "error".into(),
    };
    let micros = started.elapsed().as_micros() as u64;
    let mut tally = tally.lock().await;
    // Only new events go in the ledger: a duplicate names an earlier one.
    if status == "200" {
        tally.acked.push(delivery.id.clone());
    }
    *tally.statuses.entry(status).or_default() += 1;
    tally
        .latency_us
        .get_or_insert_with(|| Histogram::new(3).unwrap())
        .record(micros.max(1))
        .unwrap();
}

#[tokio::main]
async fn main() {
    let args = parse_args();
    let templates = templates(args.size, &args.exclude_events);
    let expected = args.rate.map_or(60_000 * args.seconds as usize, |r| {
        (r * args.seconds) as usize + 1
    });
    let run = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let count = expected.min(args.max_requests.unwrap_or(2_000_000));
    let deliveries = Arc::new(prepare(&templates, &args.secret, count, run));
    let mean_size = deliveries.iter().map(|d| d.body.len()).sum::<usize>() / deliveries.len();
    // reqwest comes without a rustls crypto provider: hookvault's is ring.
    hookvault::server::tls::install_provider();
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(args.concurrency.max(64))
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let url = format!("{}/api/webhooks/github", args.url);
    let tally = Arc::new(Mutex::new(Tally::default()));
    let deadline = Instant::now() + Duration::from_secs(args.seconds);
    let started = Instant::now();
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));

    match args.rate {
        None => {
            let workers: Vec<_> = (0..args.concurrency)
                .map(|_| {
                    let (client, url, tally, deliveries, next) = (
                        client.clone(),
                        url.clone(),
                        tally.clone(),
                        deliveries.clone(),
                        next.clone(),
                    );
                    tokio::spawn(async move {
                        while Instant::now() < deadline {
                            let n = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                            let Some(delivery) = deliveries.get(n) else {
                                break;
                            };
                            send(&client, &url, delivery, &tally).await;
                        }
                    })
                })
                .collect();
            for worker in workers {
                worker.await.unwrap();
            }
        }
        Some(rate) => {
            let mut ticker = tokio::time::interval(Duration::from_nanos(1_000_000_000 / rate));
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
            let mut in_flight = tokio::task::JoinSet::new();
            for delivery in 0..deliveries.len() {
                ticker.tick().await;
                if Instant::now() >= deadline {
                    break;
                }
                let (client, url, tally, deliveries) = (
                    client.clone(),
                    url.clone(),
                    tally.clone(),
                    deliveries.clone(),
                );
                in_flight
                    .spawn(async move { send(&client, &url, &deliveries[delivery], &tally).await });
            }
            while in_flight.join_next().await.is_some() {}
        }
    }

    let elapsed = started.elapsed().as_secs_f64();
    let tally = tally.lock().await;
    let total: u64 = tally.statuses.values().sum();
    let histogram = tally
        .latency_us
        .clone()
        .unwrap_or_else(|| Histogram::new(3).unwrap());
    let ms = |q: f64| histogram.value_at_quantile(q) as f64 / 1000.0;
    println!(
        "requests={total} seconds={elapsed:.2} rate={:.0}/s mean_body={mean_size}B mode={} statuses={:?}",
        total as f64 / elapsed,
        args.rate
            .map_or(format!("closed-loop x{}", args.concurrency), |r| format!(
                "open-loop {r}/s"
            )),
        tally.statuses
    );
    println!(
        "latency_ms p50={:.2} p99={:.2} p99.9={:.2} max={:.2}",
        ms(0.5),
        ms(0.99),
        ms(0.999),
        histogram.max() as f64 / 1000.0
    );
    if let Some(path) = &args.ledger {
        let mut file = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
        for id in &tally.acked {
            writeln!(file, "{id}").unwrap();
        }
    }
}
