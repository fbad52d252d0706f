//! Search never answers a limited token another organization's event: random
//! queries of words from the fixtures (plain, prefix, negated, `OR`, and fields
//! naming every owner's organization and repository), in every sort
//! order, over the mixed load of [`crate::isolation`]. The hits are checked one by
//! one, and the repository facet (counted by the index's filter alone, before the
//! hits are read) holds only `octo-org`'s repositories.

use std::collections::BTreeSet;

use proptest::prelude::*;
use reqwest::StatusCode;

use crate::helpers::{TestApp, fixtures};
use crate::isolation::{OWNERS, get, indexed, is_octo_repository, mixed_load, token};

/// Words of the fixtures' searchable text, for random queries.
fn words() -> Vec<String> {
    let mut words = BTreeSet::new();
    for fixture in fixtures().iter().step_by(2) {
        let text = hookvault::search::text_of(&fixture.json);
        for word in text.split(|c: char| !c.is_ascii_alphanumeric()) {
            if (3..12).contains(&word.len()) {
                words.insert(word.to_ascii_lowercase());
            }
        }
    }
    words.into_iter().collect()
}

#[test]
fn search_never_answers_another_organizations_event() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (app, read, sent) = runtime.block_on(async {
        let app = TestApp::spawn().await;
        let sent = mixed_load(&app, 2).await;
        let read = token(&app, "octo-search", "read", &["octo-org"]).await;
        indexed(&app, &read).await;
        (app, read, sent)
    });
    let words = words();
    let config = ProptestConfig {
        cases: 64,
        failure_persistence: None,
        ..ProptestConfig::default()
    };
    // Queries that found something (so the check is not passing on empty answers).
    let found = std::sync::atomic::AtomicUsize::new(0);
    proptest!(config, |(picks in prop::collection::vec((0..words.len(), 0..6u8), 1..4), sort in 0..3usize)| {
        let q = picks
            .iter()
            .map(|(i, how)| match how {
                0 => words[*i].clone(),
                1 => format!("{}*", &words[*i][..3]),
                2 => format!("-{}", words[*i]),
                3 => format!("OR {}", words[*i]),
                // Asking for another organization by field finds nothing of it.
                4 => format!("OR organization:{}", OWNERS[*i % OWNERS.len()]),
                _ => format!("OR repository:\"{}/Hello-World\"", OWNERS[*i % OWNERS.len()]),
            })
            .collect::<Vec<_>>()
            .join(" ");
        let sort = ["relevance", "newest", "oldest"][sort];
        let query = form_urlencoded::Serializer::new(String::new())
            .append_pair("q", &q)
            .append_pair("sort", sort)
            .append_pair("limit", "100")
            .finish();
        let path = format!("/api/webhooks/search?{query}");
        let (status, body) = runtime.block_on(get(&app, &path, &read));
        if status == StatusCode::BAD_REQUEST {
            return Ok(()); // not a query tantivy parses
        }
        prop_assert_eq!(status, StatusCode::OK, "{}", body);
        let octo_total = sent.values().filter(|s| s.octo).count() as u64;
        let total = body["data"]["total"].as_u64().unwrap();
        prop_assert!(total <= octo_total);
        if total > 0 {
            found.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        for hit in body["data"]["hits"].as_array().unwrap() {
            let id = hit["deliveryId"].as_str().unwrap();
            prop_assert!(sent[id].octo, "{} answered {}: {:?}", q, id, sent[id]);
        }
        for facet in body["data"]["facets"]["repository"].as_array().unwrap() {
            prop_assert!(is_octo_repository(facet["value"].as_str().unwrap()), "{}", facet);
        }
    });
    let found = found.into_inner();
    println!("{found} of the random queries found something");
    assert!(
        found >= 8,
        "only {found} of the random queries found anything"
    );
}
