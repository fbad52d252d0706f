// The Overview (landing view): how things stand in one look. Health with its reasons,
// the last 24 hours from the statistics API (events, success rate, failed, pending,
// duplicates, each linking to its list), deliveries refused at the door, the search
// index lag, the NATS stream's lag and connection when streaming is on, a rate chart
// and the newest events. Refreshed as events arrive.
import { $, api, el, eventRow, loaders, shown } from "./common.js";
import { hourlyPoints, timeChart } from "./charts.js";
import { viewUrl } from "./router.js";

const HOURS = 24;
// datetime-local value for `ms`, as the Events view's date filter takes it.
function localInput(ms) {
  const d = new Date(ms);
  d.setSeconds(0, 0);
  return new Date(d.getTime() - d.getTimezoneOffset() * 60_000).toISOString().slice(0, 16);
}

function setLink(id, value, view, params) {
  const link = $(id);
  link.textContent = value;
  link.href = viewUrl(view, params);
}

// The NATS sink as health reports it (only when streaming is on): how far behind
// the stream is, and whether it is connected or what went wrong.
function showStream(stream) {
  $("#ov-stream-card").hidden = !stream;
  if (!stream) return;
  $("#ov-stream").textContent = stream.lag === 0 ? "up to date" : `${stream.lag.toLocaleString()} behind`;
  $("#ov-stream").className = `value ${stream.connected && stream.lag === 0 ? "healthy" : "degraded"}`;
  const published = `${stream.published.toLocaleString()} published since start`;
  const state = stream.connected ? `connected, ${published}` : "not connected";
  // NATS's own words when something is wrong ("not connected to NATS", a refusal).
  $("#ov-stream-detail").textContent = stream.lastError ? `${stream.lastError} (${published})` : state;
}

loaders.overview = async () => {
  const [stats, health, rejected, newest] = await Promise.all([
    api(`/api/webhooks/statistics?hours=${HOURS}`).then((b) => b.data),
    api("/api/webhooks/health").then((b) => b.data),
    api("/api/webhooks/rejected?limit=1").then((b) => b.data).catch(() => null),
    api("/api/webhooks/events?limit=10").then((b) => b.data),
  ]);
  const s = stats.summary;
  // The window the statistics counted: from the start of its first hour.
  const since = localInput(Date.parse(stats.window.from));
  $("#ov-health").textContent = `${health.status} · ${health.healthScore}`;
  $("#ov-health").className = `value ${health.status}`;
  $("#ov-reasons").replaceChildren(...(health.reasons.length ? health.reasons : ["Nothing to report: deliveries are stored and processed."]).map((r) => el("li", {}, r)));
  $("#ov-total").textContent = s.totalEvents.toLocaleString();
  $("#ov-success").textContent = shown(s.successRate, "%");
  setLink("#ov-failed", shown(s.failedEvents), "events", { status: "failed", from: since });
  setLink("#ov-pending", shown(s.pendingEvents), "events", { status: "pending", from: since });
  setLink("#ov-duplicates", shown(s.duplicateEvents), "events", { status: "duplicate", from: since });
  if (rejected) {
    const count = Object.values(rejected.byReason).reduce((a, b) => a + b, 0);
    setLink("#ov-rejected", String(count), "rejected", {});
  } else {
    $("#ov-rejected").textContent = "–";
    $("#ov-rejected").title = "Needs an admin token";
  }
  const lag = health.search?.indexLag ?? 0;
  $("#ov-lag").textContent = lag === 0 ? "up to date" : `${lag.toLocaleString()} behind`;
  showStream(health.stream);
  const { points, bucketMs } = hourlyPoints(stats.hourly);
  timeChart($("#ov-chart"), points, { bucketMs, height: 180 });
  $("#ov-rows").replaceChildren(...newest.map((event) => eventRow(event)));
};

// Called for every live event: refresh at most once a second while shown.
let pending = null;
export function overviewChanged() {
  if ($("#overview").hidden || pending) return;
  pending = setTimeout(() => {
    pending = null;
    if (!$("#overview").hidden) loaders.overview().catch(() => {});
  }, 1000);
}
