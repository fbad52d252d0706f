// hookvault dashboard: plain ES modules, no build step. Talks to the REST API and to
// Socket.IO (/webhooks for the live stream, / for security alerts). Each tab with
// much to it has its module (forwarding.js, backfill.js, actions.js); common.js holds what they
// share.
import { $, api, askToken, authToken, el, eventRow, loaders, openEvent, runLoader, statusBadge, time } from "./common.js";
import { countFailed } from "./forwarding.js";
import "./backfill.js";
import "./actions.js";

const MAX_ROWS = 200;

// ---- tabs ----
for (const button of document.querySelectorAll("nav button")) {
  button.addEventListener("click", () => showTab(button.dataset.tab));
}
function showTab(name) {
  for (const button of document.querySelectorAll("nav button")) button.setAttribute("aria-pressed", String(button.dataset.tab === name));
  for (const section of document.querySelectorAll("main > section")) section.hidden = section.id !== name;
  runLoader(name);
}

// ---- statistics ----
function barChart(container, bars, { label, height = 160, failedKey } = {}) {
  const width = Math.max(320, bars.length * 28);
  const max = Math.max(1, ...bars.map((b) => b.value));
  const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
  svg.setAttribute("viewBox", `0 0 ${width} ${height + 40}`);
  const barWidth = width / Math.max(1, bars.length);
  bars.forEach((bar, i) => {
    const h = (bar.value / max) * height;
    const rect = document.createElementNS(svg.namespaceURI, "rect");
    Object.entries({ x: i * barWidth + 2, y: height - h, width: barWidth - 4, height: h }).forEach(([k, v]) => rect.setAttribute(k, v));
    rect.setAttribute("data-label", bar.label);
    rect.setAttribute("data-value", String(bar.value));
    const title = document.createElementNS(svg.namespaceURI, "title");
    title.textContent = `${bar.label}: ${bar.value}`;
    rect.append(title);
    svg.append(rect);
    if (failedKey && bar.failed) {
      const fh = (bar.failed / max) * height;
      const failed = document.createElementNS(svg.namespaceURI, "rect");
      Object.entries({ x: i * barWidth + 2, y: height - fh, width: barWidth - 4, height: fh, class: "failed" }).forEach(([k, v]) => failed.setAttribute(k, v));
      svg.append(failed);
    }
    if (bars.length <= 30 || i % Math.ceil(bars.length / 12) === 0) {
      const text = document.createElementNS(svg.namespaceURI, "text");
      text.setAttribute("x", i * barWidth + barWidth / 2);
      text.setAttribute("y", height + 14);
      text.setAttribute("text-anchor", "middle");
      text.textContent = label(bar);
      svg.append(text);
    }
  });
  container.replaceChildren(svg);
}
loaders.stats = async () => {
  const hours = new FormData($("#stats-window")).get("hours");
  const { data } = await api(`/api/webhooks/statistics?hours=${hours}`);
  // A token limited to some organizations gets only what the per-repository counters
  // hold: the other numbers are null.
  const s = data.summary;
  const shown = (value, unit = "") => (value === null ? "–" : `${value}${unit}`);
  $("#stat-total").textContent = s.totalEvents;
  $("#stat-success").textContent = shown(s.successRate, "%");
  $("#stat-failed").textContent = shown(s.failedEvents);
  $("#stat-pending").textContent = shown(s.pendingEvents);
  $("#stat-avg").textContent = shown(s.avgProcessingTimeMs, " ms");
  $("#stat-p95").textContent = data.processingTimeMs.p95 === null ? "–" : `≤ ${data.processingTimeMs.p95} ms`;
  barChart($("#chart-hourly"), data.hourly.map((h) => ({ label: h.hour, value: h.total, failed: h.failed })),
    { label: (b) => new Date(b.label).getHours() + "h", failedKey: true });
  barChart($("#chart-types"), data.byEvent.map((e) => ({ label: e.event, value: e.total, failed: e.failed })),
    { label: (b) => b.label.slice(0, 10), failedKey: true });
};
$("#stats-window").addEventListener("change", () => runLoader("stats"));

