//! The content-dedup window: content key → the event first stored with it, for
//! `WEBHOOK_DEDUP_TTL`. quick_cache bounds memory; it has no TTL of its own, so each
//! entry carries the instant it was stored and expired entries read as absent.

use std::sync::Arc;
use std::time::{Duration, Instant};

use quick_cache::unsync::Cache;

use crate::domain::ContentKey;

/// Most keys remembered at once; at a sustained 1,000 deliveries/s with a 60 s window
/// this holds every key. Past it the least useful keys are evicted, which can only let
/// a duplicate through, never drop an event.
const CAPACITY: usize = 100_000;

pub struct ContentWindow {
    ttl: Duration,
    seen: Cache<ContentKey, (Original, Instant)>,
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

    /// The event stored with this key within the window, if any.
    pub fn lookup(&self, key: &ContentKey, now: Instant) -> Option<Original> {
        if !self.is_enabled() {
            return None;
        }
        let (original, stored_at) = self.seen.get(key)?;
        (now.saturating_duration_since(*stored_at) < self.ttl).then(|| original.clone())
    }

    pub fn remember(&mut self, key: ContentKey, original: Original, stored_at: Instant) {
        if self.is_enabled() {
            self.seen.insert(key, (original, stored_at));
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
        let t0 = Instant::now();
        window.remember(key, original(5), t0);
        assert_eq!(
            window.lookup(&key, t0 + Duration::from_secs(59)),
            Some(original(5))
        );
        assert_eq!(window.lookup(&key, t0 + Duration::from_secs(60)), None);
        assert_eq!(window.lookup(&ContentKey([8; 32]), t0), None);
    }

    #[test]
    fn zero_ttl_turns_content_dedup_off() {
        let mut window = ContentWindow::new(Duration::ZERO);
        let key = ContentKey([7; 32]);
        window.remember(key, original(5), Instant::now());
        assert_eq!(window.lookup(&key, Instant::now()), None);
    }
}
