//! Searching: the query string (tantivy syntax, `AND` between words by default) plus
//! exact filters and a date range, sorted by relevance or time, with facet counts and
//! highlighted snippets.

use std::borrow::Cow;
use std::collections::HashMap;
use std::ops::Bound;

use tantivy::collector::{Collector, TopDocs};
use tantivy::columnar::Column;
use tantivy::query::{
    AllQuery, BooleanQuery, EnableScoring, Occur, Query, QueryParser, RangeQuery, TermQuery,
};
use tantivy::query_grammar::{self, UserInputAst, UserInputLeaf};
use tantivy::schema::IndexRecordOption;
use tantivy::snippet::SnippetGenerator;
use tantivy::{DateTime, DocAddress, Order, Searcher, Term};

use super::SearchIndex;
use super::document::{payload_of, text_of};
use super::schema::{FACETS, facet_parts, received_date};
use super::term_counts::{Counted, TermCounts};
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
            let Some(stored) = store.get_seq_blocking(seq)? else {
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

/// Whether a phrase in `q` allows other words between its own (`"a b"~2`) or ends
/// in a prefix (`"a b"*`): such phrases cannot use common-word pairs. (A query that
/// does not parse gets the parser's message either way.)
fn has_loose_phrase(q: &str) -> bool {
    fn walk(ast: &UserInputAst) -> bool {
        match ast {
            UserInputAst::Clause(clauses) => clauses.iter().any(|(_, sub)| walk(sub)),
            UserInputAst::Boost(sub, _) => walk(sub),
            UserInputAst::Leaf(leaf) => {
                matches!(leaf.as_ref(), UserInputLeaf::Literal(l) if l.slop > 0 || l.prefix)
            }
        }
    }
    query_grammar::parse_query(q).is_ok_and(|ast| walk(&ast))
}

/// The query with each `YYYY-MM-DD` date of a `received:` clause written as the
/// midnight (UTC) it stands for, the form tantivy parses; the events API's
/// `startDate` and `endDate` read a date the same way.
fn with_full_dates(q: &str) -> Cow<'_, str> {
    const FIELD: &str = "received:";
    if !q.contains(FIELD) {
        return Cow::Borrowed(q);
    }
    let mut out = String::with_capacity(q.len() + 40);
    let mut rest = q;
    while let Some(at) = rest.find(FIELD) {
        let (before, clause_start) = rest.split_at(at + FIELD.len());
        out.push_str(before);
        // A range runs to its closing bracket; a single value to the next space.
        let end = match clause_start.chars().next() {
            Some('[' | '{') => clause_start
                .find([']', '}'])
                .map_or(clause_start.len(), |i| i + 1),
            _ => clause_start
                .find(char::is_whitespace)
                .unwrap_or(clause_start.len()),
        };
        let (clause, after) = clause_start.split_at(end);
        out.push_str(&expand_dates(clause));
        rest = after;
    }
    out.push_str(rest);
    Cow::Owned(out)
}

/// `clause` with every date standing alone (not followed by a time) completed.
fn expand_dates(clause: &str) -> String {
    let bytes = clause.as_bytes();
    let is_date = |at: usize| {
        let digits = |range: std::ops::Range<usize>| {
            bytes
                .get(range)
                .is_some_and(|b| b.iter().all(u8::is_ascii_digit))
        };
        digits(at..at + 4)
            && bytes.get(at + 4) == Some(&b'-')
            && digits(at + 5..at + 7)
            && bytes.get(at + 7) == Some(&b'-')
            && digits(at + 8..at + 10)
            && !bytes
                .get(at + 10)
                .is_some_and(|b| b.is_ascii_alphanumeric())
            && (at == 0 || !bytes[at - 1].is_ascii_alphanumeric())
    };
    let mut out = String::with_capacity(clause.len() + 20);
    let mut at = 0;
    while at < clause.len() {
        if is_date(at) {
            out.push_str(&clause[at..at + 10]);
            out.push_str("T00:00:00Z");
            at += 10;
        } else {
            let c = clause[at..].chars().next().expect("in bounds");
            out.push(c);
            at += c.len_utf8();
        }
    }
    out
}

fn html_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// tantivy parses `a AND NOT b` as `+a +(-b)`, and a group of only negations
/// matches nothing, so the whole query would match nothing. Lifts such negations into
/// the enclosing query: `+a -b`. (A query of only negations is refused by the parser.)
fn lift_negations(query: Box<dyn Query>) -> Box<dyn Query> {
    let Some(boolean) = query.as_ref().downcast_ref::<BooleanQuery>() else {
        return query;
    };
    let only_negations = |q: &dyn Query| {
        q.downcast_ref::<BooleanQuery>().is_some_and(|b| {
            !b.clauses().is_empty() && b.clauses().iter().all(|(o, _)| *o == Occur::MustNot)
        })
    };
    let mut clauses: Vec<(Occur, Box<dyn Query>)> = Vec::new();
    for (occur, sub) in boolean.clauses() {
        let sub = lift_negations(sub.box_clone());
        if *occur == Occur::Must && only_negations(sub.as_ref()) {
            let inner = sub
                .as_ref()
                .downcast_ref::<BooleanQuery>()
                .expect("checked above");
            clauses.extend(inner.clauses().iter().map(|(o, q)| (*o, q.box_clone())));
        } else {
            clauses.push((*occur, sub));
        }
    }
    let minimum = boolean.get_minimum_number_should_match();
    Box::new(BooleanQuery::with_minimum_required_clauses(
        clauses, minimum,
    ))
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
    fn dates_of_received_clauses_are_read_as_midnight() {
        assert_eq!(
            with_full_dates("x received:[2026-12-01 TO 2026-12-31] y 2026-01-01"),
            "x received:[2026-12-01T00:00:00Z TO 2026-12-31T00:00:00Z] y 2026-01-01"
        );
        assert_eq!(
            with_full_dates("received:>2026-12-01 AND received:2026-12-02T10:00:00Z"),
            "received:>2026-12-01T00:00:00Z AND received:2026-12-02T10:00:00Z"
        );
        assert_eq!(with_full_dates("no dates here"), "no dates here");
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

    #[test]
    fn phrases_with_slop_or_a_prefix_are_loose() {
        for q in [
            "\"a b\"~2",
            "x AND \"fix the\"*",
            "(y OR \"the bug\"~1)^2",
            "text:\"a b\"~1",
        ] {
            assert!(has_loose_phrase(q), "{q}");
        }
        for q in [
            "\"fix the bug\"",
            "readme",
            "event:push",
            "(a",
            "\"the\" AND x",
        ] {
            assert!(!has_loose_phrase(q), "{q}");
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
