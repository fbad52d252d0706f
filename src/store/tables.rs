//! Every redb table, in one place. Names carry a version: a change of key or value
//! layout gets a new name (and a migration), never a silent reinterpretation.

use redb::TableDefinition;

/// Schema version, next sequence id and store-wide counters.
pub const META: TableDefinition<&str, u64> = TableDefinition::new("meta_v1");
/// seq → [`EventRecord`](super::EventRecord) (codec-encoded metadata).
pub const EVENTS: TableDefinition<u64, &[u8]> = TableDefinition::new("events_v1");
/// seq → zstd-compressed raw body, byte-identical to what was received once inflated.
pub const PAYLOADS: TableDefinition<u64, &[u8]> = TableDefinition::new("payloads_v1");
/// seq → codec-encoded request headers.
pub const HEADERS: TableDefinition<u64, &[u8]> = TableDefinition::new("headers_v1");
/// delivery id → seq, for every stored delivery. Unique forever.
pub const DELIVERIES: TableDefinition<&str, u64> = TableDefinition::new("deliveries_v1");
/// delivery id → seq of the stored event it duplicated by content (another hook's copy).
pub const CONTENT_DUPLICATES: TableDefinition<&str, u64> =
    TableDefinition::new("content_duplicates_v1");
/// (field, value, received_at_ms, seq) → (): the secondary indexes, newest last.
/// Fields are the `IndexField` names; `("all", "")` lists every event.
pub const EVENT_INDEX: TableDefinition<(&str, &str, i64, u64), ()> =
    TableDefinition::new("event_index_v1");
/// (field, value) → number of entries in `EVENT_INDEX`, to pick the most selective index.
pub const INDEX_COUNTS: TableDefinition<(&str, &str), u64> =
    TableDefinition::new("index_counts_v1");

/// Keys of `META`.
pub mod meta {
    pub const SCHEMA_VERSION: &str = "schema_version";
    pub const NEXT_SEQ: &str = "next_seq";
    /// Deliveries answered `duplicate` because their delivery id was already stored.
    pub const DELIVERY_DUPLICATES: &str = "delivery_duplicates";
    /// Deliveries answered `duplicate` because their content key was seen within the TTL.
    pub const CONTENT_DUPLICATES: &str = "content_duplicates";
}

pub const SCHEMA_VERSION: u64 = 1;
