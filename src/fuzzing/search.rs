//! The search target: API parameters through the real query path, against a small
//! store and tantivy index built once per process.

use std::collections::HashMap;
use std::sync::OnceLock;

use http::{HeaderMap, HeaderValue};

use super::{bad_parameter, hmac_hex};
use crate::api::query_parsers;
use crate::config::Secret;
use crate::ingest::{self, DeliveryHeaders};
use crate::search::{Indexer, SearchError, SearchIndex, SearchRequest};
use crate::store::{IngestOutcome, Store, StoreOptions};

/// The indexed events: markup in the text, so snippets must escape it.
const PAYLOADS: &[(&str, &str)] = &[
    (
        "issues",
        r#"{"action":"opened","issue":{"number":1,"title":"Parser <script>alert(1)</script> & friends","body":"The flux capacitor overflows at 88 mph"},"repository":{"full_name":"octo/app"},"sender":{"login":"mona"}}"#,
    ),
    (
        "push",
        r#"{"ref":"refs/heads/main","head_commit":{"id":"a1b2c3","message":"Fix the parser for \"quoted\" <input>"},"repository":{"full_name":"octo/lib"},"sender":{"login":"hubot"}}"#,
    ),
    (
        "workflow_job",
        r#"{"action":"completed","workflow_job":{"id":42,"run_id":7,"name":"build <linux>","conclusion":"failure"},"repository":{"full_name":"octo/app"},"sender":{"login":"mona"}}"#,
    ),
    (
        "ping",
        r#"{"zen":"Keep it logically awesome.","hook_id":1}"#,
    ),
];

/// Stack size of tokio's worker and blocking threads, where searches run.
const SERVER_STACK: usize = 2 << 20;

struct Fixture {
    store: Store,
    index: SearchIndex,
    /// Receive times of the first and last event.
    first_ms: i64,
    last_ms: i64,
}

/// The input as a query string for `GET /api/webhooks/search`; see [`search_params`].
pub fn search_query(data: &[u8]) {
    let params: HashMap<String, String> = form_urlencoded::parse(data).into_owned().collect();
    search_params(&params);
}

/// A search either answers or refuses the input with a 400: bad parameters and
/// unparsable queries are the client's fault, nothing the client sends is a 500 or
/// brings the process down. An answer holds the page asked for, its snippets carry no
/// markup but `<mark>`, and dates around every event drop none while dates beside
/// them keep none, whatever the year. Runs on a thread with the stack of the server's (tokio's
/// 2 MiB), so a query that would overflow it in production overflows here too.
pub fn search_params(params: &HashMap<String, String>) {
    let request = match query_parsers::search(params) {
        Ok(request) => request,
        Err(error) => return bad_parameter(error),
    };
    let fixture = fixture();
    std::thread::scope(|scope| {
        let search = std::thread::Builder::new()
            .stack_size(SERVER_STACK)
            .spawn_scoped(scope, || check_search(fixture, &request))
            .expect("thread starts");
        if let Err(panic) = search.join() {
            std::panic::resume_unwind(panic);
        }
    });
}

fn check_search(fixture: &Fixture, request: &SearchRequest) {
    let Fixture { store, index, .. } = fixture;
    let parsed = index.parse(&request.q);
    match index.search_blocking(store, request) {
        Ok(results) => {
            assert!(parsed.is_ok(), "searched with a query that does not parse");
            assert!(results.total <= PAYLOADS.len());
            let page = request
                .limit
                .min(results.total.saturating_sub(request.offset));
            assert_eq!(results.hits.len(), page, "{request:?}");
            for hit in &results.hits {
                let outside_marks = hit.snippet.replace("<mark>", "").replace("</mark>", "");
                assert!(
                    !outside_marks.contains('<'),
                    "unescaped markup in {:?}",
                    hit.snippet
                );
            }
            check_dates(fixture, request, results.total);
        }
        Err(SearchError::BadQuery(_)) => {
            assert!(parsed.is_err(), "a query that parses was refused")
        }
        Err(other) => panic!("a search input caused an internal error: {other}"),
    }
}

fn check_dates(fixture: &Fixture, request: &SearchRequest, total: usize) {
    if request.start_ms.is_none() && request.end_ms.is_none() {
        return;
    }
    let start = request.start_ms.unwrap_or(i64::MIN);
    let end = request.end_ms.unwrap_or(i64::MAX);
    if end < fixture.first_ms || start > fixture.last_ms {
        assert_eq!(total, 0, "{start}..={end} ms is beside every event");
    } else if start <= fixture.first_ms && end >= fixture.last_ms {
        let undated = SearchRequest {
            start_ms: None,
            end_ms: None,
            ..request.clone()
        };
        let all = fixture.index.search_blocking(&fixture.store, &undated);
        assert_eq!(
            total,
            all.expect("the same search without dates runs").total,
            "{start}..={end} ms is around every event"
        );
    }
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    // On its own thread: the caller may be inside an async runtime.
    FIXTURE.get_or_init(|| {
        std::thread::scope(|s| s.spawn(build).join()).expect("the search fixture builds")
    })
}

/// Stores the payloads through the real ingest checks and indexes them. The data dir
/// is removed once built: the open files stay readable (on Unix), and nothing is left
/// behind in the temp dir.
fn build() -> Fixture {
    let dir = std::env::temp_dir().join(format!("hookvault-fuzz-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    let options = StoreOptions::plain(1 << 20);
    let (store, _writer) = Store::open(&dir, &options).expect("store opens");
    let (index, checkpoint, _) = SearchIndex::open(&dir).expect("index opens");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let first_ms = crate::domain::timestamp::now_ms();
    runtime.block_on(async {
        let secrets = [Secret::new("fuzz")];
        for (n, (event, payload)) in PAYLOADS.iter().enumerate() {
            let mut headers = HeaderMap::new();
            let signature = format!("sha256={}", hmac_hex(b"fuzz", payload.as_bytes()));
            for (name, value) in [
                ("x-github-event", event.to_string()),
                ("x-github-delivery", format!("fuzz-{n}")),
                ("content-type", "application/json".into()),
                ("x-hub-signature-256", signature),
            ] {
                headers.insert(name, HeaderValue::from_str(&value).expect("header"));
            }
            let parsed = DeliveryHeaders::parse(&headers, false).expect("headers");
            let body = bytes::Bytes::from_static(payload.as_bytes());
            let delivery = ingest::verify(parsed, &headers, body, &secrets).expect("authentic");
            let outcome = store.ingest(delivery).await.expect("stored");
            let IngestOutcome::Stored { seq } = outcome else {
                panic!("every fuzz payload is new: {outcome:?}")
            };
            // Acknowledged once logged; the indexer reads what is applied.
            store.applied(seq).await.expect("applied");
        }
        let mut indexer = Indexer::new(store.clone(), index.clone(), checkpoint).expect("indexer");
        indexer.catch_up(|_, _| {}).await.expect("indexed");
    });
    let last_ms = crate::domain::timestamp::now_ms();
    assert_eq!(index.num_docs(), PAYLOADS.len() as u64);
    let _ = std::fs::remove_dir_all(&dir);
    Fixture {
        store,
        index,
        first_ms,
        last_ms,
    }
}
