//! Pure types of the webhook domain: parsed identifiers, the fields extracted from a
//! payload and the content key used for deduplication. No I/O lives here.

pub mod catalog;
mod content_key;
mod delivery;
mod delivery_id;
mod error_code;
mod event_type;
mod fields;
pub mod filter;
mod hook_ref;
pub mod job;
pub mod json;
mod refusal;
pub mod searchable;
pub mod timestamp;
mod visibility;

pub use content_key::ContentKey;
pub use delivery::{Delivery, PayloadEncoding};
pub use delivery_id::DeliveryId;
pub use error_code::ErrorCode;
pub use event_type::EventType;
pub use fields::EventFields;
pub use filter::{FilterSpec, IngestFilter, SharedFilter};
pub use hook_ref::HookRef;
pub use refusal::Refusal;
pub use visibility::Visibility;

/// A value from the outside world that does not fit its type.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{0}")]
pub struct DomainError(pub String);
