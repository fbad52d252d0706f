//! The materialized counters (event statistics, hourly metrics, repository totals and
//! activity, job metrics), as sums of
//! per-event contributions. Every write that adds or changes an event applies the
//! difference of its contributions in the same transaction, so the counters are
//! exactly the sum over the stored events at every commit, and `verify` can
//! recompute them from scratch.

use std::collections::BTreeMap;

use redb::{ReadableTable, Table, WriteTransaction};

use super::{EventRecord, Fact, Status, StoreError, tables};

pub const HOUR_MS: i64 = 3_600_000;

/// Metric names of the hourly table.
pub mod metric {
    pub const TOTAL: &str = "total";
    pub const TIME_US_SUM: &str = "time_us_sum";
    /// Events with a processing time (the denominator of the average).
    pub const TIMED: &str = "timed";
    /// Content duplicates that arrived in the hour.
    pub const DUPLICATES: &str = "duplicates";
}

/// Per-repository counter names that are not sums over events.
pub const FIRST_SEEN_MS: &str = "first_seen_ms";
pub const LAST_EVENT_MS: &str = "last_event_ms";
/// Alerts whose last known state is open (kept by the `alerts` module).
pub const OPEN_SECURITY_ALERTS: &str = "open_security_alerts";

pub fn hour_of(ms: i64) -> i64 {
    ms.div_euclid(HOUR_MS)
}

/// Histogram bucket of a processing time: bucket `b` holds times up to `2^b` µs.
pub fn bucket_of(us: u64) -> u8 {
    (64 - us.max(1).saturating_sub(1).leading_zeros()).min(40) as u8
}

/// One counter cell.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Counter {
    Hourly {
        hour: i64,
        event: String,
        metric: String,
    },
    Histogram {
        hour: i64,
        bucket: u8,
    },
    RepoHourly {
        hour: i64,
        repo: String,
    },
    Repo {
        repo: String,
        counter: String,
    },
    Job {
        repo: String,
        workflow: String,
        job: String,
        counter: String,
    },
}

/// Everything one stored event adds to the counters.
pub fn contributions(record: &EventRecord) -> Vec<(Counter, i64)> {
    let hour = hour_of(record.received_at_ms);
    if record.status == Status::Duplicate {
        // Not an event of its own: it counts only as a duplicate that arrived.
        let duplicates = Counter::Hourly {
            hour,
            event: record.origin.event.clone(),
            metric: metric::DUPLICATES.to_owned(),
        };
        return vec![(duplicates, 1)];
    }
    let hourly = |metric: &str, delta: i64| {
        (
            Counter::Hourly {
                hour,
                event: record.origin.event.clone(),
                metric: metric.to_owned(),
            },
            delta,
        )
    };
    let mut out = vec![hourly(metric::TOTAL, 1), hourly(record.status.as_str(), 1)];
    if let Some(us) = record.processing_time_us {
        out.push(hourly(metric::TIME_US_SUM, us as i64));
        out.push(hourly(metric::TIMED, 1));
        out.push((
            Counter::Histogram {
                hour,
                bucket: bucket_of(us),
            },
            1,
        ));
    }
    if let Some(repo) = &record.origin.repository {
        let repo_counter = |counter: String, delta| {
            (
                Counter::Repo {
                    repo: repo.clone(),
                    counter,
                },
                delta,
            )
        };
        out.push((
            Counter::RepoHourly {
                hour,
                repo: repo.clone(),
            },
            1,
        ));
        out.push(repo_counter(metric::TOTAL.into(), 1));
        out.push(repo_counter(format!("event:{}", record.origin.event), 1));
        if record.status == Status::Processed {
            for fact in &record.facts {
                out.push(match fact {
                    Fact::Repo { counter, delta } => repo_counter(counter.clone(), *delta),
                    Fact::Job {
                        workflow,
                        job,
                        counter,
                        delta,
                    } => (
                        Counter::Job {
                            repo: repo.clone(),
                            workflow: workflow.clone(),
                            job: job.clone(),
                            counter: counter.clone(),
                        },
                        *delta,
                    ),
                    // A state, not a sum: see the `alerts` module.
                    Fact::Alert { .. } => continue,
                });
            }
        }
    }
    out
}

pub struct CounterTables<'txn> {
    hourly: Table<'txn, (i64, &'static str, &'static str), i64>,
    histogram: Table<'txn, (i64, u8), i64>,
    repo_hourly: Table<'txn, (i64, &'static str), i64>,
    repo: Table<'txn, (&'static str, &'static str), i64>,
    jobs: Table<'txn, (&'static str, &'static str, &'static str, &'static str), i64>,
    /// This transaction's deltas, written once per cell by [`Self::flush`]: a group
    /// commit adds to the same few cells many times over, and a status change takes
    /// back most of what the event added, so most deltas cancel or merge before
    /// they cost a read and a write of the table.
    pending: BTreeMap<Counter, i64>,
    /// Earliest and latest event time per repository seen in this transaction.
    seen: BTreeMap<String, (i64, i64)>,
}

/// Adds `delta` to a counter cell; a cell that reaches zero is removed, so the
/// tables hold exactly the non-zero counters.
pub(super) fn add_to<'k, K: redb::Key + 'static>(
    table: &mut Table<'_, K, i64>,
    key: K::SelfType<'k>,
    delta: i64,
) -> Result<(), StoreError> {
    let value = table.get(&key)?.map_or(0, |v| v.value()) + delta;
    if value == 0 {
        table.remove(&key)?;
    } else {
        table.insert(&key, value)?;
    }
    Ok(())
}

