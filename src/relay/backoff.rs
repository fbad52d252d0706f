//! Exponential backoff with jitter, for reconnecting to the server and for trying
//! the local URL again.

use std::time::Duration;

/// The first wait: a local server restarting (`cargo watch`, `npm run dev`) is
/// back within a second or two.
pub const FIRST: Duration = Duration::from_millis(250);
/// The longest wait: a developer who starts the local server again waits at most
/// this long for the relay to notice.
pub const MAX: Duration = Duration::from_secs(30);

#[derive(Debug, Clone)]
pub struct Backoff {
    next: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Self { next: FIRST }
    }
}

impl Backoff {
    /// The wait before the next try: doubles each time up to [`MAX`], and is drawn
    /// between half and all of that so many relays do not retry in step.
    pub fn next_wait(&mut self) -> Duration {
        let ceiling = self.next;
        self.next = (self.next * 2).min(MAX);
        let half = ceiling / 2;
        half + half.mul_f64(rand::random::<f64>())
    }

    pub fn reset(&mut self) {
        self.next = FIRST;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_up_to_the_cap_with_jitter_and_resets() {
        let mut backoff = Backoff::default();
        let waits: Vec<Duration> = (0..12).map(|_| backoff.next_wait()).collect();
        assert!(waits[0] >= FIRST / 2 && waits[0] <= FIRST);
        assert!(waits[3] >= FIRST * 4 && waits[3] <= FIRST * 8);
        assert!(waits.iter().all(|w| *w <= MAX));
        assert!(waits[11] >= MAX / 2);
        backoff.reset();
        assert!(backoff.next_wait() <= FIRST);
    }
}
