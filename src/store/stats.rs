//! Reads of the materialized counters: statistics over a window of hours and the
//! per-repository views. Their cost depends on the window and the number of event
//! types and repositories, never on the number of stored events.

use std::collections::{BTreeMap, HashMap};

use redb::{ReadTransaction, ReadableDatabase};

use super::counters::{FIRST_SEEN_MS, HOUR_MS, LAST_EVENT_MS, hour_of, metric};
use super::tables;
use super::{Store, StoreError};
use crate::domain::Visibility;

/// Upper bound in µs of histogram bucket `b`.
pub fn bucket_upper_us(bucket: u8) -> u64 {
    1u64 << bucket
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventStats {
    pub total: i64,
    pub pending: i64,
    pub processed: i64,
    pub failed: i64,
    pub duplicates: i64,
    pub time_us_sum: i64,
    pub timed: i64,
}

impl EventStats {
    fn add(&mut self, metric_name: &str, value: i64) {
        match metric_name {
            metric::TOTAL => self.total += value,
            "pending" => self.pending += value,
            "processed" => self.processed += value,
            "failed" => self.failed += value,
            metric::DUPLICATES => self.duplicates += value,
            metric::TIME_US_SUM => self.time_us_sum += value,
            metric::TIMED => self.timed += value,
            _ => {}
        }
    }

    fn merge(&mut self, other: &EventStats) {
        self.total += other.total;
        self.pending += other.pending;
        self.processed += other.processed;
        self.failed += other.failed;
        self.duplicates += other.duplicates;
        self.time_us_sum += other.time_us_sum;
        self.timed += other.timed;
    }
}

#[derive(Debug, Clone, Default)]
pub struct Statistics {
    pub from_hour_ms: i64,
    pub summary: EventStats,
    pub by_event: BTreeMap<String, EventStats>,
    /// Events per repository in the window.
    pub by_repository: HashMap<String, i64>,
    /// Per hour (start ms) totals.
    pub hourly: BTreeMap<i64, EventStats>,
    /// Processing-time histogram: bucket → events.
    pub histogram: BTreeMap<u8, i64>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JobStats {
    pub workflow: String,
    /// Empty for workflow-run counters.
    pub job: String,
    pub counters: BTreeMap<String, i64>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RepoStats {
    pub repository: String,
    pub counters: BTreeMap<String, i64>,
}

impl RepoStats {
    pub fn get(&self, counter: &str) -> i64 {
        self.counters.get(counter).copied().unwrap_or(0)
    }

    pub fn first_seen_ms(&self) -> Option<i64> {
        self.counters.get(FIRST_SEEN_MS).copied()
    }

    pub fn last_event_ms(&self) -> Option<i64> {
        self.counters.get(LAST_EVENT_MS).copied()
    }
}

/// The first and last hour of the window of `hours` ending with `now_ms`'s, and
/// empty statistics of it.
fn window(now_ms: i64, hours: i64) -> (i64, i64, Statistics) {
    let to = hour_of(now_ms);
    let from = to - hours + 1;
    let stats = Statistics {
        from_hour_ms: from * HOUR_MS,
        ..Default::default()
    };
    (from, to, stats)
}

fn statistics(txn: &ReadTransaction, now_ms: i64, hours: i64) -> Result<Statistics, StoreError> {
    let (from, to, mut stats) = window(now_ms, hours);
    let hourly = txn.open_table(tables::HOURLY)?;
    for entry in hourly.range((from, "", "")..(to + 1, "", ""))? {
        let (key, value) = entry?;
        let (hour, event, metric_name) = key.value();
        let value = value.value();
        stats
            .by_event
            .entry(event.to_owned())
            .or_default()
            .add(metric_name, value);
        stats
            .hourly
            .entry(hour * HOUR_MS)
            .or_default()
            .add(metric_name, value);
    }
    for per_event in stats.by_event.values() {
        stats.summary.merge(per_event);
    }
    let histogram = txn.open_table(tables::HISTOGRAM)?;
    for entry in histogram.range((from, 0u8)..(to + 1, 0u8))? {
        let (key, value) = entry?;
        *stats.histogram.entry(key.value().1).or_default() += value.value();
    }
    let repo_hourly = txn.open_table(tables::REPO_HOURLY)?;
    for entry in repo_hourly.range((from, "")..(to + 1, ""))? {
        let (key, value) = entry?;
        *stats
            .by_repository
            .entry(key.value().1.to_owned())
            .or_default() += value.value();
    }
    Ok(stats)
}

/// What the per-repository hourly counters know of the window, for the visible
/// repositories only: their events per repository and per hour, and the sum. The
/// other fields (statuses, event types, processing times) are not kept per
/// repository and stay empty.
fn visible_statistics(
    txn: &ReadTransaction,
    now_ms: i64,
    hours: i64,
    visibility: &Visibility,
) -> Result<Statistics, StoreError> {
    let (from, to, mut stats) = window(now_ms, hours);
    let repo_hourly = txn.open_table(tables::REPO_HOURLY)?;
    for entry in repo_hourly.range((from, "")..(to + 1, ""))? {
        let (key, value) = entry?;
        let (hour, repository) = key.value();
        if !visibility.sees_repository(repository) {
            continue;
        }
        let value = value.value();
        *stats
            .by_repository
            .entry(repository.to_owned())
            .or_default() += value;
        stats.hourly.entry(hour * HOUR_MS).or_default().total += value;
        stats.summary.total += value;
    }
    Ok(stats)
}

fn repositories(txn: &ReadTransaction, only: Option<&str>) -> Result<Vec<RepoStats>, StoreError> {
    let table = txn.open_table(tables::REPO_STATS)?;
    let range = match only {
        Some(repo) => table.range((repo, "")..=(repo, "\u{10FFFF}"))?,
        None => table.range::<(&str, &str)>(..)?,
    };
    let mut repos: Vec<RepoStats> = Vec::new();
    for entry in range {
        let (key, value) = entry?;
        let (repo, counter) = key.value();
        if repos.last().is_none_or(|r| r.repository != repo) {
            repos.push(RepoStats {
                repository: repo.to_owned(),
                counters: BTreeMap::new(),
            });
        }
        let current = repos.last_mut().expect("pushed above");
        current.counters.insert(counter.to_owned(), value.value());
    }
    Ok(repos)
}

fn jobs(txn: &ReadTransaction, repo: &str) -> Result<Vec<JobStats>, StoreError> {
    let table = txn.open_table(tables::JOB_METRICS)?;
    let mut jobs: Vec<JobStats> = Vec::new();
    for entry in table.range((repo, "", "", "")..=(repo, "\u{10FFFF}", "", ""))? {
        let (key, value) = entry?;
        let (_, workflow, job, counter) = key.value();
        if jobs
            .last()
            .is_none_or(|j| j.workflow != workflow || j.job != job)
        {
            jobs.push(JobStats {
                workflow: workflow.to_owned(),
                job: job.to_owned(),
                counters: BTreeMap::new(),
            });
        }
        let current = jobs.last_mut().expect("pushed above");
        current.counters.insert(counter.to_owned(), value.value());
    }
    Ok(jobs)
}

impl Store {
    /// Counters of the last `hours` hour buckets, the current one included.
    pub async fn statistics(&self, now_ms: i64, hours: i64) -> Result<Statistics, StoreError> {
        self.read(move |db| statistics(&db.begin_read()?, now_ms, hours))
            .await
    }

    /// [`Store::statistics`] for a caller limited to some repositories: what the
    /// per-repository counters hold (`visible_statistics`).
    pub async fn visible_statistics(
        &self,
        now_ms: i64,
        hours: i64,
        visibility: Visibility,
    ) -> Result<Statistics, StoreError> {
        self.read(move |db| visible_statistics(&db.begin_read()?, now_ms, hours, &visibility))
            .await
    }

    pub async fn repositories(&self) -> Result<Vec<RepoStats>, StoreError> {
        self.read(|db| repositories(&db.begin_read()?, None)).await
    }

    /// One repository's counters and job metrics, if it has sent anything.
    pub async fn repository(
        &self,
        name: String,
    ) -> Result<Option<(RepoStats, Vec<JobStats>)>, StoreError> {
        self.read(move |db| {
            let txn = db.begin_read()?;
            let Some(stats) = repositories(&txn, Some(&name))?.into_iter().next() else {
                return Ok(None);
            };
            Ok(Some((stats, jobs(&txn, &name)?)))
        })
        .await
    }
}
