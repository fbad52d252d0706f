//! A verified payload, built in two depths. The parts hookvault's own code reads
//! (fields, content key, structure check, facts) are built at once; the whole tree
//! only when something asks for it: a processing stage, or a Socket.IO message for a
//! subscriber. Under load usually nothing does, and building the whole tree of a
//! ~10 KB payload was the largest single cost of a request after the HMAC (README
//! "What bounds ingest here"). The parts read include what the search index reads,
//! so a new event's document is built from this parse (`search::Fresh`).

use std::sync::{Arc, LazyLock, OnceLock};

use bytes::Bytes;
use serde_json::Value;

use super::{IngestError, decode_payload, payload_text};
use crate::domain::json::{self, Paths};
use crate::domain::{ContentKey, EventFields, PayloadEncoding, catalog, searchable};

/// Everything ingest, processing and the search index read of a payload, whatever
/// its type.
static READ_PATHS: LazyLock<Paths> = LazyLock::new(|| {
    let required = catalog::all().iter().flat_map(|kind| kind.required.iter());
    let searchable = searchable::pointers();
    Paths::new(
        EventFields::POINTERS
            .iter()
            .chain(ContentKey::POINTERS)
            .chain(required)
            .chain(catalog::FACT_POINTERS)
            .copied()
            .chain(searchable.iter().map(String::as_str)),
    )
});

pub struct Payload {
    encoding: PayloadEncoding,
    body: Bytes,
    read: Arc<Value>,
    whole: OnceLock<Value>,
}

impl Payload {
    /// Checks that `body` carries a JSON object (refusing what serde_json refuses) and
    /// builds the parts that are read.
    pub fn parse(encoding: PayloadEncoding, body: Bytes) -> Result<Self, IngestError> {
        // A form body is ASCII as GitHub sends it; raw bytes that are not UTF-8 would
        // not survive an export, which carries the body as text.
        if encoding == PayloadEncoding::Form && std::str::from_utf8(&body).is_err() {
            return Err(IngestError::FormNotText);
        }
        let read = json::parse_only(&payload_text(encoding, &body)?, &READ_PATHS)
            .map_err(|e| IngestError::InvalidJson(e.to_string()))?;
        if !read.is_object() {
            return Err(IngestError::NotAnObject);
        }
        Ok(Self {
            encoding,
            body,
            read: Arc::new(read),
            whole: OnceLock::new(),
        })
    }

    /// Stands in for a stored body that no longer decodes: `null` at every depth.
    pub fn unreadable() -> Self {
        Self {
            encoding: PayloadEncoding::Json,
            body: Bytes::new(),
            read: Arc::new(Value::Null),
            whole: OnceLock::from(Value::Null),
        }
    }

    /// The parts read by fields, content key, structure check and facts; the rest of
    /// the payload is left out.
    pub fn read_parts(&self) -> &Value {
        &self.read
    }

    /// [`Payload::read_parts`], shared.
    pub fn shared_parts(&self) -> Arc<Value> {
        self.read.clone()
    }

    /// The whole payload, built on first use.
    pub fn whole(&self) -> &Value {
        self.whole.get_or_init(|| {
            // The text was parsed once already, so this does not fail; if it did, the
            // parts read are the most there is.
            decode_payload(self.encoding, &self.body).unwrap_or_else(|_| (*self.read).clone())
        })
    }
}

impl std::fmt::Debug for Payload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Payload")
            .field("encoding", &self.encoding)
            .field("bytes", &self.body.len())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::json::tests::every_fixture;

    /// Each part read is there; the rest is not built.
    #[test]
    fn the_parts_leave_the_rest_out() {
        let (text, whole) = every_fixture()
            .into_iter()
            .find(|(_, v)| v["pull_request"]["merged"].is_boolean())
            .unwrap();
        let payload = Payload::parse(PayloadEncoding::Json, text.into()).unwrap();
        let parts = payload.read_parts();
        assert_eq!(
            parts["pull_request"]["merged"],
            whole["pull_request"]["merged"]
        );
        assert_eq!(parts["sender"]["login"], whole["sender"]["login"]);
        assert!(whole["pull_request"]["user"].is_object());
        assert!(parts["pull_request"]["user"].is_null());
        assert!(whole["repository"]["owner"]["id"].is_number());
        assert!(parts["repository"]["owner"]["id"].is_null());
    }

    #[test]
    fn refuses_what_is_not_a_json_object() {
        let parse = |body: &'static [u8]| Payload::parse(PayloadEncoding::Json, body.into());
        assert!(matches!(parse(b"[1, 2]"), Err(IngestError::NotAnObject)));
        assert!(matches!(
            parse(b"{\"a\":"),
            Err(IngestError::InvalidJson(_))
        ));
        let form = Payload::parse(
            PayloadEncoding::Form,
            Bytes::from_static(b"payload=%7B%22zen%22%3A%22Keep+it+simple%22%7D"),
        )
        .unwrap();
        assert_eq!(form.whole()["zen"], "Keep it simple");
    }
}
