//! Payload parts the ingest path parsed, waiting for the indexer. Ingest parses every
//! delivery once anyway (`ingest::Payload`, which keeps the searchable parts); the
//! indexer would otherwise read each new event back from the store, decompress it and
//! parse it again, about half of its CPU per event. A miss costs only that read: the
//! hand-off is bounded and nothing depends on it.
//!
//! Entries are keyed by delivery id and checked against the stored record's receive
//! time, so a racing copy of a delivery never lends its parts to the original.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use serde_json::Value;

use crate::store::EventRecord;

/// Entries held at most. The indexer takes each within about a second; more than
/// this waiting means it is rebuilding or failing, and the store serves instead.
const CAPACITY: usize = 8_192;

#[derive(Default)]
pub struct Fresh {
    parts: Mutex<HashMap<String, (i64, Arc<Value>)>>,
}

impl Fresh {
    fn lock(&self) -> MutexGuard<'_, HashMap<String, (i64, Arc<Value>)>> {
        // Whole entries only: a panic while holding the lock leaves a usable map.
        self.parts.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Offers a delivery's parts before it is stored. A delivery id already waiting
    /// keeps its first parts.
    pub fn offer(&self, delivery_id: &str, received_at_ms: i64, parts: Arc<Value>) {
        let mut waiting = self.lock();
        if waiting.len() >= CAPACITY {
            waiting.clear();
        }
        waiting
            .entry(delivery_id.to_owned())
            .or_insert((received_at_ms, parts));
    }

    /// Takes back what [`Fresh::offer`] gave for a delivery that was not stored (a
    /// duplicate, a failed append).
    pub fn withdraw(&self, delivery_id: &str, received_at_ms: i64) {
        let mut waiting = self.lock();
        if waiting
            .get(delivery_id)
            .is_some_and(|(at, _)| *at == received_at_ms)
        {
            waiting.remove(delivery_id);
        }
    }

    /// The parts offered for this stored event, if still waiting.
    pub(super) fn take(&self, record: &EventRecord) -> Option<Arc<Value>> {
        let mut waiting = self.lock();
        let (at, _) = waiting.get(record.origin.delivery_id.as_str())?;
        if *at != record.received_at_ms {
            return None;
        }
        waiting
            .remove(record.origin.delivery_id.as_str())
            .map(|(_, parts)| parts)
    }

    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.lock().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Delivery, DeliveryId, EventFields, EventType, PayloadEncoding};

    fn record(id: &str, received_at_ms: i64) -> EventRecord {
        let delivery = Delivery {
            id: DeliveryId::parse(id).unwrap(),
            event: EventType::parse("ping").unwrap(),
            hook_id: None,
            headers: Vec::new(),
            encoding: PayloadEncoding::Json,
            body: "{}".into(),
            fields: EventFields::default(),
            content_key: None,
            received_at_ms,
            test: false,
        };
        crate::store::Store::prepare(delivery).unwrap().record
    }

    #[test]
    fn parts_go_to_the_delivery_offered_and_once() {
        let fresh = Fresh::default();
        let parts = Arc::new(serde_json::json!({"zen": "first"}));
        fresh.offer("a", 10, parts.clone());
        // A racing copy, received later: neither replaces nor removes the first.
        fresh.offer("a", 11, Arc::new(serde_json::json!({"zen": "copy"})));
        fresh.withdraw("a", 11);
        assert_eq!(fresh.take(&record("a", 11)), None);
        assert_eq!(fresh.take(&record("a", 10)), Some(parts));
        assert_eq!(fresh.take(&record("a", 10)), None);
        fresh.offer("b", 12, Arc::new(Value::Null));
        fresh.withdraw("b", 12);
        assert_eq!(fresh.len(), 0);
    }

    #[test]
    fn it_holds_a_bounded_number() {
        let fresh = Fresh::default();
        for n in 0..CAPACITY + 10 {
            fresh.offer(&format!("d{n}"), 1, Arc::new(Value::Null));
        }
        assert!(fresh.len() <= CAPACITY);
    }
}
