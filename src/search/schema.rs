//! The search index's fields. Exact-match fields use the raw tokenizer (a whole value
//! is one term); `text` is the human text of the event, tokenized for words and
//! phrases. Payloads are not stored here: redb has them.

use tantivy::DateTime;
use tantivy::schema::{
    DateOptions, DateTimePrecision, FAST, Field, IndexRecordOption, NumericOptions, Schema,
    TextFieldIndexing, TextOptions,
};

/// Bumped whenever fields change: an index with another version is rebuilt.
/// 2: the `facet` field is gone (facets are counted from the `event` and
/// `repository` columns). 3: `seq` is no longer stored (hits read its column), so
/// the index keeps no document store; only `text` keeps field norms. 4: `text` also
/// holds common-word pairs (`common_grams`). 5: `facets` (one column for both facet
/// counts). 6: `text` also holds the event's names (type, action, repository,
/// organization, sender).
pub const SCHEMA_VERSION: u32 = 6;

/// The analyzer `text` is indexed with (registered when the index is opened).
pub const TEXT_TOKENIZER: &str = "words_and_common_pairs";

#[derive(Clone, Copy)]
pub struct Fields {
    pub seq: Field,
    pub delivery: Field,
    pub event: Field,
    pub action: Field,
    pub repository: Field,
    pub organization: Field,
    pub sender: Field,
    pub status: Field,
    pub reference: Field,
    pub conclusion: Field,
    pub label: Field,
    pub received: Field,
    pub text: Field,
    pub facets: Field,
}

/// Names usable in queries (`event:push`, `repository:"octo/app"`, …).
pub const EXACT_FIELDS: &[&str] = &[
    "delivery",
    "event",
    "action",
    "repository",
    "organization",
    "sender",
    "status",
    "ref",
    "conclusion",
    "label",
];

/// A time in ms for the `received` field. tantivy dates are nanoseconds in an i64
/// (years 1677 to 2262) and overflow beyond, while API dates and imported times may
/// name any year up to 9999 (`endDate=9999-12-31` for "no end"): such times are
/// clamped, which keeps them in order against every time in range.
pub fn received_date(ms: i64) -> DateTime {
    DateTime::from_timestamp_millis(ms.clamp(i64::MIN / 1_000_000, i64::MAX / 1_000_000))
}

/// The column a search counts facets from (`Fields::facets`).
pub const FACETS: &str = "facets";

/// An event's value in the `facets` column: its type and repository (empty when it
/// has none) in one string. A search counts its hits per value of this one column,
/// which every document has: for a broad query, a quarter of all events, each hit is
/// one lookup instead of one per facet, and no lookup in the index of which
/// documents have a repository (about half the cost of counting). Event types hold
/// no space (`EventType`), so the first one splits the two again.
pub fn facet_value(event: &str, repository: Option<&str>) -> String {
    format!("{event} {}", repository.unwrap_or(""))
}

/// The event type and repository (if any) of a `facets` value.
pub fn facet_parts(value: &str) -> (&str, Option<&str>) {
    match value.split_once(' ') {
        Some((event, "")) => (event, None),
        Some((event, repository)) => (event, Some(repository)),
        None => (value, None),
    }
}

pub fn build() -> (Schema, Fields) {
    let mut builder = Schema::builder();
    // No field norms outside `text`: a norm is a byte per document and field, read
    // only to weigh a word by the length of its field, and an exact field holds one
    // term (every match scores alike). Twelve such fields were a fifth of the index.
    let exact_indexing = TextFieldIndexing::default()
        .set_tokenizer("raw")
        .set_index_option(IndexRecordOption::Basic)
        .set_fieldnorms(false);
    let exact_index_only = TextOptions::default().set_indexing_options(exact_indexing);
    let exact = exact_index_only.clone() | FAST;
    let text = TextOptions::default().set_indexing_options(
        TextFieldIndexing::default()
            .set_tokenizer(TEXT_TOKENIZER)
            .set_index_option(IndexRecordOption::WithFreqsAndPositions),
    );
    let fields = Fields {
        seq: builder.add_u64_field("seq", NumericOptions::default().set_indexed().set_fast()),
        delivery: builder.add_text_field("delivery", exact_index_only),
        event: builder.add_text_field("event", exact.clone()),
        action: builder.add_text_field("action", exact.clone()),
        repository: builder.add_text_field("repository", exact.clone()),
        organization: builder.add_text_field("organization", exact.clone()),
        sender: builder.add_text_field("sender", exact.clone()),
        status: builder.add_text_field("status", exact.clone()),
        reference: builder.add_text_field("ref", exact.clone()),
        conclusion: builder.add_text_field("conclusion", exact.clone()),
        label: builder.add_text_field("label", exact),
        // Millisecond precision: tantivy's default (seconds) would blur date ranges
        // and time ordering within a second.
        received: builder.add_date_field(
            "received",
            DateOptions::default()
                .set_indexed()
                .set_fast()
                .set_precision(DateTimePrecision::Milliseconds),
        ),
        text: builder.add_text_field("text", text),
        // A column only (not searchable): `facet_value` of the event's type and
        // repository, what a search counts for every hit.
        facets: builder.add_text_field(FACETS, FAST),
    };
    (builder.build(), fields)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The index keeps a byte per document for each field with norms and a document
    /// store for each stored one: only `text` needs norms (scoring words), nothing
    /// needs storing (hits read `seq` from its column, the rest is in the store).
    #[test]
    fn only_text_has_norms_and_nothing_is_stored() {
        let (schema, fields) = build();
        for (field, entry) in schema.fields() {
            assert_eq!(
                entry.has_fieldnorms(),
                field == fields.text,
                "{}",
                entry.name()
            );
            assert!(!entry.is_stored(), "{}", entry.name());
        }
        assert!(schema.get_field_entry(fields.seq).is_fast());
    }

    #[test]
    fn facet_values_split_into_type_and_repository() {
        for (event, repository) in [
            ("push", Some("octo-org/hello world")),
            ("sponsorship", None),
            ("ping", Some("a b c")),
        ] {
            assert_eq!(
                facet_parts(&facet_value(event, repository)),
                (event, repository)
            );
        }
    }

    #[test]
    fn received_dates_beyond_tantivys_range_are_clamped() {
        let now = received_date(1_704_067_200_000);
        assert!(received_date(i64::MAX) > now);
        assert!(received_date(i64::MIN) < now);
        assert_eq!(
            received_date(1_704_067_200_123).into_timestamp_millis(),
            1_704_067_200_123
        );
    }
}
