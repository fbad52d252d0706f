//! Answers from the Actions tables: the live jobs, the all-time totals per label
//! set, and the insight counters of a window summed per group (kept in memory by
//! `windows` once summed).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use redb::{ReadTransaction, ReadableTable};

use super::state::JobState;
use super::windows::WindowSums;
use crate::store::counters::{HOUR_MS, hour_of};
use crate::store::{Store, StoreError, codec, tables};

/// A job queued or in progress.
pub type LiveJob = JobState;

/// label set → metric → value (all time), see `state::metric`.
pub type ActionsTotals = BTreeMap<String, BTreeMap<String, i64>>;

/// The hourly rows of a window summed per (repository, workflow, job, labels): one
/// value per slot of `state::SLOTS` (see `state::LAYOUT`).
#[derive(Debug, Clone)]
pub struct InsightCells {
    pub from_hour_ms: i64,
    pub sums: Arc<WindowSums>,
}

fn live(txn: &ReadTransaction) -> Result<Vec<LiveJob>, StoreError> {
    let live = txn.open_table(tables::ACTIONS_LIVE)?;
    let jobs = txn.open_table(tables::ACTIONS_JOBS)?;
    let mut out = Vec::new();
    for entry in live.iter()? {
        let (key, _) = entry?;
        if let Some(bytes) = jobs.get(key.value().3)? {
            out.push(codec::decode(bytes.value())?);
        }
    }
    Ok(out)
}

fn totals(txn: &ReadTransaction) -> Result<ActionsTotals, StoreError> {
    let mut out = ActionsTotals::new();
    for entry in txn.open_table(tables::ACTIONS_TOTALS)?.iter()? {
        let (key, value) = entry?;
        let (labels, metric) = key.value();
        out.entry(labels.to_owned())
            .or_default()
            .insert(metric.to_owned(), value.value());
    }
    Ok(out)
}

/// Sums the hourly rows of hours `first..=last` per group: from `base` (a window
/// summed from the same rows) minus the rows of its hours outside, plus those of the
/// window's hours outside `base`; else from every row of the window. One row read
/// per hour and group summed, whatever the number of events.
fn sum_rows(
    txn: &ReadTransaction,
    base: Option<&WindowSums>,
    first: i64,
    last: i64,
) -> Result<WindowSums, StoreError> {
    let table = txn.open_table(tables::ACTIONS_HOURLY)?;
    // (from, to, sign): hour ranges to add or take away.
    let mut ranges = Vec::new();
    let mut out = match base {
        Some(base) => {
            let (bf, bl) = (base.first_hour, base.last_hour);
            ranges.extend([
                (bf, bl.min(first - 1), -1),
                (bf.max(last + 1), bl, -1),
                (first, last.min(bf - 1), 1),
                (first.max(bl + 1), last, 1),
            ]);
            base.rehoused(first, last)
        }
        None => {
            ranges.push((first, last, 1));
            WindowSums::new(first, last)
        }
    };
    // Keyed by the group's fields joined with NULs, so that a group seen in an
    // earlier hour is found through a reused buffer, without allocating.
    let mut sums: HashMap<String, Vec<i64>> = HashMap::new();
    let mut joined = String::new();
    for (from, to, sign) in ranges.into_iter().filter(|(from, to, _)| from <= to) {
        for entry in table.range((from, "", "", "", "")..(to + 1, "", "", "", ""))? {
            let (key, value) = entry?;
            let (_, repo, workflow, job, labels) = key.value();
            let row = super::decode_row(value.value())?;
            joined.clear();
            for (i, part) in [repo, workflow, job, labels].into_iter().enumerate() {
                if i > 0 {
                    joined.push('\0');
                }
                joined.push_str(part);
            }
            let sum = match sums.get_mut(joined.as_str()) {
                Some(sum) => sum,
                None => sums
                    .entry(joined.clone())
                    .or_insert_with(|| vec![0; row.len()]),
            };
            for (total, value) in sum.iter_mut().zip(row) {
                *total += value * sign;
            }
        }
    }
    for (joined, sum) in sums {
        let mut parts = joined.splitn(4, '\0').map(str::to_owned);
        let mut part = || parts.next().unwrap_or_default();
        out.add_any_hour((part(), part(), part(), part()), &sum, 1);
    }
    out.drop_empty();
    Ok(out)
}

/// The first and last hour of the `hours` hours up to and including `now_ms`'s.
fn window(now_ms: i64, hours: i64) -> (i64, i64) {
    let last = hour_of(now_ms);
    (last - hours + 1, last)
}

impl Store {
    /// Jobs queued or in progress, in no particular order.
    pub async fn actions_live(&self) -> Result<Vec<LiveJob>, StoreError> {
        self.read(|db| live(&redb::ReadableDatabase::begin_read(db)?))
            .await
    }

    pub async fn actions_totals(&self) -> Result<ActionsTotals, StoreError> {
        self.read(|db| totals(&redb::ReadableDatabase::begin_read(db)?))
            .await
    }

    /// The window of the `hours` hours up to and including `now_ms`'s, summed per
    /// group: kept in memory once asked for (see `windows`), else summed from the
    /// hourly rows.
    pub async fn actions_insights(
        &self,
        now_ms: i64,
        hours: i64,
    ) -> Result<InsightCells, StoreError> {
        let (first, last) = window(now_ms, hours);
        let sums = match self.windows.get(first, last) {
            Some(sums) => sums,
            None => {
                let windows = self.windows.clone();
                self.read(move |db| {
                    let (ticket, base, txn) = windows.snapshot(first, last, || {
                        Ok::<_, StoreError>(redb::ReadableDatabase::begin_read(db)?)
                    })?;
                    let sums = sum_rows(&txn, base.as_deref(), first, last)?;
                    Ok(windows.install(ticket, sums))
                })
                .await?
            }
        };
        Ok(InsightCells {
            from_hour_ms: first * HOUR_MS,
            sums,
        })
    }

    /// The same window always summed from the hourly rows (what the kept windows
    /// must equal).
    #[cfg(test)]
    pub(crate) async fn actions_insights_summed(
        &self,
        now_ms: i64,
        hours: i64,
    ) -> Result<InsightCells, StoreError> {
        let (first, last) = window(now_ms, hours);
        let sums = self
            .read(move |db| sum_rows(&redb::ReadableDatabase::begin_read(db)?, None, first, last))
            .await?;
        Ok(InsightCells {
            from_hour_ms: first * HOUR_MS,
            sums: Arc::new(sums),
        })
    }
}
