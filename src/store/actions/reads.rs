//! Answers from the Actions tables: the live jobs, the all-time totals per label
//! set, and the insight counters of a window summed per group.

use std::collections::{BTreeMap, HashMap};

use redb::{ReadTransaction, ReadableTable};

use super::state::{JobState, SLOTS};
use crate::store::counters::{HOUR_MS, hour_of};
use crate::store::{Store, StoreError, codec, tables};

/// A job queued or in progress.
pub type LiveJob = JobState;

/// label set → metric → value (all time), see `state::metric`.
pub type ActionsTotals = BTreeMap<String, BTreeMap<String, i64>>;

/// (repository, workflow, job, labels) → metric → sum over the window's hours.
#[derive(Debug, Default, Clone)]
pub struct InsightCells {
    pub from_hour_ms: i64,
    pub groups: BTreeMap<(String, String, String, String), BTreeMap<String, i64>>,
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

/// Sums the hourly cells of the `hours` hours up to and including `now_ms`'s hour:
/// at most `hours × groups` rows, whatever the number of events.
fn insights(txn: &ReadTransaction, now_ms: i64, hours: i64) -> Result<InsightCells, StoreError> {
    let last = hour_of(now_ms);
    let first = last - hours + 1;
    let mut out = InsightCells {
        from_hour_ms: first * HOUR_MS,
        ..Default::default()
    };
    let table = txn.open_table(tables::ACTIONS_HOURLY)?;
    // Keyed by the group's fields joined with NULs, so that a group seen in an
    // earlier hour is found through a reused buffer, without allocating.
    let mut sums: HashMap<String, Vec<i64>> = HashMap::new();
    let mut joined = String::new();
    for entry in table.range((first, "", "", "", "")..(last + 1, "", "", "", ""))? {
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
            *total += value;
        }
    }
    for (joined, sum) in sums {
        let mut parts = joined.splitn(4, '\0').map(str::to_owned);
        let mut part = || parts.next().unwrap_or_default();
        let group = (part(), part(), part(), part());
        let metrics = SLOTS
            .iter()
            .zip(sum)
            .filter(|(_, v)| *v != 0)
            .map(|(name, v)| (name.clone(), v))
            .collect();
        out.groups.insert(group, metrics);
    }
    Ok(out)
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

    pub async fn actions_insights(
        &self,
        now_ms: i64,
        hours: i64,
    ) -> Result<InsightCells, StoreError> {
        self.read(move |db| insights(&redb::ReadableDatabase::begin_read(db)?, now_ms, hours))
            .await
    }
}
