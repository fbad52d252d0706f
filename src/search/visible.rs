//! The clause every search of a limited caller carries: only the events of its
//! organizations and repositories ([`Visibility`] holds the rule). Names match
//! whatever their case, as [`Visibility`] does: the exact fields keep GitHub's case.

use tantivy::query::{BooleanQuery, Occur, Query, RegexQuery};

use super::schema::Fields;
use crate::domain::Visibility;

/// `None` for a caller who sees everything; else a query matching the events of an
/// organization's repositories, of a listed repository, or of the organization
/// itself (those without a repository). Hits are checked against [`Visibility`]
/// again as they are read, so this is the filter the totals and facets count, not
/// the last word.
pub fn filter(fields: &Fields, visibility: &Visibility) -> tantivy::Result<Option<Box<dyn Query>>> {
    let Some((organizations, repositories)) = visibility.limits() else {
        return Ok(None);
    };
    let mut clauses: Vec<(Occur, Box<dyn Query>)> = Vec::new();
    for org in organizations {
        let of_repositories = format!("(?i){}/.+", escape(org));
        clauses.push((
            Occur::Should,
            Box::new(RegexQuery::from_pattern(
                &of_repositories,
                fields.repository,
            )?),
        ));
        let itself = format!("(?i){}", escape(org));
        clauses.push((
            Occur::Should,
            Box::new(RegexQuery::from_pattern(&itself, fields.organization)?),
        ));
    }
    for repository in repositories {
        let exact = format!("(?i){}", escape(repository));
        clauses.push((
            Occur::Should,
            Box::new(RegexQuery::from_pattern(&exact, fields.repository)?),
        ));
    }
    // No clause (a caller who sees nothing) matches nothing.
    Ok(Some(Box::new(BooleanQuery::new(clauses))))
}

/// `name` as a regular expression matching itself: names hold letters, digits,
/// `.`, `_`, `-` and `/`, and every character but letters and digits is escaped.
fn escape(name: &str) -> String {
    let mut out = String::with_capacity(name.len() * 2);
    for c in name.chars() {
        if !c.is_ascii_alphanumeric() {
            out.push('\\');
        }
        out.push(c);
    }
    out
}
