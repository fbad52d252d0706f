//! The Actions state as a pure function of the job observations: each job's merged
//! state, and the cells (live queue entries, hourly insight counters, all-time
//! totals) that state contributes. A write takes back a job's old contributions and
//! adds its new ones, exactly like the event counters, so the tables always equal
//! the sum over the jobs and `verify` can recompute them from the observations.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::domain::job::{JobObservation, JobStatus};
use crate::store::counters::hour_of;

/// Upper bounds (seconds) of the queue/run time buckets; one more bucket holds
/// everything longer. Fixed, so hours and groups add up bucket by bucket.
pub const BOUNDS_S: [i64; 17] = [
    1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 14400, 28800, 86400,
];

/// Metric names of the hourly and total cells.
pub mod metric {
    pub const COUNT: &str = "count";
    pub const CONCLUSION: &str = "conclusion:";
    pub const QUEUE: &str = "queue";
    pub const RUN: &str = "run";
    /// `<queue|run>_ms_sum` and `<queue|run>_count`, and `<queue|run>:NN` buckets.
    pub const MS_SUM: &str = "_ms_sum";
    pub const TIMED: &str = "_count";
    pub const FLAKY: &str = "flaky";
    pub const QUEUED: &str = "queued";
    pub const IN_PROGRESS: &str = "in_progress";
}

/// Conclusions counted by name; any other counts as `other`.
pub const CONCLUSIONS: [&str; 11] = [
    "success",
    "failure",
    "cancelled",
    "skipped",
    "timed_out",
    "action_required",
    "neutral",
    "stale",
    "startup_failure",
    "none",
    "other",
];

/// The metrics of one hourly row, in the order its value stores them: a fixed
/// layout, so a row is one small array and a window sums rows slot by slot.
pub static SLOTS: std::sync::LazyLock<Vec<String>> = std::sync::LazyLock::new(|| {
    let mut slots = vec![metric::COUNT.to_owned(), metric::FLAKY.to_owned()];
    for kind in [metric::QUEUE, metric::RUN] {
        slots.push(format!("{kind}{}", metric::MS_SUM));
        slots.push(format!("{kind}{}", metric::TIMED));
        slots.extend((0..=BOUNDS_S.len()).map(|b| bucket_metric(kind, b)));
    }
    slots.extend(
        CONCLUSIONS
            .iter()
            .map(|c| format!("{}{c}", metric::CONCLUSION)),
    );
    slots
});

/// Where the slots of one kind of time (queue or run) sit in a row.
#[derive(Debug, Clone)]
pub struct TimeSlots {
    pub ms_sum: usize,
    pub timed: usize,
    /// Bucket `b` (bound `BOUNDS_S[b]`, the last one open-ended) is slot `buckets.start + b`.
    pub buckets: std::ops::Range<usize>,
}

/// Where each metric sits in a row, for answers that read rows by slot rather than
/// by metric name.
#[derive(Debug, Clone)]
pub struct RowLayout {
    pub width: usize,
    pub count: usize,
    pub flaky: usize,
    pub queue: TimeSlots,
    pub run: TimeSlots,
    /// Each of [`CONCLUSIONS`] with its slot.
    pub conclusions: Vec<(&'static str, usize)>,
}

pub static LAYOUT: std::sync::LazyLock<RowLayout> = std::sync::LazyLock::new(|| {
    let slot = |metric: &str| slot_of(metric).expect("a metric of the layout");
    let times = |kind: &str| TimeSlots {
        ms_sum: slot(&format!("{kind}{}", metric::MS_SUM)),
        timed: slot(&format!("{kind}{}", metric::TIMED)),
        buckets: slot(&bucket_metric(kind, 0))..slot(&bucket_metric(kind, BOUNDS_S.len())) + 1,
    };
    RowLayout {
        width: SLOTS.len(),
        count: slot(metric::COUNT),
        flaky: slot(metric::FLAKY),
        queue: times(metric::QUEUE),
        run: times(metric::RUN),
        conclusions: CONCLUSIONS
            .iter()
            .map(|c| (*c, slot(&format!("{}{c}", metric::CONCLUSION))))
            .collect(),
    }
});

/// Where `metric` sits in an hourly row.
pub fn slot_of(metric: &str) -> Option<usize> {
    SLOTS.iter().position(|s| s == metric)
}

/// Index of the bucket holding `ms` (the last one is open-ended).
pub fn bucket_of(ms: i64) -> usize {
    BOUNDS_S
        .iter()
        .position(|&s| ms <= s * 1000)
        .unwrap_or(BOUNDS_S.len())
}

pub fn bucket_metric(kind: &str, bucket: usize) -> String {
    format!("{kind}:{bucket:02}")
}

/// A job's state: the observation of its furthest status (the latest of equals),
/// with the earliest creation time any delivery gave.
pub type JobState = JobObservation;

/// Merges one more delivery of a job. A delivery behind the job's status (a
/// `queued` after the `completed`) changes nothing but an earlier creation time.
pub fn merge(old: Option<&JobState>, new: &JobObservation) -> JobState {
    let mut next = match old {
        Some(old) if old.status > new.status => old.clone(),
        _ => new.clone(),
    };
    // `queued` deliveries carry started_at = created_at: not a start.
    if next.status < JobStatus::InProgress {
        next.started_ms = None;
        next.runner_name = None;
        next.runner_group = None;
    }
    if next.status < JobStatus::Completed {
        next.completed_ms = None;
        next.conclusion = None;
    }
    let created = [old.and_then(|o| o.created_ms), new.created_ms];
    next.created_ms = created.into_iter().flatten().min();
    next
}

/// One materialized cell.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Cell {
    /// Insights of completed jobs by the hour they completed.
    Hour {
        hour: i64,
        repo: String,
        workflow: String,
        job: String,
        labels: String,
        metric: String,
    },
    /// All-time per label set: live counts and the time histograms (for /metrics).
    Total { labels: String, metric: String },
    /// A job queued or in progress: (status, labels, created, job id).
    Live {
        status: &'static str,
        labels: String,
        created_ms: i64,
        job_id: u64,
    },
}

