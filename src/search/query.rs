//! Searching: the query string (tantivy syntax, `AND` between words by default) plus
//! exact filters and a date range, sorted by relevance or time, with facet counts and
//! highlighted snippets.

use std::collections::HashMap;
use std::ops::Bound;

use tantivy::collector::{Collector, TopDocs};
use tantivy::columnar::Column;
use tantivy::query::{
    AllQuery, BooleanQuery, EnableScoring, Occur, Query, QueryParser, RangeQuery, TermQuery,
};
use tantivy::schema::IndexRecordOption;
use tantivy::snippet::SnippetGenerator;
use tantivy::{DateTime, DocAddress, Order, Searcher, Term};

use super::SearchIndex;
use super::document::{payload_of, text_of};
use super::query_text::{has_loose_phrase, lift_negations, with_full_dates};
use super::schema::{FACETS, facet_parts, received_date};
use super::term_counts::{Counted, TermCounts};
use crate::domain::Visibility;
use crate::store::{EventRecord, Store};

/// Most facet values reported per facet.
const FACET_LIMIT: usize = 20;
const SNIPPET_CHARS: usize = 200;
/// Longest query text accepted. tantivy's parser takes quadratic time on long chains
/// of operators (`NOT NOT …`); at this length that stays in milliseconds.
const MAX_QUERY_BYTES: usize = 4096;
/// Most `(` a query may hold. tantivy's parser recurses once per nesting level and a
/// few thousand levels overflow a 2 MiB worker stack, which aborts the process;
/// counting every `(` (quoted or not) bounds the depth whatever the quoting.
const MAX_QUERY_PARENS: usize = 64;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SortOrder {
    #[default]
    Relevance,
    Newest,
    Oldest,
}

#[derive(Debug, Clone, Default)]
pub struct SearchRequest {
    pub q: String,
    pub repository: Option<String>,
    pub event: Option<String>,
    pub action: Option<String>,
    pub sender: Option<String>,
    pub start_ms: Option<i64>,
    pub end_ms: Option<i64>,
    pub limit: usize,
    pub offset: usize,
    pub sort: SortOrder,
    /// Only the events the caller may see (a filter added to every query).
    pub visibility: Visibility,
}

