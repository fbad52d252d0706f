//! Comparing a hook's delivery log with the store: the log back to a start time,
//! grouped by delivery id (GitHub lists every attempt: the first and each
//! redelivery), and what to do about each delivery.

use std::collections::BTreeMap;

use super::github::{Attempt, GitHub, GitHubError};
use super::hooks::HookRef;
use crate::domain::timestamp;

/// Pages read from one hook's log at most in a run (100 deliveries each).
pub const MAX_PAGES: usize = 1000;
/// A redelivery asked for within this time is taken to be on its way: GitHub sends
/// it within seconds, and asking again would only make a second copy to deduplicate.
pub const IN_FLIGHT_MS: i64 = 10 * 60_000;
/// Redeliveries of one delivery before backfill stops asking: one that still does
/// not arrive is refused by hookvault (a wrong secret) or lost on the way.
pub const MAX_REDELIVERIES: u32 = 3;

/// One delivery as its log shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Logged {
    pub guid: String,
    /// The newest attempt: the one a redelivery is asked for.
    pub newest_id: u64,
    pub newest_at_ms: i64,
    pub newest_is_redelivery: bool,
    /// Redeliveries listed (within the time read).
    pub redeliveries: u32,
}

/// What a reconcile does with one logged delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Stored,
    /// Not stored: ask GitHub to redeliver it.
    Missing,
    /// Not stored, but a redelivery was asked for lately.
    InFlight,
    /// Not stored after [`MAX_REDELIVERIES`].
    GaveUp,
}

/// Every attempt GitHub lists for the hook from `since_ms` on, newest first. The log
/// is newest first, so reading stops at the first older attempt.
pub async fn read_log(
    github: &GitHub,
    hook: &HookRef,
    since_ms: i64,
) -> Result<Vec<Attempt>, GitHubError> {
    let mut attempts = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..MAX_PAGES {
        let page = github.page(hook, cursor.as_deref()).await?;
        let mut reached_since = false;
        for attempt in page.attempts {
            // An unreadable time sorts as now: kept, not a reason to stop.
            let at = timestamp::parse(&attempt.delivered_at).unwrap_or_else(timestamp::now_ms);
            if at < since_ms {
                reached_since = true;
                break;
            }
            attempts.push(attempt);
        }
        match page.next_cursor {
            Some(next) if !reached_since => cursor = Some(next),
            _ => return Ok(attempts),
        }
    }
    tracing::warn!(%hook, pages = MAX_PAGES, "stopped reading the delivery log at the page cap");
    Ok(attempts)
}

/// The attempts grouped by delivery id, in the log's order (newest first).
pub fn group(attempts: &[Attempt]) -> Vec<Logged> {
    let mut by_guid: BTreeMap<&str, (usize, Logged)> = BTreeMap::new();
    for (order, attempt) in attempts.iter().enumerate() {
        let at = timestamp::parse(&attempt.delivered_at).unwrap_or(0);
        let entry = by_guid.entry(attempt.guid.as_str()).or_insert_with(|| {
            (
                order,
                Logged {
                    guid: attempt.guid.clone(),
                    newest_id: attempt.id,
                    newest_at_ms: at,
                    newest_is_redelivery: attempt.redelivery,
                    redeliveries: 0,
                },
            )
        });
        let logged = &mut entry.1;
        // Attempt ids grow with time: the largest is the newest.
        if attempt.id > logged.newest_id {
            logged.newest_id = attempt.id;
            logged.newest_at_ms = at;
            logged.newest_is_redelivery = attempt.redelivery;
        }
        logged.redeliveries += u32::from(attempt.redelivery);
    }
    let mut grouped: Vec<(usize, Logged)> = by_guid.into_values().collect();
    grouped.sort_by_key(|(order, _)| *order);
    grouped.into_iter().map(|(_, logged)| logged).collect()
}

/// What to do with a logged delivery: `stored` by hookvault, `asked_ms` when this
/// instance last asked for its redelivery.
pub fn verdict(logged: &Logged, stored: bool, asked_ms: Option<i64>, now_ms: i64) -> Verdict {
    if stored {
        return Verdict::Stored;
    }
    let recent = |at: i64| now_ms - at < IN_FLIGHT_MS;
    if asked_ms.is_some_and(recent) || (logged.newest_is_redelivery && recent(logged.newest_at_ms))
    {
        return Verdict::InFlight;
    }
    if logged.redeliveries >= MAX_REDELIVERIES {
        return Verdict::GaveUp;
    }
    Verdict::Missing
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attempt(id: u64, guid: &str, at_ms: i64, redelivery: bool) -> Attempt {
        Attempt {
            id,
            guid: guid.into(),
            delivered_at: timestamp::to_rfc3339(at_ms),
            redelivery,
            status_code: 502,
            event: "push".into(),
        }
    }

    #[test]
    fn attempts_group_by_delivery_id_with_the_newest_first() {
        let t = 1_700_000_000_000;
        let grouped = group(&[
            attempt(9, "b", t + 9_000, true),
            attempt(8, "a", t + 8_000, false),
            attempt(3, "b", t + 3_000, false),
            attempt(2, "c", t + 2_000, true),
            attempt(1, "c", t + 1_000, true),
        ]);
        let guids: Vec<&str> = grouped.iter().map(|l| l.guid.as_str()).collect();
        assert_eq!(guids, ["b", "a", "c"]);
        assert_eq!((grouped[0].newest_id, grouped[0].redeliveries), (9, 1));
        assert!(grouped[0].newest_is_redelivery);
        assert_eq!((grouped[2].newest_id, grouped[2].redeliveries), (2, 2));
        assert!(!grouped[1].newest_is_redelivery);
    }

    #[test]
    fn a_recent_redelivery_is_in_flight_and_three_are_enough() {
        let now = 1_700_000_000_000;
        let logged = |at: i64, redelivery: bool, redeliveries: u32| Logged {
            guid: "g".into(),
            newest_id: 1,
            newest_at_ms: at,
            newest_is_redelivery: redelivery,
            redeliveries,
        };
        let old = now - IN_FLIGHT_MS - 1;
        assert_eq!(
            verdict(&logged(old, false, 0), true, None, now),
            Verdict::Stored
        );
        assert_eq!(
            verdict(&logged(old, false, 0), false, None, now),
            Verdict::Missing
        );
        assert_eq!(
            verdict(&logged(now - 5, true, 1), false, None, now),
            Verdict::InFlight
        );
        assert_eq!(
            verdict(&logged(old, true, 1), false, None, now),
            Verdict::Missing
        );
        assert_eq!(
            verdict(&logged(old, false, 0), false, Some(now - 1000), now),
            Verdict::InFlight
        );
        assert_eq!(
            verdict(&logged(old, true, 3), false, None, now),
            Verdict::GaveUp
        );
    }
}