// ---- failed deliveries ----
loaders.failed = async () => {
  const { data } = await api("/api/webhooks/failed?limit=100");
  $("#failed-rows").replaceChildren(...data.map((event) => {
    const replay = el("button", { type: "button", onclick: async (e) => {
      e.stopPropagation();
      replay.disabled = true;
      try {
        const { data: result } = await api(`/api/webhooks/replay/${encodeURIComponent(event.deliveryId)}`, { method: "POST" });
        row.querySelector("[data-status]")?.replaceWith(statusBadge(result.status));
        if (result.status === "processed") row.remove();
      } finally { replay.disabled = false; refreshCounts(); }
    } }, "Replay");
    const row = el("tr", { tabindex: "0", "data-delivery": event.deliveryId, "data-id": String(event.id), onclick: () => openEvent(event.deliveryId) },
      el("td", {}, time(event.receivedAt)), el("td", {}, event.event), el("td", {}, event.repository || ""),
      el("td", {}, String(event.attempts)), el("td", {}, event.lastError || ""), el("td", {}, statusBadge(event.status), " ", replay));
    return row;
  }));
};
$("#retry-all").addEventListener("click", async () => {
  const { data } = await api("/api/webhooks/retry-failed", { method: "POST" });
  $("#retry-result").textContent = `${data.total} retried: ${data.processed} processed, ${data.failed} still failed`;
  await loaders.failed();
  refreshCounts();
});

// ---- search ----
$("#search-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  const q = new FormData($("#search-form")).get("q");
  try {
    const { data } = await api(`/api/webhooks/search?${new URLSearchParams({ q, limit: "50" })}`);
    $("#search-summary").textContent = `${data.total} events · ${data.tookMs} ms`;
    $("#search-hits").replaceChildren(...data.hits.map((hit) => {
      const snippet = el("div", { class: "snippet" });
      snippet.innerHTML = hit.snippet; // server-escaped text with <mark> around matches
      return el("li", {}, el("a", { href: "#", onclick: (ev) => { ev.preventDefault(); openEvent(hit.deliveryId); } },
        `${hit.event}${hit.action ? ` · ${hit.action}` : ""} — ${hit.repository || "no repository"} — ${time(hit.receivedAt)}`), snippet);
    }));
  } catch (error) {
    $("#search-summary").textContent = error.message;
    $("#search-hits").replaceChildren();
  }
});

// ---- repositories ----
loaders.repos = async () => {
  const { data } = await api("/api/repositories?sort=activity");
  $("#repo-rows").replaceChildren(...data.map((repo) => el("tr", { tabindex: "0", onclick: () => showRepo(repo.repository) },
    el("td", {}, repo.repository), el("td", {}, String(repo.totalEvents)), el("td", {}, String(repo.pushes)),
    el("td", {}, `${repo.pullRequests.opened} / ${repo.pullRequests.merged}`), el("td", {}, `${repo.issues.opened} / ${repo.issues.closed}`),
    el("td", {}, String(repo.openSecurityAlerts)), el("td", {}, time(repo.lastEventTime)))));
};
async function showRepo(name) {
  const { data } = await api(`/api/repositories/${name}`);
  $("#repo-detail").replaceChildren(el("h3", {}, `${name}: workflow jobs`),
    el("table", { class: "events" }, el("thead", {}, el("tr", {}, ...["Workflow", "Job", "Runs", "Conclusions", "Avg queue", "Avg run"].map((h) => el("th", {}, h)))),
      el("tbody", {}, ...data.jobs.map((job) => el("tr", {}, el("td", {}, job.workflow), el("td", {}, job.job), el("td", {}, String(job.total)),
        el("td", {}, Object.entries(job.conclusions).map(([c, n]) => `${c} ${n}`).join(", ")),
        el("td", {}, job.avgQueueTimeMs === null ? "–" : `${(job.avgQueueTimeMs / 1000).toFixed(1)} s`),
        el("td", {}, job.avgRunTimeMs === null ? "–" : `${(job.avgRunTimeMs / 1000).toFixed(1)} s`))))));
}

