//! GitHub Actions state, materialized from `workflow_job` deliveries in the same
//! transaction that stores them: each job's furthest state, the live queue and
//! runners, hourly insight counters and all-time totals per label set (see
//! `docs/actions.md`). `state` says what the tables hold; this module writes them,
//! `reads` answers from them, `verify` recomputes them.

mod reads;
pub mod state;
mod verify;
pub mod windows;

use std::collections::BTreeMap;

use redb::{ReadableTable, Table, WriteTransaction};

pub use reads::{ActionsTotals, InsightCells, LiveJob};
pub use verify::differences;
pub use windows::{InsightWindows, RowDeltas, WindowSums};

use super::counters::add_to;
use super::{EventRecord, StoreError, codec, compression, tables};
use crate::domain::job::{JobObservation, JobStatus};
use state::{Cell, JobState, RunJobKey};

type HourKey = (i64, &'static str, &'static str, &'static str, &'static str);
/// (hour, repository, workflow, job, labels) of an hourly row.
type Group = (i64, String, String, String, String);

/// Whether a stored event feeds the Actions state: a job delivery of its own (not a
/// content duplicate of another hook's copy, not a synthesized test).
pub fn is_job_event(record: &EventRecord) -> bool {
    record.origin.event == "workflow_job"
        && record.status != super::Status::Duplicate
        && !record.test
}

/// The job a stored body describes.
pub fn observe_body(record: &EventRecord, compressed: &[u8]) -> Option<JobObservation> {
    let body = compression::decompress(compressed, record.body_len as usize).ok()?;
    JobObservation::from_body(record.encoding, &body)
}

pub struct ActionsTables<'txn> {
    observed: Table<'txn, u64, &'static [u8]>,
    jobs: Table<'txn, u64, &'static [u8]>,
    run_jobs: Table<'txn, (&'static str, u64, &'static str), &'static [u8]>,
    hourly: Table<'txn, HourKey, &'static [u8]>,
    totals: Table<'txn, (&'static str, &'static str), i64>,
    live: Table<'txn, (&'static str, &'static str, i64, u64), i64>,
    /// This transaction's cell deltas, written once per cell by [`Self::flush`].
    pending: BTreeMap<Cell, i64>,
    /// The hourly rows [`Self::flush`] changed, and by how much: for the insight
    /// windows kept in memory, once the transaction commits.
    pub changed_rows: RowDeltas,
}

impl<'txn> ActionsTables<'txn> {
    pub fn open(txn: &'txn WriteTransaction) -> Result<Self, StoreError> {
        Ok(Self {
            observed: txn.open_table(tables::ACTIONS_OBSERVED)?,
            jobs: txn.open_table(tables::ACTIONS_JOBS)?,
            run_jobs: txn.open_table(tables::ACTIONS_RUN_JOBS)?,
            hourly: txn.open_table(tables::ACTIONS_HOURLY)?,
            totals: txn.open_table(tables::ACTIONS_TOTALS)?,
            live: txn.open_table(tables::ACTIONS_LIVE)?,
            pending: BTreeMap::new(),
            changed_rows: RowDeltas::new(),
        })
    }

    /// Applies a newly stored event `seq`, if it is a job delivery.
    pub fn observe_event(
        &mut self,
        seq: u64,
        record: &EventRecord,
        compressed: &[u8],
    ) -> Result<(), StoreError> {
        if !is_job_event(record) {
            return Ok(());
        }
        if let Some(obs) = observe_body(record, compressed) {
            self.observe(seq, &obs)?;
        }
        Ok(())
    }

    /// Records the observation (kept past retention, for `verify`) and moves the
    /// job's contributions from its old state to its new one.
    pub fn observe(&mut self, seq: u64, obs: &JobObservation) -> Result<(), StoreError> {
        self.observed.insert(seq, codec::encode(obs).as_slice())?;
        let old: Option<JobState> = match self.jobs.get(obs.job_id)? {
            Some(bytes) => Some(codec::decode(bytes.value())?),
            None => None,
        };
        let new = state::merge(old.as_ref(), obs);
        if old.as_ref() == Some(&new) {
            return Ok(()); // a redelivery, or news older than what is known
        }
        self.jobs
            .insert(obs.job_id, codec::encode(&new).as_slice())?;
        for (job, sign) in old.iter().map(|o| (o, -1)).chain([(&new, 1)]) {
            for (cell, delta) in state::contributions(job) {
                *self.pending.entry(cell).or_default() += delta * sign;
            }
        }
        if new.status == JobStatus::Completed {
            self.move_attempt(old.as_ref(), &new)?;
        }
        Ok(())
    }

    /// Updates the run's attempts of this job, and whether they make it flaky.
    fn move_attempt(&mut self, old: Option<&JobState>, new: &JobState) -> Result<(), StoreError> {
        let key = state::run_job_key(new);
        let mut attempts = self.attempts(&key)?;
        let before = state::flaky_contribution(&key, &attempts);
        if let Some(old) = old.filter(|o| o.status == JobStatus::Completed) {
            // Same job, other name or run (never seen from GitHub): leave no trace.
            let old_key = state::run_job_key(old);
            if old_key != key {
                let mut previous = self.attempts(&old_key)?;
                let was = state::flaky_contribution(&old_key, &previous);
                previous.retain(|a| a.job_id != old.job_id);
                let now = state::flaky_contribution(&old_key, &previous);
                self.shift(was, now);
                self.save_attempts(&old_key, &previous)?;
            }
        }
        state::record_attempt(&mut attempts, new);
        let after = state::flaky_contribution(&key, &attempts);
        self.shift(before, after);
        self.save_attempts(&key, &attempts)
    }

