//! Full-text search over the fixture corpus: words, phrases, fields, boolean queries,
//! filters and date ranges return exactly the expected deliveries (expected sets are
//! computed here from the fixtures); new deliveries become visible; a deleted or
//! corrupted index is rebuilt; malformed queries are 400s.

use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{Fixture, TestApp, fixtures, new_id};

/// Posts every fixture; returns delivery id → fixture index.
async fn post_corpus(app: &TestApp, corpus: &[Fixture]) -> HashMap<String, usize> {
    let mut ids = HashMap::new();
    for (i, fixture) in corpus.iter().enumerate() {
        let id = new_id();
        let (status, _) = app.post_signed(&fixture.event, &id, &fixture.bytes).await;
        assert_eq!(status, StatusCode::OK);
        ids.insert(id, i);
    }
    ids
}

async fn search(app: &TestApp, query: &str) -> Value {
    let (status, body) = app
        .get_json(&format!("/api/webhooks/search?limit=100&{query}"))
        .await;
    assert_eq!(status, StatusCode::OK, "{query}: {body}");
    body["data"].clone()
}

/// Waits until the index holds `expected` documents and has no lag.
async fn wait_indexed(app: &TestApp, expected: usize) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let data = search(app, "q=").await;
        if data["total"] == expected && data["indexLag"] == 0 && data["rebuilding"] == false {
            return;
        }
        assert!(Instant::now() < deadline, "index never caught up: {data}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Delivery ids of every hit, paging through all results.
async fn hit_ids(app: &TestApp, query: &str) -> BTreeSet<String> {
    let mut ids = BTreeSet::new();
    let mut offset = 0;
    loop {
        let data = search(app, &format!("{query}&offset={offset}")).await;
        let hits = data["hits"].as_array().unwrap();
        ids.extend(
            hits.iter()
                .map(|h| h["deliveryId"].as_str().unwrap().to_owned()),
        );
        if hits.is_empty() {
            assert_eq!(
                data["total"].as_u64().unwrap() as usize,
                ids.len(),
                "{query}"
            );
            return ids;
        }
        offset += hits.len();
    }
}

fn expected(
    ids: &HashMap<String, usize>,
    corpus: &[Fixture],
    keep: impl Fn(&Fixture) -> bool,
) -> BTreeSet<String> {
    ids.iter()
        .filter(|(_, i)| keep(&corpus[**i]))
        .map(|(id, _)| id.clone())
        .collect()
}

fn text_at<'a>(f: &'a Fixture, pointer: &str) -> &'a str {
    f.json
        .pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or("")
}