// ---- live stream (/webhooks) ----
let paused = false;
const held = [];
let filter = {};
let newestId = 0;
function addLive(event) {
  newestId = Math.max(newestId, event.id);
  const rows = $("#live-rows");
  rows.prepend(eventRow(event));
  while (rows.children.length > MAX_ROWS) rows.lastChild.remove();
}
let feed;
let loaded;
function startLive(socketOptions) {
feed = io("/webhooks", socketOptions);
// Subscribes once the table holds the newest stored events, resuming after them, so
// nothing is missed or shown twice (also after a reconnect).
loaded = loadLive().catch(() => {});
feed.on("connect", () => {
  $("#connection").textContent = "live";
  $("#connection").className = "badge healthy";
  loaded.then(() => feed.emit("subscribe:webhook-events", { ...filter, since: newestId }));
});
feed.on("disconnect", () => { $("#connection").textContent = "offline"; $("#connection").className = "badge muted"; });
feed.on("connect_error", (error) => { if (/token/i.test(error.message)) askToken(); });
feed.on("event", (event) => (paused ? held.push(event) : addLive(event)));
feed.on("event", () => { if (paused) $("#pause").textContent = `Resume (${held.length})`; });
feed.on("event-updated", (event) => {
  for (const badge of document.querySelectorAll(`tr[data-id="${event.id}"] [data-status]`)) badge.replaceWith(statusBadge(event.status));
  if (event.status === "processed") $(`#failed-rows tr[data-id="${event.id}"]`)?.remove();
  refreshCounts();
});
}
$("#pause").addEventListener("click", () => {
  paused = !paused;
  $("#pause").textContent = paused ? `Resume (${held.length})` : "Pause";
  if (!paused) held.splice(0).forEach(addLive);
});
$("#live-filter").addEventListener("submit", async (e) => {
  e.preventDefault();
  const form = new FormData($("#live-filter"));
  filter = {};
  if (form.get("repository")) filter.repository = form.get("repository").trim();
  if (form.get("eventType")) filter.eventType = form.get("eventType").trim();
  loaded = loadLive();
  await loaded;
  feed.emit("subscribe:webhook-events", { ...filter, since: newestId });
});
async function loadLive() {
  const query = new URLSearchParams({ limit: "50" });
  if (filter.repository) query.set("repository", filter.repository);
  if (filter.eventType) query.set("event", filter.eventType);
  const { data } = await api(`/api/webhooks/events?${query}`);
  $("#live-rows").replaceChildren(...data.map((event) => eventRow(event)));
  newestId = Math.max(0, ...data.map((event) => event.id));
}

// ---- security alerts (/) ----
function startAlerts(socketOptions) {
const main = io("/", socketOptions);
main.on("security-alert", (alert) => {
  $("#alerts").prepend(el("li", {}, el("strong", {}, alert.eventType), ` ${alert.action || ""} in ${alert.repository?.full_name || "?"} · ${time(alert.receivedAt)}`,
    alert.alert?.rule?.description ? el("div", { class: "muted" }, alert.alert.rule.description) : ""));
  $("#alert-count").textContent = String($("#alerts").children.length);
});
}

// ---- health and counts ----
async function refreshHealth() {
  try {
    const { data } = await api("/api/webhooks/health");
    const badge = $("#health");
    badge.textContent = `${data.status} · ${data.healthScore}`;
    badge.className = `badge ${data.status}`;
    badge.title = data.reasons.join("; ") || "Health score";
    $("#failed-count").textContent = data.failedWebhooksCount ? String(data.failedWebhooksCount) : "";
    const { data: targets } = await api("/api/forwarding/targets");
    $("#forward-failed-count").textContent = countFailed(targets);
  } catch { /* shown by the token dialog */ }
}
const refreshCounts = refreshHealth;

// ---- start: health is public and says whether a token is needed, so the page asks
// for it before calling anything that would refuse it.
async function start() {
  const response = await fetch("/api/webhooks/health");
  const health = (await response.json()).data;
  if (health.tokenRequired && !authToken()) {
    askToken();
    return;
  }
  const token = authToken();
  const socketOptions = token ? { auth: { token } } : {};
  startLive(socketOptions);
  startAlerts(socketOptions);
  refreshHealth();
  setInterval(refreshHealth, 10_000);
}
start();
