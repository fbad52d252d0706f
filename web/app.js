// hookvault dashboard: plain ES modules, no build step. Talks to the REST API and to
// Socket.IO (/webhooks for the live stream, / for security alerts). Each view with
// much to it has its module (overview.js, events.js, detail.js, stats.js, rejected.js,
// security.js, forwarding.js, backfill.js, actions.js); router.js keeps the view and
// its filters in the URL; common.js and charts.js hold what they share. This file has
// the small views (failed, search, repositories), the health badge and the start.
import { $, api, askToken, authToken, el, loaders, openEvent, statusBadge, time } from "./common.js";
import { countFailed } from "./forwarding.js";
import { startFeed } from "./events.js";
import { overviewChanged } from "./overview.js";
import { alertArrived, refreshAlertCount } from "./security.js";
import { showCurrent } from "./router.js";
import "./detail.js";
import "./stats.js";
import "./rejected.js";
import "./backfill.js";
import "./actions.js";

// ---- failed deliveries ----
// Only the latest load renders: a list fetched before a replay finished would bring
// the replayed row back.
let failedLoads = 0;
loaders.failed = async () => {
  const load = ++failedLoads;
  const { data } = await api("/api/webhooks/failed?limit=100");
  if (load !== failedLoads) return;
  $("#failed-none").hidden = data.length > 0;
  $("#failed-rows").replaceChildren(...data.map((event) => {
    const replay = el("button", { type: "button", onclick: async (e) => {
      e.stopPropagation();
      replay.disabled = true;
      try {
        const { data: result } = await api(`/api/webhooks/replay/${encodeURIComponent(event.deliveryId)}`, { method: "POST" });
        row.querySelector("[data-status]")?.replaceWith(statusBadge(result.status));
        if (result.status === "processed") row.remove();
        await loaders.failed();
      } finally { replay.disabled = false; refreshHealth(); }
    } }, "Replay");
    const row = el("tr", { tabindex: "0", "data-delivery": event.deliveryId, "data-id": String(event.id), onclick: () => openEvent(event.deliveryId),
        onkeydown: (e) => { if (e.key === "Enter" && e.target === row) openEvent(event.deliveryId); } },
      el("td", {}, time(event.receivedAt)), el("td", {}, event.event), el("td", {}, event.repository || ""),
      el("td", {}, String(event.attempts)), el("td", {}, event.lastError || ""), el("td", {}, statusBadge(event.status), " ", replay));
    return row;
  }));
};
$("#retry-all").addEventListener("click", async () => {
  const { data } = await api("/api/webhooks/retry-failed", { method: "POST" });
  $("#retry-result").textContent = `${data.total} retried: ${data.processed} processed, ${data.failed} still failed`;
  await loaders.failed();
  refreshHealth();
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
  $("#repo-rows").replaceChildren(...data.map((repo) => el("tr", { tabindex: "0", onclick: () => showRepo(repo.repository),
      onkeydown: (e) => { if (e.key === "Enter") showRepo(repo.repository); } },
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

// Every live event or status change: the overview and the counts follow.
let healthSoon = null;
function eventChanged() {
  overviewChanged();
  if (!healthSoon) healthSoon = setTimeout(() => { healthSoon = null; refreshHealth(); }, 500);
}

// ---- start: health is public and says whether a token is needed, so the page asks
// for it before calling anything that would refuse it.
async function start() {
  const response = await fetch("/api/webhooks/health");
  const health = (await response.json()).data;
  if (health.tokenRequired && !authToken()) {
    // One call, so the dialog shows the server's own words for the refusal.
    await api("/api/webhooks/events?limit=1").catch(() => {});
    if (!$("#token-dialog").open) askToken("this hookvault needs its API token from this browser.");
    return;
  }
  const token = authToken();
  const socketOptions = token ? { auth: { token } } : {};
  showCurrent()?.catch?.(() => {});
  const feed = startFeed(socketOptions, eventChanged);
  feed.on("connect_error", (error) => { if (/token|local/i.test(error.message)) askToken(error.message); });
  const main = io("/", socketOptions);
  main.on("security-alert", alertArrived);
  refreshAlertCount().catch(() => {});
  refreshHealth();
  setInterval(refreshHealth, 10_000);
}
start();