#[derive(Debug, thiserror::Error)]
pub enum SearchError {
    #[error("query could not be parsed: {0}")]
    BadQuery(String),
    #[error("search failed: {0}")]
    Index(#[from] tantivy::TantivyError),
    #[error("search failed: {0}")]
    Store(#[from] crate::store::StoreError),
}

pub struct Hit {
    pub seq: u64,
    pub record: EventRecord,
    pub score: Option<f32>,
    /// HTML with `<mark>` around matched words; other text is escaped.
    pub snippet: String,
}

#[derive(Default)]
pub struct Facets {
    pub event: Vec<(String, u64)>,
    pub repository: Vec<(String, u64)>,
}

impl Facets {
    /// Splits the counts per (type, repository) value of the `facets` column into
    /// the two facets, each its most frequent values.
    fn from_counts(per_value: &HashMap<String, u64>) -> Self {
        let mut event: HashMap<&str, u64> = HashMap::new();
        let mut repository: HashMap<&str, u64> = HashMap::new();
        for (value, &count) in per_value {
            let (of_event, of_repository) = facet_parts(value);
            *event.entry(of_event).or_default() += count;
            if let Some(of_repository) = of_repository {
                *repository.entry(of_repository).or_default() += count;
            }
        }
        let top = |counts: HashMap<&str, u64>| {
            let mut list: Vec<(String, u64)> =
                counts.into_iter().map(|(v, c)| (v.to_owned(), c)).collect();
            list.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
            list.truncate(FACET_LIMIT);
            list
        };
        Self {
            event: top(event),
            repository: top(repository),
        }
    }
}

pub struct SearchResults {
    pub hits: Vec<Hit>,
    pub total: usize,
    pub facets: Facets,
}

impl SearchIndex {
    /// Parses the query alone: `Err` carries the parser's message.
    pub fn parse(&self, q: &str) -> Result<Option<Box<dyn Query>>, SearchError> {
        if q.trim().is_empty() {
            return Ok(None);
        }
        if q.len() > MAX_QUERY_BYTES {
            return Err(SearchError::BadQuery(format!(
                "the query is longer than {MAX_QUERY_BYTES} bytes"
            )));
        }
        if q.matches('(').count() > MAX_QUERY_PARENS {
            return Err(SearchError::BadQuery(format!(
                "the query has more than {MAX_QUERY_PARENS} parentheses"
            )));
        }
        let fields = &self.inner.fields;
        let tokenizers = if has_loose_phrase(q) {
            &self.inner.loose_phrases
        } else {
            &self.inner.exact_phrases
        };
        let mut parser = QueryParser::new(
            self.inner.index.schema(),
            vec![fields.text],
            tokenizers.clone(),
        );
        parser.set_conjunction_by_default();
        let query = parser
            .parse_query(&with_full_dates(q))
            .map_err(|e| SearchError::BadQuery(e.to_string()))?;
        // Some queries parse and only fail when run: `nofield:*` or `text:*` (an
        // exists query wants a fast field). Those are the client's mistake too.
        let schema = self.inner.index.schema();
        query
            .weight(EnableScoring::disabled_from_schema(&schema))
            .map_err(|e| SearchError::BadQuery(e.to_string()))?;
        Ok(Some(lift_negations(query)))
    }

    /// Runs a search (blocking: call off the async executor).
    pub fn search_blocking(
        &self,
        store: &Store,
        request: &SearchRequest,
    ) -> Result<SearchResults, SearchError> {
        let fields = &self.inner.fields;
        let text_query = self.parse(&request.q)?;
        let mut clauses: Vec<(Occur, Box<dyn Query>)> = Vec::new();
        if let Some(query) = &text_query {
            clauses.push((Occur::Must, query.box_clone()));
        }
        for (field, value) in [
            (fields.repository, &request.repository),
            (fields.event, &request.event),
            (fields.action, &request.action),
            (fields.sender, &request.sender),
        ] {
            if let Some(value) = value {
                let term = Term::from_field_text(field, value);
                clauses.push((
                    Occur::Must,
                    Box::new(TermQuery::new(term, IndexRecordOption::Basic)),
                ));
            }
        }
        if let Some(only_visible) = super::visible::filter(fields, &request.visibility)? {
            clauses.push((Occur::Must, only_visible));
        }
        if request.start_ms.is_some() || request.end_ms.is_some() {
            let bound = |ms: Option<i64>| match ms {
                Some(ms) => {
                    Bound::Included(Term::from_field_date(fields.received, received_date(ms)))
                }
                None => Bound::Unbounded,
            };
            clauses.push((
                Occur::Must,
                Box::new(RangeQuery::new(
                    bound(request.start_ms),
                    bound(request.end_ms),
                )),
            ));
        }
        // A lone clause goes to tantivy unwrapped: a single term's top hits then skip
        // every block of postings whose best score cannot rank (block-max WAND),
        // which a boolean query of one clause does not do.
        let query: Box<dyn Query> = match clauses.len() {
            0 => Box::new(AllQuery),
            1 => clauses.remove(0).1,
            _ => Box::new(BooleanQuery::new(clauses)),
        };

        let searcher = self.inner.reader.searcher();
        let window = request.limit + request.offset;
        let sort_by_time = request.sort != SortOrder::Relevance || text_query.is_none();
        let split = only_terms(query.as_ref());
        let (addresses, counted): (Vec<(Option<f32>, DocAddress)>, _) = if sort_by_time {
            let order = if request.sort == SortOrder::Oldest {
                Order::Asc
            } else {
                Order::Desc
            };
            let top = TopDocs::with_limit(window.max(1))
                .order_by_fast_field::<DateTime>("received", order);
            let (top, counted) = top_and_counts(&searcher, query.as_ref(), top, split)?;
            (top.into_iter().map(|(_, a)| (None, a)).collect(), counted)
        } else {
            let top = TopDocs::with_limit(window.max(1)).order_by_score();
            let (top, counted) = top_and_counts(&searcher, query.as_ref(), top, split)?;
            (
                top.into_iter().map(|(score, a)| (Some(score), a)).collect(),
                counted,
            )
        };

        let snippets = match &text_query {
            Some(q) => Some(SnippetGenerator::create(
                &searcher,
                q.as_ref(),
                fields.text,
            )?),
            None => None,
        };
        let mut seqs = SeqColumns::new(&searcher);
        let mut hits = Vec::new();
        for (score, address) in addresses
            .into_iter()
            .skip(request.offset)
            .take(request.limit)
        {
            let Some(seq) = seqs.seq_of(address)? else {
                continue;
            };
            let Some(stored) = store
                .get_seq_blocking(seq)?
                .filter(|s| s.record.visible_to(&request.visibility))
            else {
                continue;
            };
            let text = text_of(&payload_of(stored.record.encoding, &stored.body));
            let snippet = match &snippets {
                Some(generator) => {
                    let mut generator_snippet = generator.snippet(&text);
                    generator_snippet.set_snippet_prefix_postfix("<mark>", "</mark>");
                    generator_snippet.to_html()
                }
                None => html_escape(&text.chars().take(SNIPPET_CHARS).collect::<String>()),
            };
            hits.push(Hit {
                seq,
                record: stored.record,
                score,
                snippet,
            });
        }

        Ok(SearchResults {
            hits,
            total: counted.total,
            facets: Facets::from_counts(&counted.per_value),
        })
    }
}

/// The top hits and the counts (total, facets). Queries of terms alone are cheap to
/// match twice, so they take two passes: the top hits alone, where scoring skips
/// blocks of postings that cannot make the top (block-max WAND), then every hit
/// unscored, in blocks. Anything costlier to match (phrases, fuzzy or regex terms)
/// takes one pass with both collectors.
fn top_and_counts<C: Collector>(
    searcher: &Searcher,
    query: &dyn Query,
    top: C,
    split: bool,
) -> tantivy::Result<(C::Fruit, Counted)> {
    let counts = TermCounts::for_field(FACETS);
    if split {
        Ok((
            searcher.search(query, &top)?,
            searcher.search(query, &counts)?,
        ))
    } else {
        searcher.search(query, &(top, counts))
    }
}

/// True for term, range and match-all queries and booleans of them.
fn only_terms(query: &dyn Query) -> bool {
    if let Some(boolean) = query.downcast_ref::<BooleanQuery>() {
        return boolean
            .clauses()
            .iter()
            .all(|(_, q)| only_terms(q.as_ref()));
    }
    query.is::<TermQuery>() || query.is::<RangeQuery>() || query.is::<AllQuery>()
}

/// The event of each hit, read from the `seq` column (the index stores no documents,
/// so a hit costs no decompression of a document-store block). Each segment's column
/// is opened once: opening looks its name up in the segment's column dictionary.
struct SeqColumns<'a> {
    searcher: &'a Searcher,
    opened: Vec<Option<Column<u64>>>,
}

impl<'a> SeqColumns<'a> {
    fn new(searcher: &'a Searcher) -> Self {
        Self {
            searcher,
            opened: vec![None; searcher.segment_readers().len()],
        }
    }

