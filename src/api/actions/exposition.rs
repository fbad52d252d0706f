//! The Actions metrics in the OpenMetrics text of `/metrics`: live queued and in
//! progress jobs and the oldest queued job's age per label set (what an autoscaler
//! scales on), and all-time queue/run time histograms. Rendered from the store at
//! scrape time rather than kept in the registry: the store is their source of truth
//! and survives restarts.

use std::collections::BTreeMap;
use std::fmt::Write;

use crate::domain::job::JobStatus;
use crate::store::{ACTIONS_BOUNDS_S, ActionsTotals, LiveJob, actions_metric as metric};

/// A label value escaped as the exposition format wants.
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// The metric families, to go before the exposition's `# EOF`.
pub fn render(totals: &ActionsTotals, live: &[LiveJob], now_ms: i64) -> String {
    let mut oldest: BTreeMap<&str, i64> = BTreeMap::new();
    for job in live.iter().filter(|j| j.status == JobStatus::Queued) {
        let created = job.created_ms.unwrap_or(now_ms);
        let at = oldest.entry(job.labels.as_str()).or_insert(created);
        *at = (*at).min(created);
    }
    let mut out = String::new();
    let get = |m: &BTreeMap<String, i64>, k: &str| m.get(k).copied().unwrap_or(0);
    let gauges = [
        (
            "jobs_queued",
            "Jobs waiting for a runner now, per label set.",
            metric::QUEUED,
        ),
        (
            "jobs_in_progress",
            "Jobs running now, per label set.",
            metric::IN_PROGRESS,
        ),
    ];
    for (name, help, key) in gauges {
        let _ = writeln!(out, "# HELP hookvault_actions_{name} {help}");
        let _ = writeln!(out, "# TYPE hookvault_actions_{name} gauge");
        for (labels, m) in totals {
            let _ = writeln!(
                out,
                "hookvault_actions_{name}{{labels=\"{}\"}} {}",
                escape(labels),
                get(m, key)
            );
        }
    }
    let name = "hookvault_actions_oldest_queued_seconds";
    let _ = writeln!(
        out,
        "# HELP {name} Age of the oldest job waiting for a runner, per label set."
    );
    let _ = writeln!(out, "# TYPE {name} gauge");
    for labels in totals.keys() {
        let age = oldest
            .get(labels.as_str())
            .map_or(0.0, |at| (now_ms - at).max(0) as f64 / 1000.0);
        let _ = writeln!(out, "{name}{{labels=\"{}\"}} {age}", escape(labels));
    }
    for (kind, what) in [(metric::QUEUE, "queue"), (metric::RUN, "run")] {
        let name = format!("hookvault_actions_{what}_time_seconds");
        let _ = writeln!(
            out,
            "# HELP {name} Completed jobs' {what} time, per label set."
        );
        let _ = writeln!(out, "# TYPE {name} histogram");
        for (labels, m) in totals {
            let labels = escape(labels);
            let mut seen = 0;
            for (bucket, bound) in ACTIONS_BOUNDS_S.iter().enumerate() {
                seen += get(m, &format!("{kind}:{bucket:02}"));
                let _ = writeln!(
                    out,
                    "{name}_bucket{{labels=\"{labels}\",le=\"{bound}.0\"}} {seen}"
                );
            }
            let count = get(m, &format!("{kind}{}", metric::TIMED));
            let _ = writeln!(
                out,
                "{name}_bucket{{labels=\"{labels}\",le=\"+Inf\"}} {count}"
            );
            let sum = get(m, &format!("{kind}{}", metric::MS_SUM)) as f64 / 1000.0;
            let _ = writeln!(out, "{name}_sum{{labels=\"{labels}\"}} {sum}");
            let _ = writeln!(out, "{name}_count{{labels=\"{labels}\"}} {count}");
        }
    }
    out
}
