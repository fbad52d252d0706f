//! The retry schedule and the circuit breaker of one target.
//!
//! After `circuitThreshold` failed attempts in a row (whatever the deliveries), the
//! circuit opens: no delivery is attempted until a probe is due, then one delivery
//! tries (the probe) while the others wait. A probe that succeeds closes the circuit
//! and everything flows again; one that fails keeps it open for another interval.
//! A dead target so costs one request per interval, and a delivery is not marked
//! failed for what was the target's outage: only attempts made while the circuit is
//! closed count toward `maxAttempts`.

use std::sync::Mutex;
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;

/// Longest pause between two probes of an open circuit.
const MAX_PROBE_INTERVAL: Duration = Duration::from_secs(30);

/// The pause after a delivery's `failures`-th counted failure: `backoff` doubling
/// up to `max`, then "equal jitter" (half of it fixed, half random), so deliveries
/// that failed together do not come back together.
pub fn backoff(failures: u32, base: Duration, max: Duration) -> Duration {
    let doubled = base.saturating_mul(1 << failures.saturating_sub(1).min(20));
    let capped = doubled.min(max);
    let half = capped / 2;
    half + half.mul_f64(rand::random::<f64>())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Turn {
    /// The circuit is closed: an ordinary attempt.
    Normal,
    /// The circuit was open: this attempt finds out whether the target is back.
    Probe,
}

#[derive(Debug)]
enum State {
    Closed { failures: u32 },
    Open { until: Instant },
    Probing,
}

#[derive(Debug)]
pub struct Breaker {
    state: Mutex<State>,
    changed: Notify,
    threshold: u32,
    probe_every: Duration,
}

impl Breaker {
    pub fn new(threshold: u32, max_backoff: Duration) -> Self {
        Self {
            state: Mutex::new(State::Closed { failures: 0 }),
            changed: Notify::new(),
            threshold,
            probe_every: max_backoff.min(MAX_PROBE_INTERVAL),
        }
    }

    /// Waits until an attempt may be made.
    pub async fn turn(&self) -> Turn {
        loop {
            let (wait_until, changed) = {
                let mut state = self.state.lock().expect("not poisoned");
                // Registered before the lock is let go: no change is missed.
                let changed = self.changed.notified();
                match *state {
                    State::Closed { .. } => return Turn::Normal,
                    State::Open { until } if Instant::now() >= until => {
                        *state = State::Probing;
                        return Turn::Probe;
                    }
                    State::Open { until } => (Some(until), changed),
                    State::Probing => (None, changed),
                }
            };
            match wait_until {
                Some(until) => {
                    tokio::select! {
                        _ = tokio::time::sleep_until(until) => {}
                        _ = changed => {}
                    }
                }
                None => changed.await,
            }
        }
    }

    pub fn succeeded(&self) {
        let mut state = self.state.lock().expect("not poisoned");
        if !matches!(*state, State::Closed { failures: 0 }) {
            *state = State::Closed { failures: 0 };
            self.changed.notify_waiters();
        }
    }

    pub fn failed(&self, turn: Turn) {
        let mut state = self.state.lock().expect("not poisoned");
        let open = State::Open {
            until: Instant::now() + self.probe_every,
        };
        match (&mut *state, turn) {
            (State::Closed { failures }, Turn::Normal) => {
                *failures += 1;
                if *failures >= self.threshold {
                    *state = open;
                }
            }
            (State::Probing, Turn::Probe) => {
                *state = open;
                self.changed.notify_waiters();
            }
            // An attempt that started before the circuit opened: it is open already.
            _ => {}
        }
    }

    /// `healthy`, `retrying` (failures since the last success) or `open`.
    pub fn state(&self) -> &'static str {
        match *self.state.lock().expect("not poisoned") {
            State::Closed { failures: 0 } => "healthy",
            State::Closed { .. } => "retrying",
            State::Open { .. } | State::Probing => "open",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap_with_jitter() {
        let (base, max) = (Duration::from_secs(1), Duration::from_secs(60));
        for (failures, full) in [(1, 1), (2, 2), (3, 4), (7, 60), (40, 60)] {
            let full = Duration::from_secs(full);
            for _ in 0..50 {
                let pause = backoff(failures, base, max);
                assert!(pause >= full / 2 && pause <= full, "{failures}: {pause:?}");
            }
        }
    }

    #[tokio::test(start_paused = true)]
    async fn opens_after_the_threshold_and_lets_one_probe_through() {
        let breaker = std::sync::Arc::new(Breaker::new(3, Duration::from_secs(10)));
        for _ in 0..2 {
            assert_eq!(breaker.turn().await, Turn::Normal);
            breaker.failed(Turn::Normal);
        }
        assert_eq!(breaker.state(), "retrying");
        breaker.failed(Turn::Normal);
        assert_eq!(breaker.state(), "open");
        let started = Instant::now();
        assert_eq!(breaker.turn().await, Turn::Probe);
        assert_eq!(started.elapsed(), Duration::from_secs(10));
        // While the probe runs, everyone else waits for its outcome.
        let waiting = tokio::spawn({
            let breaker = breaker.clone();
            async move { breaker.turn().await }
        });
        tokio::time::sleep(Duration::from_secs(60)).await;
        assert!(!waiting.is_finished());
        breaker.succeeded();
        assert_eq!(waiting.await.unwrap(), Turn::Normal);
        assert_eq!(breaker.state(), "healthy");
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_probe_keeps_it_open_for_another_interval() {
        let breaker = Breaker::new(1, Duration::from_secs(5));
        breaker.failed(Turn::Normal);
        assert_eq!(breaker.turn().await, Turn::Probe);
        breaker.failed(Turn::Probe);
        let started = Instant::now();
        assert_eq!(breaker.turn().await, Turn::Probe);
        assert_eq!(started.elapsed(), Duration::from_secs(5));
    }
}
