//! Security alerts by identity: the last known state of each alert, so the open
//! count of a repository is the number of its alerts whose last event opened them.
//! A count kept as opens minus closes goes negative on a new install, where alerts
//! opened before hookvault was there are fixed later.

use std::collections::BTreeMap;

use redb::{ReadableTable, Table, WriteTransaction};

use super::counters::{Counter, CounterTables, OPEN_SECURITY_ALERTS};
use super::{EventRecord, Fact, Status, StoreError, tables};

/// Which event last set an alert's state: later events win, by receive time and
/// then sequence, so a replay of an old event never reopens a fixed alert.
pub type AsOf = (i64, u64);

/// The alert facts of a processed event: (repository, alert, open?, as of).
fn observations(record: &EventRecord, seq: u64) -> impl Iterator<Item = (&str, &str, bool, AsOf)> {
    // Test events set no alert state: they can be removed, and a state is not
    // taken back.
    let repo = record
        .origin
        .repository
        .as_deref()
        .filter(|_| record.status == Status::Processed && !record.test);
    record.facts.iter().filter_map(move |fact| match fact {
        Fact::Alert { alert, open } => {
            Some((repo?, alert.as_str(), *open, (record.received_at_ms, seq)))
        }
        _ => None,
    })
}

pub struct AlertTables<'txn> {
    alerts: Table<'txn, (&'static str, &'static str), (i64, u64, bool)>,
}

impl<'txn> AlertTables<'txn> {
    pub fn open(txn: &'txn WriteTransaction) -> Result<Self, StoreError> {
        Ok(Self {
            alerts: txn.open_table(tables::ALERTS)?,
        })
    }

    /// Records what a newly processed event says of its alerts, and moves the open
    /// count of the repository by the alerts that changed between open and closed.
    pub fn observe(
        &mut self,
        record: &EventRecord,
        seq: u64,
        counters: &mut CounterTables,
    ) -> Result<(), StoreError> {
        for (repo, alert, open, as_of) in observations(record, seq) {
            let known = self.alerts.get((repo, alert))?.map(|v| v.value());
            if known.is_some_and(|(at, seq, _)| (at, seq) >= as_of) {
                continue;
            }
            self.alerts
                .insert((repo, alert), (as_of.0, as_of.1, open))?;
            let was_open = known.is_some_and(|(_, _, open)| open);
            if open != was_open {
                let counter = Counter::Repo {
                    repo: repo.to_owned(),
                    counter: OPEN_SECURITY_ALERTS.to_owned(),
                };
                counters.add(counter, if open { 1 } else { -1 });
            }
        }
        Ok(())
    }
}

/// The alert states and open counts the processed events imply (for `verify`).
#[derive(Debug, Default)]
pub struct AlertRecount {
    pub states: BTreeMap<(String, String), (i64, u64, bool)>,
}

impl AlertRecount {
    pub fn add_event(&mut self, record: &EventRecord, seq: u64) {
        for (repo, alert, open, as_of) in observations(record, seq) {
            let state = self
                .states
                .entry((repo.to_owned(), alert.to_owned()))
                .or_insert((as_of.0, as_of.1, open));
            if (state.0, state.1) < as_of {
                *state = (as_of.0, as_of.1, open);
            }
        }
    }

    /// Open alerts per repository.
    pub fn open_counts(&self) -> BTreeMap<Counter, i64> {
        let mut counts = BTreeMap::new();
        for ((repo, _), (_, _, open)) in &self.states {
            if *open {
                let counter = Counter::Repo {
                    repo: repo.clone(),
                    counter: OPEN_SECURITY_ALERTS.to_owned(),
                };
                *counts.entry(counter).or_default() += 1;
            }
        }
        counts
    }
}
