//! The query string around tantivy's parser: dates completed to full timestamps
//! before it, loose phrases told apart (they cannot use common-word pairs), and
//! negations lifted out of groups after it.

use std::borrow::Cow;

use tantivy::query::{BooleanQuery, Occur, Query};
use tantivy::query_grammar::{self, UserInputAst, UserInputLeaf};

/// Whether a phrase in `q` allows other words between its own (`"a b"~2`) or ends
/// in a prefix (`"a b"*`): such phrases cannot use common-word pairs. (A query that
/// does not parse gets the parser's message either way.)
pub(super) fn has_loose_phrase(q: &str) -> bool {
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
pub(super) fn with_full_dates(q: &str) -> Cow<'_, str> {
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

/// tantivy parses `a AND NOT b` as `+a +(-b)`, and a group of only negations
/// matches nothing, so the whole query would match nothing. Lifts such negations into
/// the enclosing query: `+a -b`. (A query of only negations is refused by the parser.)
pub(super) fn lift_negations(query: Box<dyn Query>) -> Box<dyn Query> {
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
}