    fn seq_of(&mut self, address: DocAddress) -> Result<Option<u64>, SearchError> {
        let column = match &mut self.opened[address.segment_ord as usize] {
            Some(column) => column,
            slot => {
                let reader = self.searcher.segment_reader(address.segment_ord);
                slot.insert(reader.fast_fields().u64("seq")?)
            }
        };
        Ok(column.first(address.doc_id))
    }
}

fn html_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(q: &str) -> String {
        let dir = tempfile::tempdir().unwrap();
        let (index, _, _) = SearchIndex::open(dir.path()).unwrap();
        format!("{:?}", index.parse(q).unwrap().unwrap())
    }

    #[test]
    fn and_not_becomes_a_must_not_clause() {
        let lifted = parsed("event:issues AND NOT action:opened");
        assert_eq!(lifted, parsed("event:issues -action:opened"));
        let dir = tempfile::tempdir().unwrap();
        let (index, _, _) = SearchIndex::open(dir.path()).unwrap();
        assert!(matches!(
            index.parse("NOT event:push"),
            Err(SearchError::BadQuery(_))
        ));
        assert!(parsed("a OR b").contains("minimum_number_should_match: 1"));
    }

    #[test]
    fn only_queries_of_terms_take_two_passes() {
        let dir = tempfile::tempdir().unwrap();
        let (index, _, _) = SearchIndex::open(dir.path()).unwrap();
        let parsed = |q: &str| index.parse(q).unwrap().unwrap();
        for q in ["readme", "a AND b", "a OR (b -c)", "event:push AND flux"] {
            assert!(only_terms(parsed(q).as_ref()), "{q}");
        }
        for q in ["\"update the readme\"", "a AND \"b c\"", "readm~1"] {
            assert!(!only_terms(parsed(q).as_ref()), "{q}");
        }
    }

    /// Found by the search fuzz target: these parsed, then failed in the search as
    /// an internal error (500).
    #[test]
    fn queries_that_cannot_run_are_refused_when_parsed() {
        let dir = tempfile::tempdir().unwrap();
        let (index, _, _) = SearchIndex::open(dir.path()).unwrap();
        for q in [
            "nofield:*",
            "text:*",
            "delivery:*",
            "a AND (b OR nofield:*)",
        ] {
            assert!(
                matches!(index.parse(q), Err(SearchError::BadQuery(_))),
                "{q}"
            );
        }
        assert!(index.parse("event:*").is_ok());
    }

    /// Found while fuzzing the search path: 3,000 nested parentheses overflowed the
    /// stack of the thread parsing them and aborted the whole process.
    #[test]
    fn deeply_nested_and_overlong_queries_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let (index, _, _) = SearchIndex::open(dir.path()).unwrap();
        let nested = |n: usize| format!("{}x{}", "(".repeat(n), ")".repeat(n));
        assert!(index.parse(&nested(MAX_QUERY_PARENS)).is_ok());
        for q in [
            nested(5_000),
            format!("\"{}\" x", "(".repeat(MAX_QUERY_PARENS + 1)),
            "NOT ".repeat(MAX_QUERY_BYTES / 4) + "x",
        ] {
            assert!(matches!(index.parse(&q), Err(SearchError::BadQuery(_))));
        }
    }
}
