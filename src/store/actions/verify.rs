//! Recomputes the Actions state for `verify`: the observations must match the job
//! deliveries still stored, and every derived table must equal the replay of the
//! observations.

use std::collections::{BTreeMap, BTreeSet};

use redb::{ReadTransaction, ReadableTable};

use super::state::{Attempt, Cell, JobState, Replay};
use crate::domain::job::JobObservation;
use crate::store::verify::Difference;
use crate::store::{EventRecord, StoreError, codec, tables};

fn differ(what: String, stored: i64, expected: i64) -> Difference {
    Difference {
        what,
        stored,
        expected,
    }
}

fn stored_cells(txn: &ReadTransaction) -> Result<BTreeMap<Cell, i64>, StoreError> {
    let mut cells = BTreeMap::new();
    for entry in txn.open_table(tables::ACTIONS_HOURLY)?.iter()? {
        let (key, value) = entry?;
        let (hour, repo, workflow, job, labels) = key.value();
        let row = super::decode_row(value.value())?;
        for (metric, value) in super::state::SLOTS.iter().zip(row).filter(|(_, v)| *v != 0) {
            let cell = Cell::Hour {
                hour,
                repo: repo.into(),
                workflow: workflow.into(),
                job: job.into(),
                labels: labels.into(),
                metric: metric.clone(),
            };
            cells.insert(cell, value);
        }
    }
    for entry in txn.open_table(tables::ACTIONS_TOTALS)?.iter()? {
        let (key, value) = entry?;
        let (labels, metric) = key.value();
        let cell = Cell::Total {
            labels: labels.into(),
            metric: metric.into(),
        };
        cells.insert(cell, value.value());
    }
    for entry in txn.open_table(tables::ACTIONS_LIVE)?.iter()? {
        let (key, value) = entry?;
        let (status, labels, created_ms, job_id) = key.value();
        let status = [
            super::state::metric::QUEUED,
            super::state::metric::IN_PROGRESS,
        ]
        .into_iter()
        .find(|s| *s == status)
        .unwrap_or("unknown");
        let cell = Cell::Live {
            status,
            labels: labels.into(),
            created_ms,
            job_id,
        };
        cells.insert(cell, value.value());
    }
    Ok(cells)
}

/// Every difference between the stored Actions state and its recomputation.
/// `records` are the stored events (seq → record), to check the observations.
pub fn differences(
    txn: &ReadTransaction,
    records: &BTreeMap<u64, EventRecord>,
) -> Result<Vec<Difference>, StoreError> {
    let mut out = Vec::new();
    let mut observed: BTreeMap<u64, JobObservation> = BTreeMap::new();
    for entry in txn.open_table(tables::ACTIONS_OBSERVED)?.iter()? {
        let (seq, bytes) = entry?;
        observed.insert(seq.value(), codec::decode(bytes.value())?);
    }
    // Each job delivery still stored was observed as its payload says.
    let payloads = txn.open_table(tables::PAYLOADS)?;
    for (seq, record) in records.iter().filter(|(_, r)| super::is_job_event(r)) {
        let Some(body) = payloads.get(*seq)? else {
            continue;
        };
        let expected = super::observe_body(record, body.value());
        if expected.as_ref() != observed.get(seq) {
            out.push(differ(format!("actions observation of event {seq}"), 0, 1));
        }
    }
    let mut replay = Replay::default();
    for obs in observed.values() {
        replay.observe(obs);
    }

    let mut jobs: BTreeMap<u64, JobState> = BTreeMap::new();
    for entry in txn.open_table(tables::ACTIONS_JOBS)?.iter()? {
        let (id, bytes) = entry?;
        jobs.insert(id.value(), codec::decode(bytes.value())?);
    }
    for id in replay
        .jobs
        .keys()
        .chain(jobs.keys())
        .collect::<BTreeSet<_>>()
    {
        if replay.jobs.get(id) != jobs.get(id) {
            out.push(differ(format!("actions job {id}"), 1, 1));
        }
    }
    let mut run_jobs: BTreeMap<(String, u64, String), Vec<Attempt>> = BTreeMap::new();
    for entry in txn.open_table(tables::ACTIONS_RUN_JOBS)?.iter()? {
        let (key, bytes) = entry?;
        let (repo, run, name) = key.value();
        run_jobs.insert(
            (repo.into(), run, name.into()),
            codec::decode(bytes.value())?,
        );
    }
    if run_jobs != replay.run_jobs() {
        out.push(differ(
            "actions run attempts".into(),
            run_jobs.len() as i64,
            replay.run_jobs().len() as i64,
        ));
    }

    let expected = replay.cells();
    let stored = stored_cells(txn)?;
    for cell in expected
        .keys()
        .chain(stored.keys())
        .collect::<BTreeSet<_>>()
    {
        let (have, want) = (
            stored.get(cell).copied().unwrap_or(0),
            expected.get(cell).copied().unwrap_or(0),
        );
        if have != want {
            out.push(differ(format!("{cell:?}"), have, want));
        }
    }
    Ok(out)
}
