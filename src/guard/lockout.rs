//! Failed authentication, counted per client: after [`MAX_FAILURES`] wrong tokens
//! within [`WINDOW`], the client is refused (429) until the window ends, even with
//! the right token, so guessing the token cannot go faster than that.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Wrong tokens one client may send per window.
pub const MAX_FAILURES: u32 = 10;
/// Length of the counting window, which is also the longest lockout.
pub const WINDOW: Duration = Duration::from_secs(60);
/// Clients tracked at once; past it, expired entries are dropped first, then the
/// newest failures go uncounted rather than growing memory without bound.
const MAX_TRACKED: usize = 65_536;

#[derive(Default)]
pub struct Lockout {
    clients: Mutex<HashMap<IpAddr, Strikes>>,
}

struct Strikes {
    count: u32,
    since: Instant,
}

impl Lockout {
    /// How long `client` stays locked out, if it is.
    pub fn locked(&self, client: IpAddr) -> Option<Duration> {
        let now = Instant::now();
        let clients = self.clients.lock().unwrap_or_else(|e| e.into_inner());
        let strikes = clients.get(&client)?;
        let left = WINDOW.checked_sub(now.duration_since(strikes.since))?;
        (strikes.count >= MAX_FAILURES && !left.is_zero()).then_some(left)
    }

    /// Counts one failure; returns the lockout it started, if it did.
    pub fn failed(&self, client: IpAddr) -> Option<Duration> {
        let now = Instant::now();
        let mut clients = self.clients.lock().unwrap_or_else(|e| e.into_inner());
        if clients.len() >= MAX_TRACKED && !clients.contains_key(&client) {
            clients.retain(|_, s| now.duration_since(s.since) < WINDOW);
            if clients.len() >= MAX_TRACKED {
                return None;
            }
        }
        let strikes = clients.entry(client).or_insert(Strikes {
            count: 0,
            since: now,
        });
        if now.duration_since(strikes.since) >= WINDOW {
            *strikes = Strikes {
                count: 0,
                since: now,
            };
        }
        strikes.count += 1;
        (strikes.count >= MAX_FAILURES).then(|| WINDOW - now.duration_since(strikes.since))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_client_is_locked_after_the_allowed_failures_and_others_are_not() {
        let lockout = Lockout::default();
        let guesser: IpAddr = "198.51.100.1".parse().unwrap();
        let neighbour: IpAddr = "198.51.100.2".parse().unwrap();
        for _ in 1..MAX_FAILURES {
            assert_eq!(lockout.failed(guesser), None);
            assert_eq!(lockout.locked(guesser), None);
        }
        let locked_for = lockout
            .failed(guesser)
            .expect("the last allowed failure locks");
        assert!(locked_for <= WINDOW && locked_for > WINDOW / 2);
        assert!(lockout.locked(guesser).is_some());
        assert_eq!(lockout.locked(neighbour), None);
    }
}