/// When a completed job counts: when it completed, or the best time known.
fn done_ms(job: &JobState) -> Option<i64> {
    job.completed_ms.or(job.started_ms).or(job.created_ms)
}

/// Everything one job's state adds to the cells.
pub fn contributions(job: &JobState) -> Vec<(Cell, i64)> {
    let total = |metric: String| Cell::Total {
        labels: job.labels.clone(),
        metric,
    };
    let live = |status| Cell::Live {
        status,
        labels: job.labels.clone(),
        created_ms: job.created_ms.unwrap_or(0),
        job_id: job.job_id,
    };
    match job.status {
        JobStatus::Waiting => Vec::new(),
        JobStatus::Queued => vec![(total(metric::QUEUED.into()), 1), (live(metric::QUEUED), 1)],
        JobStatus::InProgress => vec![
            (total(metric::IN_PROGRESS.into()), 1),
            (live(metric::IN_PROGRESS), 1),
        ],
        JobStatus::Completed => {
            let hour = done_ms(job).map_or(0, hour_of);
            let hourly = |metric: String| Cell::Hour {
                hour,
                repo: job.repository.clone(),
                workflow: job.workflow.clone(),
                job: job.name.clone(),
                labels: job.labels.clone(),
                metric,
            };
            let conclusion = match job.conclusion.as_deref() {
                None => "none",
                Some(c) if CONCLUSIONS.contains(&c) => c,
                Some(_) => "other",
            };
            let mut out = vec![
                (hourly(metric::COUNT.into()), 1),
                (hourly(format!("{}{conclusion}", metric::CONCLUSION)), 1),
                (total(metric::COUNT.into()), 1),
            ];
            let spans = [
                (metric::QUEUE, job.created_ms.zip(job.started_ms)),
                (metric::RUN, job.started_ms.zip(job.completed_ms)),
            ];
            for (kind, span) in spans {
                let Some((from, to)) = span else { continue };
                let ms = (to - from).max(0);
                let metrics = [
                    (format!("{kind}{}", metric::MS_SUM), ms),
                    (format!("{kind}{}", metric::TIMED), 1),
                    (bucket_metric(kind, bucket_of(ms)), 1),
                ];
                for (name, value) in metrics {
                    out.push((hourly(name.clone()), value));
                    out.push((total(name), value));
                }
            }
            out
        }
    }
}

/// A completed attempt of a job of a run, for flakiness.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attempt {
    pub attempt: u32,
    pub job_id: u64,
    pub conclusion: Option<String>,
    pub done_ms: i64,
    pub workflow: String,
    pub labels: String,
}

/// Key of a run's job across attempts: (repository, run id, job name).
pub type RunJobKey = (String, u64, String);

pub fn run_job_key(job: &JobState) -> RunJobKey {
    (job.repository.clone(), job.run_id, job.name.clone())
}

/// Records a completed job among its run's attempts (replacing its earlier record).
pub fn record_attempt(attempts: &mut Vec<Attempt>, job: &JobState) {
    attempts.retain(|a| a.job_id != job.job_id);
    attempts.push(Attempt {
        attempt: job.run_attempt,
        job_id: job.job_id,
        conclusion: job.conclusion.clone(),
        done_ms: done_ms(job).unwrap_or(0),
        workflow: job.workflow.clone(),
        labels: job.labels.clone(),
    });
    attempts.sort_by_key(|a| (a.attempt, a.job_id));
}

/// A run's job is flaky once an attempt succeeds after an earlier attempt failed;
/// it counts once, in the hour of the first such success.
pub fn flaky_contribution(key: &RunJobKey, attempts: &[Attempt]) -> Option<(Cell, i64)> {
    let is = |a: &Attempt, c: &str| a.conclusion.as_deref() == Some(c);
    let first_failure = attempts.iter().find(|a| is(a, "failure"))?.attempt;
    let success = attempts
        .iter()
        .find(|a| a.attempt > first_failure && is(a, "success"))?;
    Some((
        Cell::Hour {
            hour: hour_of(success.done_ms),
            repo: key.0.clone(),
            workflow: success.workflow.clone(),
            job: key.2.clone(),
            labels: success.labels.clone(),
            metric: metric::FLAKY.into(),
        },
        1,
    ))
}

