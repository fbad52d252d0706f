//! `hookvault verify`: recomputes every materialized counter and index entry from
//! the stored events and reports each difference.

use std::collections::BTreeMap;

use redb::{Database, ReadTransaction, ReadableDatabase, ReadableTable};

use super::alerts::AlertRecount;
use super::counters::{Counter, Recount, hour_of, metric};
use super::tables;
use super::{EventRecord, Store, StoreError, codec, index};

/// One counter or index cell whose stored value differs from the recount.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Difference {
    pub what: String,
    pub stored: i64,
    pub expected: i64,
}

impl std::fmt::Display for Difference {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}: stored {}, expected {}",
            self.what, self.stored, self.expected
        )
    }
}

fn stored_counters(txn: &ReadTransaction) -> Result<BTreeMap<Counter, i64>, StoreError> {
    let mut stored = BTreeMap::new();
    for entry in txn.open_table(tables::HOURLY)?.iter()? {
        let (key, value) = entry?;
        let (hour, event, metric_name) = key.value();
        stored.insert(
            Counter::Hourly {
                hour,
                event: event.into(),
                metric: metric_name.into(),
            },
            value.value(),
        );
    }
    for entry in txn.open_table(tables::HISTOGRAM)?.iter()? {
        let (key, value) = entry?;
        let (hour, bucket) = key.value();
        stored.insert(Counter::Histogram { hour, bucket }, value.value());
    }
    for entry in txn.open_table(tables::REPO_HOURLY)?.iter()? {
        let (key, value) = entry?;
        let (hour, repo) = key.value();
        stored.insert(
            Counter::RepoHourly {
                hour,
                repo: repo.into(),
            },
            value.value(),
        );
    }
    for entry in txn.open_table(tables::REPO_STATS)?.iter()? {
        let (key, value) = entry?;
        let (repo, counter) = key.value();
        stored.insert(
            Counter::Repo {
                repo: repo.into(),
                counter: counter.into(),
            },
            value.value(),
        );
    }
    for entry in txn.open_table(tables::JOB_METRICS)?.iter()? {
        let (key, value) = entry?;
        let (repo, workflow, job, counter) = key.value();
        stored.insert(
            Counter::Job {
                repo: repo.into(),
                workflow: workflow.into(),
                job: job.into(),
                counter: counter.into(),
            },
            value.value(),
        );
    }
    Ok(stored)
}

