//! The content-dedup window: content key → the event first stored with it, for
//! `WEBHOOK_DEDUP_TTL`. quick_cache bounds memory; it has no TTL of its own, so each
//! entry carries its event's receive time and expired entries read as absent.
//!
//! Times are the deliveries' own receive times (ms since the epoch), never the clock
//! of the moment a decision is made: a cluster node catching up on the log an hour
//! late must decide exactly as the nodes that decided at once.

use std::sync::Arc;
use std::time::Duration;

use quick_cache::unsync::Cache;

use crate::domain::ContentKey;

/// Most keys remembered at once; at a sustained 1,000 deliveries/s with a 60 s window
/// this holds every key. Past it the least useful keys are evicted, which can only let
/// a duplicate through, never drop an event.
const CAPACITY: usize = 100_000;

pub struct ContentWindow {
    ttl: Duration,
    seen: Cache<ContentKey, (Original, i64)>,
}

/// The event first stored with a content key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Original {
    pub seq: u64,
    pub delivery_id: Arc<str>,
}

impl ContentWindow {
    pub fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            seen: Cache::new(if ttl.is_zero() { 1 } else { CAPACITY }),
        }
    }

    /// False when `WEBHOOK_DEDUP_TTL` is 0: content dedup is off entirely.
    pub fn is_enabled(&self) -> bool {
        !self.ttl.is_zero()
    }

    /// The event stored with this key within the window before a delivery received
    /// at `received_ms`, if any.
    pub fn lookup(&self, key: &ContentKey, received_ms: i64) -> Option<Original> {
        if !self.is_enabled() {
            return None;
        }
        let (original, stored_ms) = self.seen.get(key)?;
        let age = u64::try_from(received_ms.saturating_sub(*stored_ms)).unwrap_or(0);
        (u128::from(age) < self.ttl.as_millis()).then(|| original.clone())
    }

    /// Remembers the first event with `key`, received at `received_ms`.
    pub fn remember(&mut self, key: ContentKey, original: Original, received_ms: i64) {
        if self.is_enabled() {
            self.seen.insert(key, (original, received_ms));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn original(seq: u64) -> Original {
        Original {
            seq,
            delivery_id: format!("d-{seq}").into(),
        }
    }

    #[test]
    fn keys_expire_after_the_ttl() {
        let mut window = ContentWindow::new(Duration::from_secs(60));
        let key = ContentKey([7; 32]);
        let t0 = 1_700_000_000_000;
        window.remember(key, original(5), t0);
        assert_eq!(window.lookup(&key, t0 + 59_999), Some(original(5)));
        assert_eq!(window.lookup(&key, t0 + 60_000), None);
        assert_eq!(window.lookup(&ContentKey([8; 32]), t0), None);
        // A delivery received earlier (another node's clock) is within the window.
        assert_eq!(window.lookup(&key, t0 - 5_000), Some(original(5)));
    }

    #[test]
    fn zero_ttl_turns_content_dedup_off() {
        let mut window = ContentWindow::new(Duration::ZERO);
        let key = ContentKey([7; 32]);
        window.remember(key, original(5), 1_000);
        assert_eq!(window.lookup(&key, 1_000), None);
    }
}
