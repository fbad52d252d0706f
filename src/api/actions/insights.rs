//! `GET /api/actions/insights`: counts, conclusions, failure rate, flakiness and
//! queue/run time percentiles per repository × workflow × job × label set, summed
//! from the hourly cells of the window (kept summed by the store once asked for),
//! written as JSON text from each group's line, kept until its sums change.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, LazyLock, Mutex};

use axum::extract::{Query, State};
use serde::Serialize;
use serde::ser::SerializeMap;
use serde_json::json;

use crate::api::openapi::{Envelope, ErrorEnvelope};
use crate::api::{ApiError, AppState, envelope};
use crate::domain::{Visibility, timestamp};
use crate::store::{ACTIONS_BOUNDS_S, ACTIONS_ROW, ActionsTimeSlots, InsightCells};

/// Longest window: 90 days.
const MAX_HOURS: i64 = 24 * 90;
/// Entries in the `slowest` and `flakiest` lists.
const TOP: usize = 10;

/// `hours`: the window in hours, 24 unless given.
pub(crate) fn parse_hours(params: &HashMap<String, String>) -> Result<i64, ApiError> {
    crate::api::params::window_hours(params, MAX_HOURS)
}

/// (repository, workflow, job, labels).
type GroupKey = (String, String, String, String);

/// A group's sums, one value per slot of [`ACTIONS_ROW`].
type Row = [i64];

fn at(row: &Row, slot: usize) -> i64 {
    row.get(slot).copied().unwrap_or(0)
}

/// The bucket bound (seconds) at or below which `q` of the `kind` times fall; the
/// open-ended last bucket answers its lower bound. `None` without times.
pub fn percentile_s(row: &Row, kind: &ActionsTimeSlots, q: f64) -> Option<i64> {
    let total = at(row, kind.timed);
    if total <= 0 {
        return None;
    }
    let rank = (q * total as f64).ceil().max(1.0) as i64;
    let mut seen = 0;
    for (bucket, slot) in kind.buckets.clone().enumerate() {
        seen += at(row, slot);
        if seen >= rank {
            return ACTIONS_BOUNDS_S
                .get(bucket)
                .or(ACTIONS_BOUNDS_S.last())
                .copied();
        }
    }
    ACTIONS_BOUNDS_S.last().copied()
}

/// Mean time in seconds, to the hundredth.
fn mean_s(row: &Row, kind: &ActionsTimeSlots) -> Option<f64> {
    let timed = at(row, kind.timed);
    let sum = at(row, kind.ms_sum);
    (timed > 0).then(|| (sum as f64 / timed as f64 / 10.0).round() / 100.0)
}

/// Queue or run time of a group, as the answer gives it.
#[derive(Serialize)]
struct Times {
    count: i64,
    mean: Option<f64>,
    p50: Option<i64>,
    p95: Option<i64>,
}

impl Times {
    fn of(row: &Row, kind: &ActionsTimeSlots) -> Self {
        Self {
            count: at(row, kind.timed),
            mean: mean_s(row, kind),
            p50: percentile_s(row, kind, 0.50),
            p95: percentile_s(row, kind, 0.95),
        }
    }
}

/// The conclusions counted in a row, by name (in name order), the zeros left out.
struct Conclusions<'r>(&'r Row);

impl Serialize for Conclusions<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        static BY_NAME: LazyLock<Vec<(&'static str, usize)>> = LazyLock::new(|| {
            let mut named = ACTIONS_ROW.conclusions.clone();
            named.sort_unstable();
            named
        });
        let mut map = serializer.serialize_map(None)?;
        for (name, slot) in BY_NAME.iter() {
            let count = at(self.0, *slot);
            if count != 0 {
                map.serialize_entry(name, &count)?;
            }
        }
        map.end()
    }
}

/// A group's line (with its repository, workflow, job and labels), or the totals
/// (without). Fields in name order, like every object the API answers.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Summary<'a> {
    conclusions: Conclusions<'a>,
    count: i64,
    failure_rate: f64,
    flaky: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    job: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    labels: Option<&'a str>,
    queue_seconds: Times,
    #[serde(skip_serializing_if = "Option::is_none")]
    repository: Option<&'a str>,
    run_seconds: Times,
    #[serde(skip_serializing_if = "Option::is_none")]
    workflow: Option<&'a str>,
}

