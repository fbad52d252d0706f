//! What an event contributes to the index: its exact-match values and the human text
//! of its type (titles, bodies, comments, commit messages, release notes, workflow,
//! job and check names, alert descriptions, wiki page titles…).

use std::sync::LazyLock;

use serde_json::Value;
use tantivy::TantivyDocument;

use super::schema::{Fields, facet_value, received_date};
use crate::domain::json::{self, Paths};
use crate::domain::searchable::{
    CONCLUSION_POINTERS, LABEL_ARRAYS, LABEL_POINTER, REFERENCE_POINTERS, TEXT_ARRAYS,
    TEXT_POINTERS,
};
use crate::domain::{PayloadEncoding, searchable};
use crate::ingest;
use crate::store::EventRecord;

static DOCUMENT_PATHS: LazyLock<Paths> = LazyLock::new(searchable::paths);

/// The parts of a stored payload its document reads, parsed without building the
/// rest (most of a payload is URLs, ids and nested objects nothing here reads). A
/// payload that does not decode (corruption) gives an empty document.
pub fn payload_of(encoding: PayloadEncoding, body: &[u8]) -> Value {
    ingest::payload_text(encoding, body)
        .ok()
        .and_then(|text| json::parse_only(&text, &DOCUMENT_PATHS).ok())
        .unwrap_or_default()
}

/// The human text of a payload, one piece a line.
pub fn text_of(payload: &Value) -> String {
    let mut pieces: Vec<&str> = Vec::new();
    for pointer in TEXT_POINTERS {
        if let Some(text) = json::at(payload, pointer).and_then(Value::as_str) {
            pieces.push(text);
        }
    }
    for (array, keys) in TEXT_ARRAYS {
        for item in json::at(payload, array)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            pieces.extend(keys.iter().filter_map(|k| item[*k].as_str()));
        }
    }
    pieces.retain(|p| !p.trim().is_empty());
    pieces.join("\n")
}

/// Branch or tag the event is about, without `refs/heads/` or `refs/tags/`.
fn reference(payload: &Value) -> Option<String> {
    REFERENCE_POINTERS
        .iter()
        .find_map(|p| json::at(payload, p).and_then(Value::as_str))
        .map(|r| {
            r.trim_start_matches("refs/heads/")
                .trim_start_matches("refs/tags/")
                .to_owned()
        })
}

fn conclusion(payload: &Value) -> Option<&str> {
    CONCLUSION_POINTERS
        .iter()
        .find_map(|p| json::at(payload, p).and_then(Value::as_str))
}

fn labels(payload: &Value) -> Vec<&str> {
    let mut labels: Vec<&str> = LABEL_ARRAYS
        .iter()
        .filter_map(|p| json::at(payload, p).and_then(Value::as_array))
        .flatten()
        .filter_map(|l| l["name"].as_str())
        .collect();
    labels.extend(json::at(payload, LABEL_POINTER).and_then(Value::as_str));
    labels
}

/// The names an event is known by (type, action, repository, organization, sender),
/// as words, so a bare word of a search finds them (`Codertocat`, `Hello-World`,
/// `push`), as it finds the words of the text.
fn names_of(record: &EventRecord) -> String {
    [
        Some(record.origin.event.as_str()),
        record.origin.action.as_deref(),
        record.origin.repository.as_deref(),
        record.origin.organization.as_deref(),
        record.origin.sender.as_deref(),
    ]
    .into_iter()
    .flatten()
    .collect::<Vec<_>>()
    .join("\n")
}

pub fn build(fields: &Fields, seq: u64, record: &EventRecord, payload: &Value) -> TantivyDocument {
    let mut doc = TantivyDocument::default();
    doc.add_u64(fields.seq, seq);
    doc.add_text(fields.delivery, &record.origin.delivery_id);
    doc.add_text(fields.event, &record.origin.event);
    doc.add_text(fields.status, record.status.as_str());
    doc.add_text(
        fields.facets,
        facet_value(&record.origin.event, record.origin.repository.as_deref()),
    );
    let optional = [
        (fields.action, record.origin.action.as_deref()),
        (fields.repository, record.origin.repository.as_deref()),
        (fields.organization, record.origin.organization.as_deref()),
        (fields.sender, record.origin.sender.as_deref()),
        (fields.conclusion, conclusion(payload)),
    ];
    for (field, value) in optional {
        if let Some(value) = value {
            doc.add_text(field, value);
        }
    }
    if let Some(reference) = reference(payload) {
        doc.add_text(fields.reference, &reference);
    }
    for label in labels(payload) {
        doc.add_text(fields.label, label);
    }
    doc.add_date(fields.received, received_date(record.received_at_ms));
    doc.add_text(fields.text, names_of(record));
    doc.add_text(fields.text, text_of(payload));
    doc
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn collects_text_from_objects_and_arrays() {
        let payload = json!({
            "pull_request": {"title": "Fix the flux capacitor", "body": "It leaked.", "labels": [{"name": "bug"}]},
            "commits": [{"message": "first"}, {"message": "second"}],
        });
        let text = text_of(&payload);
        for piece in [
            "Fix the flux capacitor",
            "It leaked.",
            "first",
            "second",
            "bug",
        ] {
            assert!(text.contains(piece), "{piece} in {text:?}");
        }
        assert_eq!(labels(&payload), vec!["bug"]);
    }

    /// The index reads a pruned parse; every document must come out as it would
    /// from the whole payload.
    #[test]
    fn documents_from_the_pruned_payload_equal_those_from_the_whole() {
        for (text, whole) in crate::domain::json::tests::every_fixture() {
            let part = payload_of(PayloadEncoding::Json, &text);
            // The parts ingest keeps, which new events' documents are built from.
            let ingested = ingest::Payload::parse(PayloadEncoding::Json, text.into()).unwrap();
            for part in [&part, ingested.read_parts()] {
                assert_eq!(text_of(part), text_of(&whole));
                assert_eq!(reference(part), reference(&whole));
                assert_eq!(conclusion(part), conclusion(&whole));
                assert_eq!(labels(part), labels(&whole));
            }
        }
        let form = b"payload=%7B%22zen%22%3A%22Keep+it+simple%22%2C%22hook_id%22%3A1%7D";
        assert_eq!(
            text_of(&payload_of(PayloadEncoding::Form, form)),
            "Keep it simple"
        );
        assert_eq!(
            payload_of(PayloadEncoding::Json, b"{\"zen\": "),
            Value::Null
        );
    }

    #[test]
    fn references_drop_their_prefix() {
        assert_eq!(
            reference(&json!({"ref": "refs/heads/main"})).as_deref(),
            Some("main")
        );
        assert_eq!(
            reference(&json!({"ref": "refs/tags/v1.0"})).as_deref(),
            Some("v1.0")
        );
        assert_eq!(
            reference(&json!({"workflow_run": {"head_branch": "dev"}})).as_deref(),
            Some("dev")
        );
    }
}