fn verify(db: &Database) -> Result<Vec<Difference>, StoreError> {
    let txn = db.begin_read()?;
    let events = txn.open_table(tables::EVENTS)?;
    let mut recount = Recount::default();
    let mut alerts = AlertRecount::default();
    let mut differences = Vec::new();
    let mut index_expected: BTreeMap<(String, String, i64, u64), ()> = BTreeMap::new();
    let mut records: BTreeMap<u64, EventRecord> = BTreeMap::new();
    let mut retries_expected = Vec::new();
    for entry in events.iter()? {
        let (seq, bytes) = entry?;
        let record: EventRecord = codec::decode(bytes.value())?;
        recount.add_event(&record);
        alerts.add_event(&record, seq.value());
        for (field, value) in index::entries(&record) {
            index_expected.insert(
                (
                    field.into(),
                    value.into(),
                    record.received_at_ms,
                    seq.value(),
                ),
                (),
            );
        }
        if let Some(due) = record.next_attempt_ms {
            retries_expected.push((due, seq.value()));
        }
        records.insert(seq.value(), record);
    }
    // Retired events left their contributions in the counters.
    for entry in txn.open_table(tables::RETIRED)?.iter()? {
        let (seq, bytes) = entry?;
        let record: EventRecord = codec::decode(bytes.value())?;
        recount.add_event(&record);
        alerts.add_event(&record, seq.value());
        records.insert(seq.value(), record);
    }
    for (counter, open) in alerts.open_counts() {
        recount.add(counter, open);
    }
    let mut alerts_stored = BTreeMap::new();
    for entry in txn.open_table(tables::ALERTS)?.iter()? {
        let (key, value) = entry?;
        let (repo, alert) = key.value();
        alerts_stored.insert((repo.to_owned(), alert.to_owned()), value.value());
    }
    if alerts_stored != alerts.states {
        differences.push(Difference {
            what: "security alert states".into(),
            stored: alerts_stored.len() as i64,
            expected: alerts.states.len() as i64,
        });
    }
    // Content duplicates stored before schema 2 left only a row here, counted in
    // the hour they arrived; later ones are events and counted above.
    let deliveries = txn.open_table(tables::DELIVERIES)?;
    for entry in txn.open_table(tables::CONTENT_DUPLICATES)?.iter()? {
        let (delivery_id, value) = entry?;
        if deliveries.get(delivery_id.value())?.is_some() {
            continue;
        }
        let (seq, at_ms) = value.value();
        if let Some(original) = records.get(&seq) {
            recount.add(
                Counter::Hourly {
                    hour: hour_of(at_ms),
                    event: original.origin.event.clone(),
                    metric: metric::DUPLICATES.into(),
                },
                1,
            );
        }
    }

    let expected = recount.finish();
    let stored = stored_counters(&txn)?;
    for (counter, value) in &expected {
        let have = stored.get(counter).copied().unwrap_or(0);
        if have != *value {
            differences.push(Difference {
                what: format!("{counter:?}"),
                stored: have,
                expected: *value,
            });
        }
    }
    for (counter, value) in &stored {
        if !expected.contains_key(counter) {
            differences.push(Difference {
                what: format!("{counter:?}"),
                stored: *value,
                expected: 0,
            });
        }
    }

    let mut index_stored = BTreeMap::new();
    for entry in txn.open_table(tables::EVENT_INDEX)?.iter()? {
        let (key, _) = entry?;
        let (field, value, at, seq) = key.value();
        index_stored.insert((field.to_owned(), value.to_owned(), at, seq), ());
    }
    for key in index_expected
        .keys()
        .filter(|k| !index_stored.contains_key(*k))
    {
        differences.push(Difference {
            what: format!("index entry {key:?}"),
            stored: 0,
            expected: 1,
        });
    }
    for key in index_stored
        .keys()
        .filter(|k| !index_expected.contains_key(*k))
    {
        differences.push(Difference {
            what: format!("index entry {key:?}"),
            stored: 1,
            expected: 0,
        });
    }
    let mut counts_expected: BTreeMap<(String, String), i64> = BTreeMap::new();
    for (field, value, _, _) in index_expected.keys() {
        *counts_expected
            .entry((field.clone(), value.clone()))
            .or_default() += 1;
    }
    let mut counts_stored: BTreeMap<(String, String), i64> = BTreeMap::new();
    for entry in txn.open_table(tables::INDEX_COUNTS)?.iter()? {
        let (key, value) = entry?;
        let (field, v) = key.value();
        counts_stored.insert((field.to_owned(), v.to_owned()), value.value() as i64);
    }
    for key in counts_expected
        .keys()
        .chain(counts_stored.keys())
        .collect::<std::collections::BTreeSet<_>>()
    {
        let (have, want) = (
            counts_stored.get(key).copied().unwrap_or(0),
            counts_expected.get(key).copied().unwrap_or(0),
        );
        if have != want {
            differences.push(Difference {
                what: format!("index count {key:?}"),
                stored: have,
                expected: want,
            });
        }
    }

    // Retired events have no payload left: only the stored ones are re-read.
    differences.extend(super::actions::differences(&txn, &records)?);

    let queue: Vec<(i64, u64)> = txn
        .open_table(tables::RETRY_QUEUE)?
        .iter()?
        .map(|e| e.map(|(k, _)| k.value()))
        .collect::<Result<_, _>>()?;
    retries_expected.sort_unstable();
    if queue != retries_expected {
        differences.push(Difference {
            what: "retry queue entries".into(),
            stored: queue.len() as i64,
            expected: retries_expected.len() as i64,
        });
    }
    Ok(differences)
}

impl Store {
    pub async fn verify(&self) -> Result<Vec<Difference>, StoreError> {
        self.read(verify).await
    }
}