#[tokio::test]
async fn searches_return_exactly_the_matching_deliveries() {
    let app = TestApp::spawn_with(|c| c.dedup_ttl = Duration::ZERO).await;
    let corpus = fixtures();
    let ids = post_corpus(&app, &corpus).await;
    wait_indexed(&app, corpus.len()).await;

    // A phrase: the title of the sample issue.
    let phrase = "Spelling error in the README file";
    let want = expected(&ids, &corpus, |f| {
        text_at(f, "/issue/title").contains(phrase)
    });
    assert!(want.len() > 10);
    assert_eq!(
        hit_ids(&app, "q=%22Spelling%20error%20in%20the%20README%20file%22").await,
        want
    );
    // Loose phrases: a word may stand between (`~1`), or the last word is a prefix.
    // Common-word pairs ("in the", "the readme") serve exact phrases only.
    assert_eq!(hit_ids(&app, "q=%22error%20the%20README%22~1").await, want);
    assert_eq!(
        hit_ids(&app, "q=%22Spelling%20error%20in%20the%20READ%22*").await,
        want
    );
    assert!(
        hit_ids(&app, "q=%22error%20the%20README%22")
            .await
            .is_empty()
    );

    // A word: a job name.
    let want = expected(&ids, &corpus, |f| {
        text_at(f, "/workflow_job/name") == "linters"
    });
    assert_eq!(want.len(), 2);
    assert_eq!(hit_ids(&app, "q=linters").await, want);

    // A word in a review comment, case-insensitively.
    let want = expected(&ids, &corpus, |f| {
        text_at(f, "/comment/body").to_lowercase().contains("emoji")
    });
    assert!(!want.is_empty());
    assert_eq!(hit_ids(&app, "q=EMOJI").await, want);

    // Fields.
    let want = expected(&ids, &corpus, |f| f.event == "workflow_job");
    assert_eq!(hit_ids(&app, "q=event:workflow_job").await, want);
    let want = expected(&ids, &corpus, |f| {
        [
            "/workflow_job/conclusion",
            "/workflow_run/conclusion",
            "/check_run/conclusion",
            "/check_suite/conclusion",
        ]
        .iter()
        .find_map(|p| f.json.pointer(p).and_then(Value::as_str))
            == Some("failure")
    });
    assert!(!want.is_empty());
    assert_eq!(hit_ids(&app, "q=conclusion:failure").await, want);
    let want = expected(&ids, &corpus, |f| {
        f.repository() == Some("Codertocat/Hello-World") && f.event == "push"
    });
    assert_eq!(
        hit_ids(
            &app,
            "q=repository:%22Codertocat/Hello-World%22%20AND%20event:push"
        )
        .await,
        want
    );

    // Boolean.
    let want = expected(&ids, &corpus, |f| {
        f.event == "issues" && f.action() != Some("opened")
    });
    assert_eq!(
        hit_ids(&app, "q=event:issues%20AND%20NOT%20action:opened").await,
        want
    );
    let want = expected(&ids, &corpus, |f| f.event == "push" || f.event == "release");
    assert_eq!(
        hit_ids(&app, "q=event:push%20OR%20event:release").await,
        want
    );

    // Filters as parameters combine with the query.
    let want = expected(&ids, &corpus, |f| {
        text_at(f, "/issue/title").contains(phrase) && f.event == "issue_comment"
    });
    assert_eq!(hit_ids(&app, "q=spelling&event=issue_comment").await, want);
    let want = expected(&ids, &corpus, |f| {
        f.json["sender"]["login"] == "Codertocat" && f.event == "star"
    });
    assert_eq!(hit_ids(&app, "q=&sender=Codertocat&event=star").await, want);
    let want = expected(&ids, &corpus, |f| {
        f.repository() == Some("Codertocat/Hello-World") && f.action() == Some("created")
    });
    assert_eq!(
        hit_ids(&app, "repository=Codertocat/Hello-World&action=created").await,
        want
    );

    // Facets over every event, with a repository or without (organization, app and
    // sponsorship events): the most frequent values, each with its exact count.
    let data = search(&app, "q=").await;
    assert_eq!(
        facet(&data, "event"),
        top_counts(corpus.iter().map(|f| f.event.as_str()))
    );
    let with_repository = corpus.iter().filter_map(Fixture::repository);
    assert!(with_repository.clone().count() < corpus.len());
    assert_eq!(facet(&data, "repository"), top_counts(with_repository));
}

/// A facet of a search answer as (value, count) pairs, in the answer's order.
fn facet(data: &Value, name: &str) -> Vec<(String, u64)> {
    data["facets"][name]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["value"].as_str().unwrap().to_owned(),
                f["count"].as_u64().unwrap(),
            )
        })
        .collect()
}

/// The 20 most frequent values, most frequent first, ties by value: how facets list.
fn top_counts<'a>(values: impl Iterator<Item = &'a str>) -> Vec<(String, u64)> {
    let mut counts: HashMap<&str, u64> = HashMap::new();
    for value in values {
        *counts.entry(value).or_default() += 1;
    }
    let mut list: Vec<(String, u64)> = counts.into_iter().map(|(v, c)| (v.to_owned(), c)).collect();
    list.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    list.truncate(20);
    list
}

