//! What a run reports: the run as a whole and each hook, as `POST/GET
//! /api/backfill`, health and `/metrics` show it; and the `since` it was asked for.

use std::time::Duration;

use serde::Serialize;
use utoipa::ToSchema;

/// Delivery ids listed in a summary at most (the counts stay exact).
pub const MAX_LISTED_IDS: usize = 1000;
/// The longest `since`: GHES keeps deliveries longer than github.com's 3 days, but
/// not for months.
pub const MAX_SINCE: Duration = Duration::from_secs(30 * 86_400);

/// What started a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Trigger {
    /// The run when hookvault starts: catches up on the time it was down.
    Startup,
    /// Every `HOOKVAULT_BACKFILL_INTERVAL` minutes.
    Schedule,
    /// `POST /api/backfill` (and `hookvault backfill`).
    Api,
}

/// One hook's part of a run.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct HookReport {
    /// `repo:OWNER/NAME:ID`, `org:NAME:ID` or `app`.
    #[schema(example = "repo:octo-org/hello-world:12345678")]
    pub hook: String,
    /// Deliveries (distinct delivery ids) GitHub listed since the run's start time.
    pub checked: u64,
    /// Of those, not stored by hookvault.
    pub missing: u64,
    /// Redeliveries GitHub accepted.
    pub requested: u64,
    /// Why this hook could not be reconciled, or a redelivery was refused.
    pub error: Option<String>,
}

/// A reconcile run.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    pub trigger: Trigger,
    /// Nothing was redelivered: the run only looked.
    pub dry_run: bool,
    /// Deliveries GitHub attempted from this time on were checked.
    pub since: String,
    pub started_at: String,
    pub finished_at: String,
    pub duration_ms: u64,
    pub hooks: Vec<HookReport>,
    /// Deliveries checked, every hook.
    pub checked: u64,
    /// Deliveries GitHub lists that hookvault has not stored.
    pub missing: u64,
    /// Their delivery ids (the first 1,000).
    pub missing_ids: Vec<String>,
    /// Missing, but a redelivery was asked for lately: not asked again yet.
    pub in_flight: u64,
    /// Missing after 3 redeliveries: left alone (hookvault refuses them, e.g. a
    /// signature made with another secret; see the rejected log).
    pub gave_up: u64,
    /// Redeliveries GitHub accepted.
    pub requested: u64,
    /// Of those, arrived (signed, through the ingest endpoint) before the run ended.
    pub confirmed: u64,
    /// Requested but not arrived when the run stopped watching (the first 1,000).
    pub unconfirmed_ids: Vec<String>,
    /// Times a request waited for GitHub's rate limit.
    pub rate_limit_waits: u64,
    /// Everything that went wrong, one line each; empty for a clean run.
    pub errors: Vec<String>,
}

impl Summary {
    pub fn clean(&self) -> bool {
        self.errors.is_empty()
    }
}

/// `since`: a number and a unit, `s`, `m`, `h` or `d` (`90m`, `12h`, `3d`).
pub fn parse_since(raw: &str) -> Result<Duration, String> {
    let raw = raw.trim();
    let split = raw.find(|c: char| !c.is_ascii_digit()).unwrap_or(raw.len());
    let (number, unit) = raw.split_at(split);
    let seconds = match unit.trim() {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(format!("{raw:?} is not a duration like 90m, 12h or 3d")),
    };
    let number: u64 = number
        .parse()
        .map_err(|_| format!("{raw:?} is not a duration like 90m, 12h or 3d"))?;
    let since = Duration::from_secs(number.saturating_mul(seconds));
    if since.is_zero() || since > MAX_SINCE {
        return Err(format!("{raw:?}: from 1s to 30d"));
    }
    Ok(since)
}

/// The first [`MAX_LISTED_IDS`] of these ids.
pub fn listed(ids: &[String]) -> Vec<String> {
    ids.iter().take(MAX_LISTED_IDS).cloned().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_is_a_number_and_a_unit() {
        assert_eq!(parse_since("3d"), Ok(Duration::from_secs(3 * 86_400)));
        assert_eq!(parse_since(" 90m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_since("12h"), Ok(Duration::from_secs(43_200)));
        assert_eq!(parse_since("30s"), Ok(Duration::from_secs(30)));
        for bad in [
            "",
            "3",
            "d",
            "3w",
            "-3d",
            "0d",
            "31d",
            "1.5h",
            "99999999999999999999d",
        ] {
            assert!(parse_since(bad).is_err(), "{bad}");
        }
    }
}