/// The summary of a row as JSON text, for a group when given.
fn summary(row: &Row, group: Option<&GroupKey>) -> String {
    let layout = &*ACTIONS_ROW;
    let count = at(row, layout.count);
    let failures = layout
        .conclusions
        .iter()
        .find(|(name, _)| *name == "failure")
        .map_or(0, |(_, slot)| at(row, *slot));
    let summary = Summary {
        conclusions: Conclusions(row),
        count,
        failure_rate: if count > 0 {
            (failures as f64 / count as f64 * 10_000.0).round() / 10_000.0
        } else {
            0.0
        },
        flaky: at(row, layout.flaky),
        job: group.map(|g| g.2.as_str()),
        labels: group.map(|g| g.3.as_str()),
        queue_seconds: Times::of(row, &layout.queue),
        repository: group.map(|g| g.0.as_str()),
        run_seconds: Times::of(row, &layout.run),
        workflow: group.map(|g| g.1.as_str()),
    };
    serde_json::to_string(&summary).expect("a summary serializes")
}

/// Groups' lines as JSON text, by group and sums: a line follows from them alone, so
/// a group whose sums did not change since the last answer is not written again.
/// A few sums are kept per group (windows of other lengths differ).
#[derive(Default)]
struct Lines {
    by_group: HashMap<GroupKey, Vec<KeptLine>>,
}

/// A group's sums and the line written from them.
type KeptLine = (Box<Row>, Arc<str>);

/// Sums kept per group.
const LINES_PER_GROUP: usize = 4;
/// Groups kept at most (a line and its sums take about 1 KB); past it the cache
/// starts again.
const LINE_GROUPS: usize = 4 * 1024;

static LINES: LazyLock<Mutex<Lines>> = LazyLock::new(Default::default);

impl Lines {
    fn line(&mut self, group: &GroupKey, row: &Row) -> Arc<str> {
        if let Some(kept) = self.by_group.get_mut(group) {
            if let Some(i) = kept.iter().position(|(sums, _)| **sums == *row) {
                let found = kept.remove(i);
                let line = found.1.clone();
                kept.insert(0, found);
                return line;
            }
        }
        if self.by_group.len() >= LINE_GROUPS {
            self.by_group.clear();
        }
        let line: Arc<str> = summary(row, Some(group)).into();
        let kept = self.by_group.entry(group.clone()).or_default();
        kept.insert(0, (row.into(), line.clone()));
        kept.truncate(LINES_PER_GROUP);
        line
    }
}

#[utoipa::path(get, path = "/api/actions/insights", tag = "actions",
    params(
        ("hours" = Option<i64>, Query, minimum = 1, maximum = 2160, description = "Window of completed jobs, by completion hour. Default 24"),
        ("repository" = Option<String>, Query, description = "Only this repository (owner/name)"),
        ("workflow" = Option<String>, Query, description = "Only this workflow name"),
        ("labels" = Option<String>, Query, description = "Only this label set: the job's labels sorted and joined with commas"),
    ),
    responses(
        (status = 200, description = "window, totals, groups (repository, workflow, job, labels: count, conclusions, failureRate, flaky, queueSeconds and runSeconds p50/p95/mean), slowest, flakiest", body = Envelope),
        (status = 400, description = "Bad window", body = ErrorEnvelope),
    ))]
pub(super) async fn insights(
    State(state): State<AppState>,
    visibility: Visibility,
    Query(params): Query<HashMap<String, String>>,
) -> Result<envelope::OkText, ApiError> {
    let hours = parse_hours(&params)?;
    let cells = state
        .store
        .actions_insights(timestamp::now_ms(), hours)
        .await?;
    let filter = |key: &str| params.get(key).cloned();
    let groups = GroupFilter {
        repository: filter("repository"),
        workflow: filter("workflow"),
        labels: filter("labels"),
        visibility,
    };
    Ok(envelope::ok_text(answer(cells, hours, &groups)))
}

/// Which groups an answer covers (all when empty). The whole filter is part of what
/// a kept answer is found by: whatever else narrows an answer belongs here.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GroupFilter {
    pub repository: Option<String>,
    pub workflow: Option<String>,
    pub labels: Option<String>,
    /// The repositories the caller's token sees.
    pub visibility: Visibility,
}