/// The whole state recomputed from observations in seq order (for `verify` and the
/// rebuild of a store written without it).
#[derive(Debug, Default)]
pub struct Replay {
    pub jobs: BTreeMap<u64, JobState>,
}

impl Replay {
    pub fn observe(&mut self, obs: &JobObservation) {
        let next = merge(self.jobs.get(&obs.job_id), obs);
        self.jobs.insert(obs.job_id, next);
    }

    pub fn run_jobs(&self) -> BTreeMap<RunJobKey, Vec<Attempt>> {
        let mut out: BTreeMap<RunJobKey, Vec<Attempt>> = BTreeMap::new();
        for job in self.jobs.values() {
            if job.status == JobStatus::Completed {
                record_attempt(out.entry(run_job_key(job)).or_default(), job);
            }
        }
        out
    }

    /// Every non-zero cell.
    pub fn cells(&self) -> BTreeMap<Cell, i64> {
        let mut cells: BTreeMap<Cell, i64> = BTreeMap::new();
        let jobs = self.jobs.values().flat_map(contributions);
        let runs = self.run_jobs();
        let flaky = runs.iter().filter_map(|(k, a)| flaky_contribution(k, a));
        for (cell, delta) in jobs.chain(flaky) {
            *cells.entry(cell).or_default() += delta;
        }
        cells.retain(|_, v| *v != 0);
        cells
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(status: JobStatus, attempt: u32, conclusion: Option<&str>) -> JobObservation {
        JobObservation {
            job_id: u64::from(attempt),
            run_id: 9,
            run_attempt: attempt,
            repository: "o/r".into(),
            workflow: "CI".into(),
            name: "test".into(),
            labels: "linux".into(),
            status,
            created_ms: Some(1_000),
            started_ms: Some(if status >= JobStatus::InProgress {
                4_000
            } else {
                1_000
            }),
            completed_ms: (status == JobStatus::Completed).then_some(64_000),
            conclusion: conclusion.map(str::to_owned),
            runner_name: None,
            runner_group: None,
        }
    }

    #[test]
    fn a_job_keeps_its_furthest_status_whatever_the_order() {
        let queued = job(JobStatus::Queued, 1, None);
        let done = job(JobStatus::Completed, 1, Some("success"));
        let forward = merge(Some(&merge(None, &queued)), &done);
        let backward = merge(Some(&merge(None, &done)), &queued);
        assert_eq!(forward, backward);
        assert_eq!(forward.status, JobStatus::Completed);
        // A queued job has not started, whatever its started_at says.
        assert_eq!(merge(None, &queued).started_ms, None);
        let cells = contributions(&forward);
        assert!(cells.iter().all(|(c, _)| !matches!(c, Cell::Live { .. })));
        let queue_bucket = bucket_metric(metric::QUEUE, bucket_of(3_000));
        assert!(
            cells
                .iter()
                .any(|(c, _)| matches!(c, Cell::Hour { metric, .. } if *metric == queue_bucket))
        );
    }

    #[test]
    fn a_failure_then_a_pass_in_a_later_attempt_is_flaky_once() {
        let mut replay = Replay::default();
        replay.observe(&job(JobStatus::Completed, 2, Some("success")));
        assert!(
            replay
                .cells()
                .keys()
                .all(|c| !matches!(c, Cell::Hour { metric, .. } if metric == metric::FLAKY))
        );
        replay.observe(&job(JobStatus::Completed, 1, Some("failure")));
        replay.observe(&job(JobStatus::Completed, 3, Some("success")));
        let flaky: i64 = replay
            .cells()
            .iter()
            .filter(|(c, _)| matches!(c, Cell::Hour { metric, .. } if metric == metric::FLAKY))
            .map(|(_, v)| v)
            .sum();
        assert_eq!(flaky, 1);
    }

    #[test]
    fn every_hourly_metric_has_a_slot() {
        let done = job(JobStatus::Completed, 1, Some("exploded"));
        for (cell, _) in contributions(&done) {
            if let Cell::Hour { metric, .. } = cell {
                assert!(slot_of(&metric).is_some(), "{metric}");
            }
        }
        assert_eq!(bucket_of(1_000), 0);
        assert_eq!(bucket_of(1_001), 1);
        assert_eq!(bucket_of(i64::MAX), BOUNDS_S.len());
        // The layout's bucket slots are the buckets in order.
        for times in [&LAYOUT.queue, &LAYOUT.run] {
            assert_eq!(times.buckets.len(), BOUNDS_S.len() + 1);
            for (b, slot) in times.buckets.clone().enumerate() {
                assert!(
                    SLOTS[slot].ends_with(&format!(":{b:02}")),
                    "{}",
                    SLOTS[slot]
                );
            }
        }
        assert_eq!(LAYOUT.width, SLOTS.len());
    }
}
