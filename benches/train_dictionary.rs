//! Trains the zstd dictionary hookvault compresses payloads with, from the fixtures
//! (every example payload GitHub documents, compacted as GitHub sends them), and
//! reports how it compresses payloads it was not trained on (train on half, test on
//! the other half) against plain zstd, and what each compression level costs per
//! payload with the dictionary prepared as the store prepares it.
//!
//!     cargo bench --bench train_dictionary                 # report only
//!     cargo bench --bench train_dictionary -- --write PATH # also write the dictionary
//!
//! A dictionary in use is never replaced: stored payloads name it by id. A new one
//! goes in a new file with a new id, and the old one stays for decoding.

use std::path::Path;
use std::time::Instant;

const DICTIONARY_BYTES: usize = 16 * 1024;
const LEVEL: i32 = 3;
/// Times over the test half when timing each level.
const LEVEL_ROUNDS: usize = 100;

fn main() {
    let bodies = compact_fixtures();
    let (train, test): (Vec<&Vec<u8>>, Vec<&Vec<u8>>) = {
        let (a, b): (Vec<_>, Vec<_>) = bodies.iter().enumerate().partition(|(i, _)| i % 2 == 0);
        (
            a.into_iter().map(|x| x.1).collect(),
            b.into_iter().map(|x| x.1).collect(),
        )
    };
    let raw: usize = test.iter().map(|b| b.len()).sum();
    let plain: usize = test
        .iter()
        .map(|b| zstd::bulk::compress(b, LEVEL).unwrap().len())
        .sum();
    let half = zstd::dict::from_samples(&train, DICTIONARY_BYTES).unwrap();
    let mut compressor = zstd::bulk::Compressor::with_dictionary(LEVEL, &half).unwrap();
    let with_dict: usize = test
        .iter()
        .map(|b| compressor.compress(b).unwrap().len())
        .sum();
    println!(
        "{} payloads not trained on, {:.0} B each: plain zstd-{LEVEL} {:.3} of raw, with a {} KiB dictionary {:.3} of raw",
        test.len(),
        raw as f64 / test.len() as f64,
        plain as f64 / raw as f64,
        DICTIONARY_BYTES / 1024,
        with_dict as f64 / raw as f64,
    );

    for level in [1, 2, 3] {
        let prepared = zstd::dict::EncoderDictionary::copy(&half, level);
        let mut compressor = zstd::bulk::Compressor::with_prepared_dictionary(&prepared).unwrap();
        let mut compressed = 0;
        let started = Instant::now();
        for _ in 0..LEVEL_ROUNDS {
            for body in &test {
                compressed += compressor.compress(body).unwrap().len();
            }
        }
        let payloads = (LEVEL_ROUNDS * test.len()) as f64;
        println!(
            "level {level} with the dictionary: {:.3} of raw, {:.1} µs per payload",
            compressed as f64 / (raw * LEVEL_ROUNDS) as f64,
            started.elapsed().as_secs_f64() * 1e6 / payloads,
        );
    }

    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--write") {
        let dictionary = zstd::dict::from_samples(&bodies, DICTIONARY_BYTES).unwrap();
        std::fs::write(&args[i + 1], &dictionary).unwrap();
        println!(
            "wrote {} ({} bytes, trained on all {} payloads)",
            args[i + 1],
            dictionary.len(),
            bodies.len()
        );
    }
}

fn compact_fixtures() -> Vec<Vec<u8>> {
    let mut paths = Vec::new();
    collect(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures"),
        &mut paths,
    );
    paths.sort();
    paths
        .iter()
        .map(|p| {
            let value: serde_json::Value =
                serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap();
            serde_json::to_vec(&value).unwrap()
        })
        .collect()
}

fn collect(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            collect(&path, out);
        } else if path.extension().is_some_and(|e| e == "json") {
            out.push(path);
        }
    }
}
