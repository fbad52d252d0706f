//! CPU per event of the payload work outside the store, in process: parsing a whole
//! payload (what a stage or a Socket.IO message asks for), ingest's parse of the parts
//! it reads (`Payload::parse`), the fixed lookups every event goes through (fields,
//! content key, structure check and facts, search text), and the index's pruned parse
//! (what the indexer and each search hit read).
//!
//! ```text
//! cargo bench --bench payload
//! ```
//! Every fixture (compact JSON, as GitHub sends it), 20 passes a round, three rounds.

#[path = "common/mod.rs"]
mod common;

use std::hint::black_box;
use std::time::Instant;

use hookvault::domain::{ContentKey, EventFields, EventType, PayloadEncoding};
use hookvault::ingest::{Payload, decode_payload};
use hookvault::process::analyze;
use hookvault::search::{payload_of, text_of};

const PASSES: usize = 20;

fn main() {
    let corpus = common::corpus();
    let bodies: Vec<(EventType, bytes::Bytes)> = corpus
        .iter()
        .map(|(event, payload)| {
            let event = EventType::parse(event).expect("fixture folders are event types");
            (event, serde_json::to_vec(payload).unwrap().into())
        })
        .collect();
    let mean = bodies.iter().map(|(_, b)| b.len()).sum::<usize>() / bodies.len();
    println!("{} fixtures, mean {mean} B of compact JSON", bodies.len());

    let per_event = |run: &dyn Fn()| {
        let started = Instant::now();
        for _ in 0..PASSES {
            run();
        }
        started.elapsed().as_secs_f64() * 1e6 / (PASSES * bodies.len()) as f64
    };
    for round in 1..=3 {
        let whole = per_event(&|| {
            for (_, body) in &bodies {
                black_box(decode_payload(PayloadEncoding::Json, body).unwrap());
            }
        });
        let ingest = per_event(&|| {
            for (_, body) in &bodies {
                black_box(Payload::parse(PayloadEncoding::Json, body.clone()).unwrap());
            }
        });
        let lookups = per_event(&|| {
            for ((event, body), (_, payload)) in bodies.iter().zip(&corpus) {
                let fields = EventFields::extract(payload);
                black_box(ContentKey::derive(event, payload, body));
                black_box(analyze(event.as_str(), fields.action.as_deref(), payload).ok());
                black_box(text_of(payload));
            }
        });
        let pruned = per_event(&|| {
            for (_, body) in &bodies {
                black_box(text_of(&payload_of(PayloadEncoding::Json, body)));
            }
        });
        println!(
            "round {round}: whole parse {whole:.1} µs/event; ingest's parts {ingest:.1} µs/event; \
             lookups {lookups:.1} µs/event; index's pruned parse + text {pruned:.1} µs/event"
        );
    }
}