impl GroupFilter {
    fn wants(&self, (repo, flow, _, set): &GroupKey) -> bool {
        let wanted =
            |filter: &Option<String>, value: &str| filter.as_deref().is_none_or(|w| w == value);
        wanted(&self.repository, repo)
            && wanted(&self.workflow, flow)
            && wanted(&self.labels, set)
            && self.visibility.sees_repository(repo)
    }
}

/// The insights answer from the window's cells, with only the groups `groups` wants
/// (this repository, workflow and label set when given, of those the caller sees),
/// as JSON text: the same answer as
/// last time if the sums did not change since, else written from each group's line
/// (see [`Lines`]). Public so that the statistics bench times the whole answer, not
/// only the store's read.
pub fn answer(cells: InsightCells, hours: i64, groups: &GroupFilter) -> String {
    let key = AnswerKey {
        version: cells.sums.version,
        from_hour_ms: cells.from_hour_ms,
        hours,
        groups: groups.clone(),
    };
    let mut kept = ANSWERS.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((_, text)) = kept.iter().find(|(k, _)| *k == key) {
        return text.to_string();
    }
    drop(kept);
    let text = write_answer(&cells, hours, groups);
    kept = ANSWERS.lock().unwrap_or_else(|e| e.into_inner());
    kept.push_front((key, text.as_str().into()));
    kept.truncate(KEPT_ANSWERS);
    let mut bytes = 0;
    kept.retain(|(_, text)| {
        bytes += text.len();
        bytes <= KEPT_ANSWER_BYTES
    });
    text
}

/// What an answer follows from: the sums (by version) and the question.
#[derive(PartialEq, Eq)]
struct AnswerKey {
    version: u64,
    from_hour_ms: i64,
    hours: i64,
    groups: GroupFilter,
}

/// The last answers written, newest first: asked again before the window's sums
/// change (by a commit with jobs in it, or the hour turning), an answer is copied,
/// not written again.
static ANSWERS: LazyLock<Mutex<VecDeque<KeptAnswer>>> = LazyLock::new(Default::default);
type KeptAnswer = (AnswerKey, Arc<str>);
const KEPT_ANSWERS: usize = 16;
/// Bytes of answers kept at most (an answer about 480 groups is about 200 KB).
const KEPT_ANSWER_BYTES: usize = 8 << 20;

