//! Where the searchable parts of a payload are: the human text, the branch or tag,
//! the conclusion and the labels, by JSON pointer. The search index builds its
//! documents from them; the ingest parse keeps them, so a new event's document is
//! built from the parse ingest made anyway (`search::Fresh`).

use super::json::Paths;

/// Payload strings that are human text, wherever the event type puts them.
pub const TEXT_POINTERS: &[&str] = &[
    "/issue/title",
    "/issue/body",
    "/pull_request/title",
    "/pull_request/body",
    "/comment/body",
    "/review/body",
    "/head_commit/message",
    "/release/name",
    "/release/body",
    "/release/tag_name",
    "/workflow_job/name",
    "/workflow_job/workflow_name",
    "/workflow_run/name",
    "/workflow_run/display_title",
    "/workflow_run/head_commit/message",
    "/check_run/name",
    "/check_run/output/title",
    "/check_run/output/summary",
    "/check_suite/head_commit/message",
    "/alert/rule/description",
    "/alert/rule/name",
    "/alert/secret_type_display_name",
    "/alert/security_advisory/summary",
    "/alert/security_advisory/description",
    "/alert/affected_package_name",
    "/security_advisory/summary",
    "/security_advisory/description",
    "/repository_advisory/summary",
    "/discussion/title",
    "/discussion/body",
    "/deployment/description",
    "/deployment/environment",
    "/deployment_status/description",
    "/label/name",
    "/label/description",
    "/milestone/title",
    "/milestone/description",
    "/package/name",
    "/project/name",
    "/project_card/note",
    "/team/name",
    "/workflow",
    "/description",
    "/context",
    "/zen",
];

/// Arrays whose items carry text: (array pointer, keys within each item).
pub const TEXT_ARRAYS: &[(&str, &[&str])] = &[
    ("/commits", &["message"]),
    ("/pages", &["title", "page_name", "summary"]),
    ("/issue/labels", &["name"]),
    ("/pull_request/labels", &["name"]),
];

/// Where the branch or tag is, by event type.
pub const REFERENCE_POINTERS: &[&str] = &[
    "/ref",
    "/pull_request/head/ref",
    "/workflow_run/head_branch",
    "/workflow_job/head_branch",
    "/check_suite/head_branch",
    "/check_run/check_suite/head_branch",
];

pub const CONCLUSION_POINTERS: &[&str] = &[
    "/workflow_job/conclusion",
    "/workflow_run/conclusion",
    "/check_run/conclusion",
    "/check_suite/conclusion",
];

/// Arrays of label objects, and the one label of `labeled` events.
pub const LABEL_ARRAYS: &[&str] = &[
    "/issue/labels",
    "/pull_request/labels",
    "/discussion/labels",
];
pub const LABEL_POINTER: &str = "/label/name";

/// Every part of a payload a search document reads.
pub fn paths() -> Paths {
    Paths::new(pointers().iter().map(String::as_str))
}

/// The pointers [`paths`] is made of; an array's keys as `/array/key`.
pub fn pointers() -> Vec<String> {
    let array_keys = TEXT_ARRAYS
        .iter()
        .flat_map(|(array, keys)| keys.iter().map(move |key| format!("{array}/{key}")));
    let label_names = LABEL_ARRAYS.iter().map(|array| format!("{array}/name"));
    TEXT_POINTERS
        .iter()
        .chain(REFERENCE_POINTERS)
        .chain(CONCLUSION_POINTERS)
        .chain([&LABEL_POINTER])
        .map(|pointer| (*pointer).to_owned())
        .chain(array_keys)
        .chain(label_names)
        .collect()
}