impl<'txn> CounterTables<'txn> {
    pub fn open(txn: &'txn WriteTransaction) -> Result<Self, StoreError> {
        Ok(Self {
            hourly: txn.open_table(tables::HOURLY)?,
            histogram: txn.open_table(tables::HISTOGRAM)?,
            repo_hourly: txn.open_table(tables::REPO_HOURLY)?,
            repo: txn.open_table(tables::REPO_STATS)?,
            jobs: txn.open_table(tables::JOB_METRICS)?,
            pending: BTreeMap::new(),
            seen: BTreeMap::new(),
        })
    }

    pub fn add(&mut self, counter: Counter, delta: i64) {
        *self.pending.entry(counter).or_default() += delta;
    }

    /// Applies the contributions of `record`, multiplied by `sign` (+1 to add, -1 to
    /// take back).
    pub fn apply(&mut self, record: &EventRecord, sign: i64) {
        for (counter, delta) in contributions(record) {
            self.add(counter, delta * sign);
        }
    }

    /// Keeps the repository's first-seen and last-event times.
    pub fn touch_repository(&mut self, repo: &str, at_ms: i64) {
        match self.seen.get_mut(repo) {
            Some((first, last)) => {
                *first = (*first).min(at_ms);
                *last = (*last).max(at_ms);
            }
            None => {
                self.seen.insert(repo.to_owned(), (at_ms, at_ms));
            }
        }
    }

    /// Writes the transaction's deltas; call before the commit.
    pub fn flush(&mut self) -> Result<(), StoreError> {
        for (counter, delta) in std::mem::take(&mut self.pending) {
            self.write(&counter, delta)?;
        }
        for (repo, (first_ms, last_ms)) in std::mem::take(&mut self.seen) {
            let first = self
                .repo
                .get((repo.as_str(), FIRST_SEEN_MS))?
                .map(|v| v.value());
            if first.is_none_or(|first| first_ms < first) {
                self.repo.insert((repo.as_str(), FIRST_SEEN_MS), first_ms)?;
            }
            let last = self
                .repo
                .get((repo.as_str(), LAST_EVENT_MS))?
                .map(|v| v.value());
            if last.is_none_or(|last| last_ms > last) {
                self.repo.insert((repo.as_str(), LAST_EVENT_MS), last_ms)?;
            }
        }
        Ok(())
    }

    fn write(&mut self, counter: &Counter, delta: i64) -> Result<(), StoreError> {
        if delta == 0 {
            return Ok(());
        }
        match counter {
            Counter::Hourly {
                hour,
                event,
                metric,
            } => add_to(
                &mut self.hourly,
                (*hour, event.as_str(), metric.as_str()),
                delta,
            ),
            Counter::Histogram { hour, bucket } => {
                add_to(&mut self.histogram, (*hour, *bucket), delta)
            }
            Counter::RepoHourly { hour, repo } => {
                add_to(&mut self.repo_hourly, (*hour, repo.as_str()), delta)
            }
            Counter::Repo { repo, counter } => {
                add_to(&mut self.repo, (repo.as_str(), counter.as_str()), delta)
            }
            Counter::Job {
                repo,
                workflow,
                job,
                counter,
            } => add_to(
                &mut self.jobs,
                (
                    repo.as_str(),
                    workflow.as_str(),
                    job.as_str(),
                    counter.as_str(),
                ),
                delta,
            ),
        }
    }
}

/// Expected counters, recomputed from events (for `verify`).
#[derive(Debug, Default)]
pub struct Recount {
    pub cells: BTreeMap<Counter, i64>,
}

impl Recount {
    pub fn add_event(&mut self, record: &EventRecord) {
        for (counter, delta) in contributions(record) {
            *self.cells.entry(counter).or_default() += delta;
        }
        if let Some(repo) = record.origin.repository.as_ref().filter(|_| !record.test) {
            let mut extreme = |counter: &str, pick: fn(i64, i64) -> i64| {
                let key = Counter::Repo {
                    repo: repo.clone(),
                    counter: counter.to_owned(),
                };
                let cell = self.cells.entry(key).or_insert(record.received_at_ms);
                *cell = pick(*cell, record.received_at_ms);
            };
            extreme(FIRST_SEEN_MS, i64::min);
            extreme(LAST_EVENT_MS, i64::max);
        }
    }

    pub fn add(&mut self, counter: Counter, delta: i64) {
        *self.cells.entry(counter).or_default() += delta;
    }

    pub fn finish(mut self) -> BTreeMap<Counter, i64> {
        self.cells.retain(|_, v| *v != 0);
        self.cells
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_powers_of_two() {
        assert_eq!(bucket_of(0), 0);
        assert_eq!(bucket_of(1), 0);
        assert_eq!(bucket_of(2), 1);
        assert_eq!(bucket_of(3), 2);
        assert_eq!(bucket_of(1024), 10);
        assert_eq!(bucket_of(1025), 11);
    }

    #[test]
    fn hours_round_down_also_before_1970() {
        assert_eq!(hour_of(HOUR_MS - 1), 0);
        assert_eq!(hour_of(-1), -1);
    }
}