fn write_answer(cells: &InsightCells, hours: i64, filter: &GroupFilter) -> String {
    let layout = &*ACTIONS_ROW;
    // In group order (repository, workflow, job, labels), then most runs first.
    let mut groups: Vec<(&GroupKey, &Row)> = cells
        .sums
        .groups
        .iter()
        .filter(|(group, _)| filter.wants(group))
        .map(|(key, row)| (key, &**row))
        .collect();
    let mut totals = vec![0; layout.width];
    for (_, row) in &groups {
        for (total, value) in totals.iter_mut().zip(row.iter()) {
            *total += value;
        }
    }
    groups.sort_by_key(|(_, row)| std::cmp::Reverse(at(row, layout.count)));
    let lines: Vec<Arc<str>> = {
        let mut cache = LINES.lock().unwrap_or_else(|e| e.into_inner());
        groups
            .iter()
            .map(|(group, row)| cache.line(group, row))
            .collect()
    };
    let pick = |key: &dyn Fn(&Row) -> (i64, i64)| -> Vec<usize> {
        let mut ranked: Vec<(usize, (i64, i64))> = groups
            .iter()
            .enumerate()
            .map(|(i, (_, row))| (i, key(row)))
            .filter(|(_, k)| k.0 > 0)
            .collect();
        ranked.sort_by_key(|(_, k)| std::cmp::Reverse(*k));
        ranked.into_iter().take(TOP).map(|(i, _)| i).collect()
    };
    let slowest = pick(&|row| {
        let run = &layout.run;
        (
            percentile_s(row, run, 0.95).unwrap_or(0),
            (mean_s(row, run).unwrap_or(0.0) * 100.0) as i64,
        )
    });
    let flakiest = pick(&|row| (at(row, layout.flaky), at(row, layout.count)));

    let length: usize = lines.iter().map(|l| l.len() + 1).sum();
    let mut out = String::with_capacity(length + 4096);
    let list = |out: &mut String, name: &str, picked: &mut dyn Iterator<Item = &Arc<str>>| {
        out.push_str(name);
        out.push('[');
        for (i, line) in picked.enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str(line);
        }
        out.push(']');
    };
    list(
        &mut out,
        "{\"flakiest\":",
        &mut flakiest.iter().map(|&i| &lines[i]),
    );
    list(&mut out, ",\"groups\":", &mut lines.iter());
    list(
        &mut out,
        ",\"slowest\":",
        &mut slowest.iter().map(|&i| &lines[i]),
    );
    out.push_str(",\"totals\":");
    out.push_str(&summary(&totals, None));
    out.push_str(",\"window\":");
    let window = json!({"from": timestamp::to_rfc3339(cells.from_hour_ms), "hours": hours});
    out.push_str(&window.to_string());
    out.push('}');
    out
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    use super::*;
    use crate::domain::{Delivery, DeliveryId, EventFields, EventType, PayloadEncoding};
    use crate::store::{HOUR_MS, IngestOutcome, Store, StoreOptions};

    const REPOS: [&str; 3] = ["o/api", "o/web", "p/api"];
    const NAMES: [&str; 3] = ["build", "test", "lint"];
    const LABELS: [&[&str]; 3] = [&["self-hosted", "linux"], &["gpu"], &["ubuntu-latest"]];
    const CONCLUSIONS: [Option<&str>; 4] = [Some("success"), Some("failure"), None, Some("odd")];

    /// A random delivery of one of `jobs` jobs, completing within 60 hours of `base_ms`.
    fn delivery(rng: &mut StdRng, n: u64, jobs: u64, base_ms: i64) -> Delivery {
        let id = rng.random_range(0..jobs);
        let at = |ms: i64| timestamp::to_rfc3339(ms);
        let done = base_ms + rng.random_range(-60..=2) * HOUR_MS + rng.random_range(0..HOUR_MS);
        let started = done - rng.random_range(0..4_000_000);
        let created = started - rng.random_range(0..100_000_000);
        let action = ["queued", "in_progress", "completed", "completed"][rng.random_range(0..4)];
        let payload = json!({
            "action": action,
            "repository": {"full_name": REPOS[(id % 3) as usize]},
            "workflow_job": {
                "id": id,
                "run_id": id / 3,
                "run_attempt": id % 3 + 1,
                "name": NAMES[((id / 3) % 3) as usize],
                "workflow_name": if id % 2 == 0 { "CI" } else { "Release" },
                "labels": LABELS[rng.random_range(0..3)],
                "status": action,
                "conclusion": CONCLUSIONS[rng.random_range(0..4)],
                "created_at": at(created),
                "started_at": at(started),
                "completed_at": at(done),
            },
        });
        Delivery {
            id: DeliveryId::parse(&format!("windows-{n}")).unwrap(),
            event: EventType::parse("workflow_job").unwrap(),
            hook_id: None,
            headers: vec![],
            encoding: PayloadEncoding::Json,
            fields: EventFields::extract(&payload),
            body: serde_json::to_vec(&payload).unwrap().into(),
            content_key: None,
            received_at_ms: base_ms,
            test: false,
        }
    }

    #[test]
    fn a_line_is_written_again_when_its_sums_change() {
        let group: GroupKey = ("o/r".into(), "CI".into(), "test".into(), "linux".into());
        let layout = &*ACTIONS_ROW;
        let mut one = vec![0; layout.width];
        one[layout.count] = 1;
        one[layout.conclusions[1].1] = 1;
        let mut two = one.clone();
        two[layout.count] = 2;
        two[layout.conclusions[0].1] = 1;
        let mut lines = Lines::default();
        for row in [&one, &two, &one] {
            assert_eq!(*lines.line(&group, row), summary(row, Some(&group)));
        }
        let line: serde_json::Value = serde_json::from_str(&lines.line(&group, &two)).unwrap();
        assert_eq!(
            line,
            json!({
                "conclusions": {"failure": 1, "success": 1},
                "count": 2,
                "failureRate": 0.5,
                "flaky": 0,
                "job": "test",
                "labels": "linux",
                "queueSeconds": {"count": 0, "mean": null, "p50": null, "p95": null},
                "repository": "o/r",
                "runSeconds": {"count": 0, "mean": null, "p50": null, "p95": null},
                "workflow": "CI",
            })
        );
    }

    /// The windows kept in memory and brought up to date by each commit answer what
    /// summing the hourly rows answers: random jobs (moving between hours, failing
    /// and passing on re-runs) in rounds, random windows and filters after each.
    #[tokio::test]
    async fn kept_windows_answer_what_the_hourly_rows_sum_to() {
        let dir = tempfile::tempdir().unwrap();
        let options = StoreOptions {
            cache_bytes: 1 << 20,
            dedup_ttl: Duration::ZERO,
            on_commit: None,
            on_append: None,
            log_segment_bytes: crate::log::SEGMENT_BYTES,
            cluster: false,
        };
        let (store, writer) = Store::open(dir.path(), &options).unwrap();
        let mut rng = StdRng::seed_from_u64(32);
        let base_ms = timestamp::now_ms();
        // Asked every round, so that they are kept and follow the commits.
        let standing = [(base_ms, 24), (base_ms, 1), (base_ms - 30 * HOUR_MS, 12)];
        let mut sent = 0;
        let mut compared = 0;
        for round in 0..6 {
            let mut last = 0;
            for _ in 0..40 {
                let outcome = store
                    .ingest(delivery(&mut rng, sent, 60, base_ms))
                    .await
                    .unwrap();
                sent += 1;
                if let IngestOutcome::Stored { seq } = outcome {
                    last = seq;
                }
            }
            store.applied(last).await.unwrap();
            // One hour later each round: summed from the last round's.
            let sliding = (base_ms + (round - 3) * HOUR_MS, 24);
            // Few enough that the standing windows stay kept (8 at most).
            let random = (0..4).map(|_| {
                let now = base_ms + rng.random_range(-70..=3) * HOUR_MS;
                (now, rng.random_range(1..=72))
            });
            let windows: Vec<(i64, i64)> = standing
                .into_iter()
                .chain([sliding])
                .chain(random)
                .collect();
            for (now, hours) in windows {
                let kept = store.actions_insights(now, hours).await.unwrap();
                let summed = store.actions_insights_summed(now, hours).await.unwrap();
                assert_eq!(kept.sums, summed.sums, "round {round}, {hours} h to {now}");
                let pick = |rng: &mut StdRng, of: &[&str]| {
                    rng.random_bool(0.5)
                        .then(|| of[rng.random_range(0..of.len())].to_owned())
                };
                // A token limited to the organization `o` does not see `p/api`.
                let limited = rng.random_bool(0.5);
                let filter = GroupFilter {
                    repository: pick(&mut rng, &REPOS),
                    workflow: pick(&mut rng, &["CI", "Release"]),
                    labels: pick(&mut rng, &["gpu", "self-hosted,linux", "ubuntu-latest"]),
                    visibility: if limited {
                        Visibility::of_limits(&["o".into()], &[])
                    } else {
                        Visibility::All
                    },
                };
                let text = answer(kept, hours, &filter);
                assert_eq!(text, answer(summed, hours, &filter));
                assert!(!(limited && text.contains("p/api")), "{text}");
                // Asked again, unchanged: the answer kept as text, but only for the
                // same filter.
                let again = store.actions_insights(now, hours).await.unwrap();
                assert_eq!(text, answer(again.clone(), hours, &filter));
                let all = answer(again.clone(), hours, &GroupFilter::default());
                let summed_all = store.actions_insights_summed(now, hours).await.unwrap();
                assert_eq!(all, answer(summed_all, hours, &GroupFilter::default()));
                let parsed: serde_json::Value = serde_json::from_str(&text).unwrap();
                assert_eq!(parsed["window"]["hours"], hours);
                compared += 1;
            }
        }
        // The standing windows were kept, and followed commits with jobs in them.
        let (now, hours) = standing[0];
        let kept = store.actions_insights(now, hours).await.unwrap();
        let again = store.actions_insights(now, hours).await.unwrap();
        assert!(std::sync::Arc::ptr_eq(&kept.sums, &again.sums));
        assert!(!kept.sums.groups.is_empty());
        assert_eq!(compared, 48);
        drop(store);
        writer.join();
    }
}