    fn shift(&mut self, before: Option<(Cell, i64)>, after: Option<(Cell, i64)>) {
        for (cell, sign) in before
            .map(|b| (b, -1))
            .into_iter()
            .chain(after.map(|a| (a, 1)))
        {
            *self.pending.entry(cell.0).or_default() += cell.1 * sign;
        }
    }

    fn attempts(&self, key: &RunJobKey) -> Result<Vec<state::Attempt>, StoreError> {
        match self.run_jobs.get((key.0.as_str(), key.1, key.2.as_str()))? {
            Some(bytes) => Ok(codec::decode(bytes.value())?),
            None => Ok(Vec::new()),
        }
    }

    fn save_attempts(
        &mut self,
        key: &RunJobKey,
        attempts: &[state::Attempt],
    ) -> Result<(), StoreError> {
        let k = (key.0.as_str(), key.1, key.2.as_str());
        if attempts.is_empty() {
            self.run_jobs.remove(k)?;
        } else {
            self.run_jobs
                .insert(k, codec::encode(&attempts).as_slice())?;
        }
        Ok(())
    }

    /// Writes the transaction's cell deltas; call before the commit. Hourly deltas
    /// are gathered per row first: one read and one write of each row touched.
    pub fn flush(&mut self) -> Result<(), StoreError> {
        let mut rows: BTreeMap<Group, Vec<i64>> = BTreeMap::new();
        for (cell, delta) in std::mem::take(&mut self.pending) {
            if delta == 0 {
                continue;
            }
            match cell {
                Cell::Hour {
                    hour,
                    repo,
                    workflow,
                    job,
                    labels,
                    metric,
                } => {
                    let slot = state::slot_of(&metric).expect("every hourly metric has a slot");
                    let row = rows
                        .entry((hour, repo, workflow, job, labels))
                        .or_insert_with(|| vec![0; state::SLOTS.len()]);
                    row[slot] += delta;
                }
                Cell::Total { labels, metric } => {
                    add_to(&mut self.totals, (labels.as_str(), metric.as_str()), delta)?
                }
                Cell::Live {
                    status,
                    labels,
                    created_ms,
                    job_id,
                } => add_to(
                    &mut self.live,
                    (status, labels.as_str(), created_ms, job_id),
                    delta,
                )?,
            }
        }
        for ((hour, repo, workflow, job, labels), deltas) in rows {
            let key = (
                hour,
                repo.as_str(),
                workflow.as_str(),
                job.as_str(),
                labels.as_str(),
            );
            let mut row = match self.hourly.get(key)? {
                Some(bytes) => decode_row(bytes.value())?,
                None => vec![0; state::SLOTS.len()],
            };
            for (value, delta) in row.iter_mut().zip(&deltas) {
                *value += delta;
            }
            if row.iter().all(|v| *v == 0) {
                self.hourly.remove(key)?;
            } else {
                self.hourly.insert(key, codec::encode(&row).as_slice())?;
            }
            self.changed_rows
                .push((hour, (repo, workflow, job, labels), deltas));
        }
        Ok(())
    }

    /// Empties every derived table (not the observations), before a rebuild.
    fn clear_derived(&mut self) -> Result<(), StoreError> {
        self.jobs.retain(|_, _| false)?;
        self.run_jobs.retain(|_, _| false)?;
        self.hourly.retain(|_, _| false)?;
        self.totals.retain(|_, _| false)?;
        self.live.retain(|_, _| false)?;
        self.pending.clear();
        Ok(())
    }
}

/// An hourly row's slots (a row never has more slots than this binary knows).
pub fn decode_row(bytes: &[u8]) -> Result<Vec<i64>, StoreError> {
    let mut row: Vec<i64> = codec::decode(bytes)?;
    row.resize(state::SLOTS.len(), 0);
    Ok(row)
}

/// Rebuilds the Actions state from the stored events of a store written by a
/// binary that did not keep it (or not for all of its events): the job deliveries
/// still stored are read again; retired ones have no payload left and are lost.
pub fn rebuild(txn: &WriteTransaction) -> Result<u64, StoreError> {
    let mut t = ActionsTables::open(txn)?;
    t.clear_derived()?;
    t.observed.retain(|_, _| false)?;
    let index = txn.open_table(tables::EVENT_INDEX)?;
    let events = txn.open_table(tables::EVENTS)?;
    let payloads = txn.open_table(tables::PAYLOADS)?;
    let mut seqs: Vec<u64> = Vec::new();
    let range =
        ("event", "workflow_job", i64::MIN, 0)..=("event", "workflow_job", i64::MAX, u64::MAX);
    for entry in index.range(range)? {
        seqs.push(entry?.0.value().3);
    }
    seqs.sort_unstable(); // the order they were applied in
    let mut observed = 0;
    for seq in seqs {
        let Some(bytes) = events.get(seq)? else {
            continue;
        };
        let record: EventRecord = codec::decode(bytes.value())?;
        let Some(payload) = payloads.get(seq)? else {
            continue;
        };
        if is_job_event(&record) {
            if let Some(obs) = observe_body(&record, payload.value()) {
                t.observe(seq, &obs)?;
                observed += 1;
            }
        }
    }
    t.flush()?;
    Ok(observed)
}