#[tokio::test]
async fn hits_carry_highlights_facets_and_timing() {
    let app = TestApp::spawn_with(|c| c.dedup_ttl = Duration::ZERO).await;
    let corpus: Vec<Fixture> = fixtures()
        .into_iter()
        .filter(|f| ["issues", "issue_comment", "push"].contains(&f.event.as_str()))
        .collect();
    post_corpus(&app, &corpus).await;
    wait_indexed(&app, corpus.len()).await;

    let data = search(&app, "q=spelling").await;
    let hit = &data["hits"][0];
    assert!(
        hit["snippet"]
            .as_str()
            .unwrap()
            .contains("<mark>Spelling</mark>"),
        "{hit}"
    );
    assert!(hit["score"].as_f64().unwrap() > 0.0);
    // A phrase found through common-word pairs ("error in", "the readme") is marked
    // a pair at a time.
    let data = search(&app, "q=%22error%20in%20the%20readme%22").await;
    let snippet = data["hits"][0]["snippet"].as_str().unwrap();
    assert!(
        snippet.contains("<mark>error in</mark> <mark>the README</mark>"),
        "{snippet}"
    );
    let hit = &data["hits"][0];
    assert!(hit["deliveryId"].is_string() && hit["receivedAt"].is_string());
    assert!(data["tookMs"].as_f64().is_some());
    let count = |event: &str| {
        corpus
            .iter()
            .filter(|f| f.event == event && text_at(f, "/issue/title").contains("Spelling"))
            .count()
    };
    let got: HashMap<String, u64> = facet(&data, "event").into_iter().collect();
    assert_eq!(got.get("issues").copied(), Some(count("issues") as u64));
    assert_eq!(
        got.get("issue_comment").copied(),
        Some(count("issue_comment") as u64)
    );
    assert_eq!(
        data["facets"]["repository"][0]["value"],
        "Codertocat/Hello-World"
    );

    // Time order, newest first, when asked (and when there is no query).
    let newest = search(&app, "q=&sort=newest&limit=5").await;
    let times: Vec<&str> = newest["hits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["receivedAt"].as_str().unwrap())
        .collect();
    assert!(times.windows(2).all(|w| w[0] >= w[1]), "{times:?}");
}

#[tokio::test]
async fn date_ranges_and_new_deliveries() {
    let app = TestApp::spawn_with(|c| c.dedup_ttl = Duration::ZERO).await;
    let corpus = fixtures();
    let early: Vec<Fixture> = corpus
        .iter()
        .filter(|f| f.event == "push")
        .map(clone_fixture)
        .collect();
    let early_ids = post_corpus(&app, &early).await;
    tokio::time::sleep(Duration::from_millis(30)).await;
    let split = time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    tokio::time::sleep(Duration::from_millis(30)).await;

    // A delivery with a word nobody used becomes searchable shortly after its ack.
    let word = format!("zebra{}", rand_suffix());
    let body = format!(
        r#"{{"ref":"refs/heads/main","after":"{word}","commits":[{{"message":"Add the {word} feature"}}],"repository":{{"full_name":"octo/zoo"}}}}"#
    );
    let late_id = new_id();
    let acked = Instant::now();
    let (status, _) = app.post_signed("push", &late_id, body.as_bytes()).await;
    assert_eq!(status, StatusCode::OK);
    let deadline = acked + Duration::from_secs(20);
    while hit_ids(&app, &format!("q={word}")).await.is_empty() {
        assert!(
            Instant::now() < deadline,
            "new delivery never became searchable"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    println!(
        "searchable {} ms after the ack",
        acked.elapsed().as_millis()
    );

    let all_early: BTreeSet<String> = early_ids.keys().cloned().collect();
    assert_eq!(
        hit_ids(&app, &format!("q=event:push&endDate={split}")).await,
        all_early
    );
    assert_eq!(
        hit_ids(&app, &format!("q=event:push&startDate={split}")).await,
        BTreeSet::from([late_id.clone()])
    );
    assert_eq!(
        hit_ids(&app, "q=ref:main&repository=octo/zoo").await,
        BTreeSet::from([late_id.clone()])
    );

    // Dates outside tantivy's range (years 1677 to 2262) bound like any other.
    let mut every_push = all_early;
    every_push.insert(late_id);
    assert_eq!(
        hit_ids(&app, "q=event:push&startDate=0001-01-01&endDate=9999-12-31").await,
        every_push
    );
    assert!(
        hit_ids(&app, "q=event:push&startDate=2263-01-01")
            .await
            .is_empty()
    );
    assert!(
        hit_ids(&app, "q=event:push&endDate=1600-01-01")
            .await
            .is_empty()
    );
}

#[tokio::test]
async fn malformed_queries_and_parameters_are_400() {
    let app = TestApp::spawn().await;
    for q in ["title:(", "%22unclosed", "event:", "(a%20OR", "AND"] {
        let (status, body) = app.get_json(&format!("/api/webhooks/search?q={q}")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "q={q}: {body}");
        assert_eq!(body["error"]["code"], "invalid_query", "q={q}");
    }
    for (query, parameter) in [
        ("limit=500", "limit"),
        ("offset=x", "offset"),
        ("sort=size", "sort"),
        ("startDate=soon", "startDate"),
    ] {
        let (status, body) = app.get_json(&format!("/api/webhooks/search?{query}")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}");
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .contains(parameter)
        );
    }
}

/// Found by the schemathesis sweep: dates past 2262 or before 1677 overflowed
/// tantivy's nanosecond timestamps, and the search task panicked (a 500).
#[tokio::test]
async fn date_bounds_far_from_now_are_answered_not_500() {
    let app = TestApp::spawn().await;
    let corpus: Vec<Fixture> = fixtures().into_iter().take(3).collect();
    post_corpus(&app, &corpus).await;
    wait_indexed(&app, corpus.len()).await;
    let everything = search(&app, "startDate=0001-01-01&endDate=9999-12-31T23:59:59Z").await;
    assert_eq!(everything["total"], corpus.len(), "{everything}");
    let nothing = search(&app, "startDate=3395-05-02T15:55:19Z").await;
    assert_eq!(nothing["total"], 0, "{nothing}");
    let nothing = search(&app, "endDate=0605-08-21").await;
    assert_eq!(nothing["total"], 0, "{nothing}");
}

#[tokio::test]
async fn a_deleted_or_corrupted_index_is_rebuilt_at_startup() {
    let app = TestApp::spawn_with(|c| c.dedup_ttl = Duration::ZERO).await;
    let corpus: Vec<Fixture> = fixtures().into_iter().step_by(3).collect();
    post_corpus(&app, &corpus).await;
    wait_indexed(&app, corpus.len()).await;
    let queries = [
        "q=spelling",
        "q=event:push",
        "q=README%20AND%20NOT%20event:issues",
        "q=&sort=oldest",
    ];
    let mut before = Vec::new();
    for q in queries {
        before.push(hit_ids(&app, q).await);
    }

    // Deleted.
    let mut app = app;
    app.stop().await;
    let index_dir = app.data_dir.path().join("search-index");
    std::fs::remove_dir_all(&index_dir).unwrap();
    let app = app.restart().await;
    wait_indexed(&app, corpus.len()).await;
    for (q, want) in queries.iter().zip(&before) {
        assert_eq!(
            &hit_ids(&app, q).await,
            want,
            "{q} after deleting the index"
        );
    }

    // Corrupted: every file of the index truncated.
    let mut app = app;
    app.stop().await;
    for entry in std::fs::read_dir(&index_dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            std::fs::write(&path, b"garbage").unwrap();
        }
    }
    let app = app.restart().await;
    wait_indexed(&app, corpus.len()).await;
    for (q, want) in queries.iter().zip(&before) {
        assert_eq!(
            &hit_ids(&app, q).await,
            want,
            "{q} after corrupting the index"
        );
    }
}

#[tokio::test]
async fn the_reindex_command_rebuilds_with_a_progress_line() {
    let app = TestApp::spawn_with(|c| c.dedup_ttl = Duration::ZERO).await;
    let corpus: Vec<Fixture> = fixtures().into_iter().take(40).collect();
    post_corpus(&app, &corpus).await;
    wait_indexed(&app, corpus.len()).await;
    let before = hit_ids(&app, "q=&sort=oldest").await;
    let mut app = app;
    app.stop().await;

    let output = crate::process::command(app.data_dir.path())
        .env("GITHUB_WEBHOOK_SECRET", "s")
        .arg("reindex")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(
        stderr.contains(&format!("reindex: {} events indexed", corpus.len())),
        "{stderr}"
    );

    let app = app.restart().await;
    wait_indexed(&app, corpus.len()).await;
    assert_eq!(hit_ids(&app, "q=&sort=oldest").await, before);
}

fn clone_fixture(f: &Fixture) -> Fixture {
    Fixture {
        event: f.event.clone(),
        path: f.path.clone(),
        bytes: f.bytes.clone(),
        json: f.json.clone(),
    }
}

fn rand_suffix() -> String {
    new_id().replace('-', "")[..8].to_owned()
}
