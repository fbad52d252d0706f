// The Actions view: the jobs waiting for a runner now (oldest first), the label sets
// that are starved (jobs queued, none running), queue and run times per job and label
// set, the slowest and the flakiest jobs. Everything comes from /api/actions/*; the
// view refreshes whenever a workflow_job delivery is stored (Socket.IO /webhooks,
// filtered to that event type), and the waiting times tick between refreshes.
import { $, api, authToken, el, loaders } from "./common.js";

const SVG = "http://www.w3.org/2000/svg";
// Jobs drawn in each time chart (the most frequent; the table below lists all).
const CHART_ROWS = 15;
// A burst of job deliveries (a workflow starting 20 jobs) refreshes once.
const REFRESH_DELAY_MS = 150;

// "45 s", "3 min 20 s", "2 h 5 min", "3 d 4 h".
export function duration(seconds) {
  if (seconds === null || seconds === undefined) return "–";
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min${s % 60 ? ` ${s % 60} s` : ""}`;
  if (s < 86400) return `${Math.floor(s / 3600)} h${s % 3600 >= 60 ? ` ${Math.floor((s % 3600) / 60)} min` : ""}`;
  return `${Math.floor(s / 86400)} d${s % 86400 >= 3600 ? ` ${Math.floor((s % 86400) / 3600)} h` : ""}`;
}
// Percentiles are bucket bounds: the time at or below which that share of jobs fell.
const bound = (seconds) => (seconds === null || seconds === undefined ? "–" : `≤ ${duration(seconds)}`);
const percent = (rate) => `${(rate * 100).toFixed(1)}%`;
const groupName = (g) => `${g.job} · ${g.labels || "no labels"}`;

let feed = null;
let fetchedAt = 0;
let running = null;
let pending = null;

const cells = (...values) => values.map((v) => el("td", {}, v));

function showQueue(queue) {
  $("#actions-queued").textContent = String(queue.queued);
  $("#actions-queue-rows").replaceChildren(...queue.jobs.map((job) => el("tr", { "data-job": String(job.jobId) },
    el("td", { "data-wait": String(job.waitSeconds) }, duration(job.waitSeconds)),
    ...cells(job.job, job.repository, job.workflow, job.labels || "no labels", `${job.runId} · attempt ${job.runAttempt}`))));
  $("#actions-queue-empty").hidden = queue.jobs.length > 0;
  const starved = queue.byLabels.filter((line) => line.starved);
  $("#actions-starved-count").textContent = String(starved.length);
  $("#actions-starved").replaceChildren(...starved.map((line) => el("li", { "data-labels": line.labels },
    el("strong", {}, line.labels || "no labels"), `: ${line.queued} queued, none running, the oldest waiting `,
    el("span", { "data-wait": String(line.oldestWaitSeconds) }, duration(line.oldestWaitSeconds)))));
  $("#actions-starved-none").hidden = starved.length > 0;
  $("#actions-label-rows").replaceChildren(...queue.byLabels.map((line) => el("tr", { "data-labels": line.labels },
    ...cells(line.labels || "no labels", String(line.queued), String(line.inProgress)),
    line.oldestWaitSeconds === null ? el("td", {}, "–") : el("td", { "data-wait": String(line.oldestWaitSeconds) }, duration(line.oldestWaitSeconds)),
    el("td", {}, line.starved ? el("span", { class: "badge status-failed" }, "starved") : line.queued ? "runners busy" : "served"))));
}

function showRunners(runners) {
  $("#actions-running").textContent = String(runners.inProgress);
}

// Horizontal bars per job and label set: p95 (pale) behind p50, on a log scale so
// that seconds and hours both show; the exact bounds are written beside each bar.
function timeChart(container, groups, kind, what) {
  const rows = groups.filter((g) => g[kind].count > 0).slice(0, CHART_ROWS);
  container.setAttribute("aria-label", `${what} per job and label set, p50 and p95: ${rows.length ? rows.map((g) =>
    `${groupName(g)} ${bound(g[kind].p50)}, ${bound(g[kind].p95)}`).join("; ") : "no completed jobs"}`);
  if (!rows.length) {
    container.replaceChildren(el("p", { class: "muted" }, "No completed jobs in this window."));
    return;
  }
  const [rowHeight, labelWidth, width] = [22, 300, 960];
  const barWidth = width - labelWidth - 230;
  const scale = Math.log1p(Math.max(1, ...rows.map((g) => g[kind].p95 ?? 0)));
  const length = (s) => Math.max(2, (Math.log1p(s ?? 0) / scale) * barWidth);
  const svg = document.createElementNS(SVG, "svg");
  svg.setAttribute("viewBox", `0 0 ${width} ${rows.length * rowHeight + 6}`);
  const add = (tag, attrs, text) => {
    const node = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
    if (text !== undefined) node.textContent = text;
    svg.append(node);
    return node;
  };
  rows.forEach((g, i) => {
    const y = i * rowHeight + 4;
    const name = groupName(g);
    add("text", { x: labelWidth - 8, y: y + 13, "text-anchor": "end" }, name.length > 44 ? `${name.slice(0, 43)}…` : name);
    const times = g[kind];
    add("rect", { x: labelWidth, y, width: length(times.p95), height: rowHeight - 6, class: "p95", "data-group": name, "data-p95": String(times.p95) });
    add("rect", { x: labelWidth, y, width: length(times.p50), height: rowHeight - 6, class: "p50", "data-group": name, "data-p50": String(times.p50) });
    add("text", { x: labelWidth + barWidth + 8, y: y + 13 }, `p50 ${bound(times.p50)} · p95 ${bound(times.p95)}`);
  });
  container.replaceChildren(svg);
}

function groupTable(tbody, groups, columns) {
  tbody.replaceChildren(...groups.map((g) => el("tr", { "data-group": groupName(g), "data-repository": g.repository },
    ...cells(g.job, g.repository, g.workflow, g.labels || "no labels", ...columns(g)))));
}

function showInsights(insights) {
  const t = insights.totals;
  $("#actions-completed").textContent = String(t.count);
  $("#actions-failure-rate").textContent = percent(t.failureRate);
  $("#actions-flaky").textContent = String(t.flaky);
  $("#actions-queue-p95").textContent = bound(t.queueSeconds.p95);
  $("#actions-run-p95").textContent = bound(t.runSeconds.p95);
  timeChart($("#actions-chart-queue"), insights.groups, "queueSeconds", "Queue time");
  timeChart($("#actions-chart-run"), insights.groups, "runSeconds", "Run time");
  groupTable($("#actions-slowest-rows"), insights.slowest, (g) =>
    [String(g.count), bound(g.runSeconds.p50), bound(g.runSeconds.p95), duration(g.runSeconds.mean)]);
  $("#actions-slowest-empty").hidden = insights.slowest.length > 0;
  groupTable($("#actions-flakiest-rows"), insights.flakiest, (g) => [String(g.flaky), String(g.count), percent(g.failureRate)]);
  $("#actions-flakiest-empty").hidden = insights.flakiest.length > 0;
  groupTable($("#actions-group-rows"), insights.groups, (g) => [String(g.count),
    Object.entries(g.conclusions).map(([c, n]) => `${c} ${n}`).join(", "), percent(g.failureRate),
    `${bound(g.queueSeconds.p50)} / ${bound(g.queueSeconds.p95)}`, `${bound(g.runSeconds.p50)} / ${bound(g.runSeconds.p95)}`]);
  $("#actions-groups-empty").hidden = insights.groups.length > 0;
}

async function load() {
  const hours = new FormData($("#actions-window")).get("hours");
  try {
    const [queue, runners, insights] = await Promise.all([api("/api/actions/queue"), api("/api/actions/runners"),
      api(`/api/actions/insights?hours=${hours}`)]);
    fetchedAt = Date.now();
    showQueue(queue.data);
    showRunners(runners.data);
    showInsights(insights.data);
    $("#actions-error").textContent = "";
    $("#actions").dataset.refreshed = String(fetchedAt);
  } catch (error) {
    $("#actions-error").textContent = `Could not load the Actions state: ${error.message}`;
  }
}
// One load at a time; a request meanwhile runs once after it.
function refresh() {
  if (running) {
    pending ??= running.then(() => { pending = null; return refresh(); });
    return pending;
  }
  running = load().finally(() => { running = null; });
  return running;
}

function connect() {
  if (feed) return;
  const token = authToken();
  feed = io("/webhooks", { ...(token ? { auth: { token } } : {}), forceNew: true });
  feed.on("connect", () => {
    feed.emit("subscribe:webhook-events", { eventType: "workflow_job" });
    $("#actions-live").textContent = "Live: refreshed as job deliveries arrive.";
  });
  feed.on("disconnect", () => { $("#actions-live").textContent = "Offline: refreshed when shown."; });
  let timer = null;
  feed.on("event", () => {
    if ($("#actions").hidden) return; // showing the view loads it
    clearTimeout(timer);
    timer = setTimeout(refresh, REFRESH_DELAY_MS);
  });
}

loaders.actions = () => {
  connect();
  return refresh();
};
$("#actions-window").addEventListener("change", () => refresh());
// Waiting times move on between refreshes.
setInterval(() => {
  if ($("#actions").hidden || !fetchedAt) return;
  const elapsed = (Date.now() - fetchedAt) / 1000;
  for (const cell of document.querySelectorAll("#actions [data-wait]")) {
    cell.textContent = duration(Number(cell.dataset.wait) + elapsed);
  }
}, 1000);
