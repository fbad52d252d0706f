//! The search index's fields. Exact-match fields use the raw tokenizer (a whole value
//! is one term); `text` is the human text of the event, tokenized for words and
//! phrases. Payloads are not stored here: redb has them.

use tantivy::schema::{
    DateOptions, DateTimePrecision, FAST, FacetOptions, Field, INDEXED, IndexRecordOption, STORED,
    STRING, Schema, TextFieldIndexing, TextOptions,
};

/// Bumped whenever fields change: an index with another version is rebuilt.
pub const SCHEMA_VERSION: u32 = 1;

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
    pub facet: Field,
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

pub fn build() -> (Schema, Fields) {
    let mut builder = Schema::builder();
    let exact = STRING | FAST;
    let text = TextOptions::default().set_indexing_options(
        TextFieldIndexing::default()
            .set_tokenizer("default")
            .set_index_option(IndexRecordOption::WithFreqsAndPositions),
    );
    let fields = Fields {
        seq: builder.add_u64_field("seq", INDEXED | STORED | FAST),
        delivery: builder.add_text_field("delivery", STRING),
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
            DateOptions::from(INDEXED | FAST).set_precision(DateTimePrecision::Milliseconds),
        ),
        text: builder.add_text_field("text", text),
        facet: builder.add_facet_field("facet", FacetOptions::default()),
    };
    (builder.build(), fields)
}

/// The `received` value of a Unix time in milliseconds. tantivy keeps dates as i64
/// nanoseconds, which end in 2262 (and begin in 1677), while the API accepts dates
/// up to 9999 (`startDate=3000-01-01`), so times outside are clamped to the nearest
/// representable one instead of overflowing. No stored event is that far out, so a
/// clamped bound selects the same events as the exact one would.
pub fn received_date(ms: i64) -> tantivy::DateTime {
    const LIMIT_MS: i64 = i64::MAX / 1_000_000;
    tantivy::DateTime::from_timestamp_millis(ms.clamp(-LIMIT_MS, LIMIT_MS))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn received_dates_outside_tantivys_range_are_clamped() {
        let far_future = crate::domain::timestamp::parse("9999-12-31").unwrap();
        let far_past = crate::domain::timestamp::parse("0001-01-01").unwrap();
        let year_2100 = crate::domain::timestamp::parse("2100-01-01").unwrap();
        assert!(received_date(far_future) > received_date(year_2100));
        assert!(received_date(far_past) < received_date(0));
        assert_eq!(
            received_date(1_704_067_200_000),
            tantivy::DateTime::from_timestamp_millis(1_704_067_200_000)
        );
    }
}
