// hookvault dashboard: plain ES module, no build step. Talks to the REST API and to
// Socket.IO (/webhooks for the live stream, / for security alerts).
import { actionsView } from "./actions.js";

const $ = (selector, root = document) => root.querySelector(selector);
const el = (tag, attrs = {}, ...children) => {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key === "class") node.className = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value);
  }
  for (const child of children.flat(Infinity)) node.append(child instanceof Node ? child : document.createTextNode(child ?? ""));
  return node;
};
const time = (iso) => (iso ? new Date(iso).toLocaleTimeString() : "–");
const MAX_ROWS = 200;

// ---- API and token ----
let token = localStorage.getItem("hookvault-token") || "";
async function api(path, options = {}) {
  const headers = { ...(options.headers || {}) };
  if (token) headers.Authorization = `Bearer ${token}`;
  const response = await fetch(path, { ...options, headers });
  if (response.status === 401) {
    askToken();
    throw new Error("unauthorized");
  }
  const body = await response.json();
  if (!body.success) throw new Error(body.error?.message || response.statusText);
  return body;
}
function askToken() {
  const dialog = $("#token-dialog");
  if (!dialog.open) dialog.showModal();
}
$("#token-button").addEventListener("click", askToken);
$("#token-form").addEventListener("submit", () => {
  token = new FormData($("#token-form")).get("token");
  localStorage.setItem("hookvault-token", token);
  location.reload();
});

// ---- tabs ----
const loaders = {};
for (const button of document.querySelectorAll("nav button")) {
  button.addEventListener("click", () => showTab(button.dataset.tab));
}
function showTab(name) {
  for (const button of document.querySelectorAll("nav button")) button.setAttribute("aria-pressed", String(button.dataset.tab === name));
  for (const section of document.querySelectorAll("main > section")) section.hidden = section.id !== name;
  loaders[name]?.();
}

// ---- event rows and details ----
function statusBadge(status) {
  return el("span", { class: `badge status-${status}`, "data-status": status }, status);
}
function eventRow(event, extra = []) {
  return el("tr", { tabindex: "0", "data-delivery": event.deliveryId, "data-id": String(event.id),
      onclick: () => openEvent(event.deliveryId),
      onkeydown: (e) => { if (e.key === "Enter") openEvent(event.deliveryId); } },
    el("td", {}, time(event.receivedAt)), el("td", {}, event.event), el("td", {}, event.action || ""),
    el("td", {}, event.repository || ""), el("td", {}, event.sender || ""), el("td", {}, statusBadge(event.status)), ...extra);
}
function jsonTree(value, key) {
  const label = key === undefined ? [] : [el("span", { class: "k" }, JSON.stringify(key)), ": "];
  if (value && typeof value === "object") {
    const entries = Array.isArray(value) ? value.map((v, i) => [i, v]) : Object.entries(value);
    const open = key === undefined || entries.length <= 8;
    const details = el("details", open ? { open: "" } : {},
      el("summary", {}, ...label, Array.isArray(value) ? `[${entries.length}]` : `{${entries.length}}`));
    for (const [k, v] of entries) details.append(jsonTree(v, k));
    return details;
  }
  const cls = typeof value === "string" ? "s" : "n";
  return el("div", {}, ...label, el("span", { class: cls }, JSON.stringify(value)));
}
async function openEvent(deliveryId) {
  const { data } = await api(`/api/webhooks/events/${encodeURIComponent(deliveryId)}`);
  $("#event-title").textContent = `${data.event}${data.action ? ` · ${data.action}` : ""} — ${data.repository || "no repository"}`;
  $("#event-meta").replaceChildren(el("p", {}, `Delivery ${data.deliveryId} · received ${new Date(data.receivedAt).toLocaleString()} · `,
    statusBadge(data.status), ` · attempts ${data.attempts}`, data.lastError ? ` · error: ${data.lastError}` : ""));
  $("#event-payload").replaceChildren(jsonTree(data.payload));
  $("#event-headers").replaceChildren(jsonTree(data.headers));
  $("#event-dialog").showModal();
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
  const s = data.summary;
  $("#stat-total").textContent = s.totalEvents;
  $("#stat-success").textContent = `${s.successRate}%`;
  $("#stat-failed").textContent = s.failedEvents;
  $("#stat-pending").textContent = s.pendingEvents;
  $("#stat-avg").textContent = `${s.avgProcessingTimeMs} ms`;
  $("#stat-p95").textContent = data.processingTimeMs.p95 === null ? "–" : `≤ ${data.processingTimeMs.p95} ms`;
  barChart($("#chart-hourly"), data.hourly.map((h) => ({ label: h.hour, value: h.total, failed: h.failed })),
    { label: (b) => new Date(b.label).getHours() + "h", failedKey: true });
  barChart($("#chart-types"), data.byEvent.map((e) => ({ label: e.event, value: e.total, failed: e.failed })),
    { label: (b) => b.label.slice(0, 10), failedKey: true });
};
$("#stats-window").addEventListener("change", () => loaders.stats());

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

// ---- forwarding targets ----
// Refreshed every few seconds while the section is shown. Rows are rebuilt only when
// what they show changed, so a focused button survives a refresh.
const FORWARD_REFRESH_MS = 5_000;
const FAILED_PAGE = 50;
const STATE_TEXT = { healthy: "healthy", retrying: "retrying", open: "circuit open" };
const SPEC_FIELDS = ["url", "events", "actions", "repositories", "organizations", "timeoutMs", "concurrency", "ordered",
  "maxAttempts", "backoffMs", "maxBackoffMs", "circuitThreshold", "followRedirects", "allowLinkLocal"];
const forward = { targets: [], selected: null, pages: [0], editing: null };
const target = (name) => `/api/forwarding/targets/${encodeURIComponent(name)}`;
const jsonPost = (body, method = "POST") => ({ method, headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
const when = (iso) => (iso ? new Date(iso).toLocaleString() : "–");
function stateBadge(state) {
  return el("span", { class: `badge state-${state}`, "data-state": state }, STATE_TEXT[state] || state);
}
function filters(t) {
  const parts = [["events", t.events], ["actions", t.actions], ["repositories", t.repositories], ["organizations", t.organizations]]
    .filter(([, list]) => list.length).map(([name, list]) => `${name}: ${list.join(", ")}`);
  if (!parts.length) parts.push("all events");
  if (t.ordered) parts.push("ordered");
  parts.push(`concurrency ${t.concurrency}`, `max attempts ${t.maxAttempts}`);
  if (t.hasSecret) parts.push("own secret");
  return parts.join(" · ");
}
function renderRows(tbody, items, key, build) {
  const old = new Map([...tbody.children].map((row) => [row.dataset.key, row]));
  const rows = items.map((item) => {
    const signature = JSON.stringify(item);
    const row = old.get(String(key(item)));
    if (row && row.dataset.signature === signature) return row;
    const fresh = build(item);
    fresh.dataset.key = String(key(item));
    fresh.dataset.signature = signature;
    return fresh;
  });
  if (rows.length !== tbody.children.length || rows.some((row, i) => tbody.children[i] !== row)) tbody.replaceChildren(...rows);
}
function showForwardError(error) {
  $("#forward-error").textContent = error ? `Could not load forwarding: ${error.message}` : "";
}
loaders.forwarding = async () => {
  try {
    const { data } = await api("/api/forwarding/targets");
    forward.targets = data;
    showForwardError(null);
  } catch (error) { showForwardError(error); return; }
  $("#forward-failed-count").textContent = countFailed(forward.targets);
  $("#no-targets").hidden = forward.targets.length > 0;
  renderRows($("#target-rows"), forward.targets, (t) => t.name, targetRow);
  markSelected();
  if (forward.selected && !forward.targets.some((t) => t.name === forward.selected)) {
    forward.selected = null;
    $("#target-detail").replaceChildren();
  }
  if (forward.selected) await renderDetail();
};
function markSelected() {
  for (const row of $("#target-rows").children) {
    row.classList.toggle("selected", row.dataset.key === forward.selected);
    const button = row.querySelector("button");
    if (row.dataset.key === forward.selected) button.setAttribute("aria-current", "true");
    else button.removeAttribute("aria-current");
  }
}
const countFailed = (targets) => { const n = targets.reduce((sum, t) => sum + t.failed, 0); return n ? String(n) : ""; };
function targetRow(t) {
  const open = el("button", { type: "button", class: "link", "aria-label": `Show target ${t.name}`, onclick: (e) => { e.stopPropagation(); selectTarget(t.name); } }, t.name);
  return el("tr", { "data-target": t.name, onclick: () => selectTarget(t.name) },
    el("td", {}, open, " ", el("span", { class: "badge muted" }, t.source === "settings" ? "settings" : "API"),
      el("div", { class: "muted url" }, t.url), el("div", { class: "muted small" }, filters(t))),
    el("td", {}, stateBadge(t.state)), el("td", { "data-field": "backlog" }, String(t.backlog)),
    el("td", { "data-field": "inFlight" }, String(t.inFlight)), el("td", { "data-field": "delivered" }, String(t.delivered)),
    el("td", { "data-field": "failed" }, String(t.failed)), el("td", {}, when(t.lastSuccessAt)),
    el("td", {}, t.lastError ? [time(t.lastError.at), " ", el("span", { class: "error" }, t.lastError.message)] : "–"));
}
async function selectTarget(name) {
  if (forward.selected !== name) {
    forward.selected = name;
    forward.pages = [0];
    $("#target-detail").replaceChildren();
  }
  markSelected();
  await renderDetail();
  $("#target-detail h3")?.focus();
}
function attemptCells(a) {
  return [el("td", {}, when(a.at)), el("td", {}, String(a.attempt)),
    el("td", {}, a.status === null ? "no answer" : String(a.status), a.error ? [" · ", el("span", { class: "error" }, a.error)] : ""),
    el("td", {}, `${Math.round(a.latencyMs)} ms`), el("td", {}, el("code", { class: "answer" }, a.answer || ""))];
}
function table(caption, headers, tbodyId) {
  return el("table", { class: "events" }, el("caption", { class: "visually-hidden" }, caption),
    el("thead", {}, el("tr", {}, ...headers.map((h) => el("th", { scope: "col" }, h)))), el("tbody", { id: tbodyId }));
}
// The detail's frame (headings, buttons, forms) is built once per target; a refresh
// fills in its tables and numbers.
function detailFrame(t) {
  const readOnly = t.source === "settings";
  const actions = readOnly
    ? el("p", { class: "muted" }, "Defined in the settings (HOOKVAULT_FORWARD): read-only here, change it where hookvault is started.")
    : el("div", { class: "toolbar" },
      el("button", { type: "button", id: "target-edit", onclick: () => editTarget(forward.selected) }, "Edit"),
      el("button", { type: "button", id: "target-delete", onclick: () => deleteTarget(forward.selected) }, "Delete target"));
  const range = el("form", { id: "resend-range", class: "toolbar", onsubmit: (e) => { e.preventDefault(); resendRange(); } },
    el("label", {}, "Received from", el("input", { name: "from", type: "datetime-local", required: "" })),
    el("label", {}, "to", el("input", { name: "to", type: "datetime-local", required: "" })),
    el("button", { type: "submit" }, "Re-send failed in this range"));
  return el("div", { class: "detail", "data-detail": t.name },
    el("h3", { tabindex: "-1" }, `Target ${t.name}`), actions,
    el("h4", {}, "Recent attempts"),
    table(`Recent attempts of ${t.name}, newest first`, ["Time", "Attempt", "Status or error", "Latency", "Answer (first bytes)", "Delivery"], "attempt-rows"),
    el("p", { id: "no-attempts", class: "muted" }, "No attempts yet."),
    el("h4", {}, "Failed deliveries"),
    el("div", { class: "toolbar" },
      el("button", { type: "button", id: "resend-all", onclick: resendAll }, "Re-send all failed"),
      el("span", { id: "resend-result", role: "status" })),
    range,
    table(`Failed deliveries of ${t.name}, oldest first`, ["Received", "Event", "Repository", "Delivery", "Last attempt", "Attempts", "Re-send"], "target-failed-rows"),
    el("div", { class: "toolbar pager" },
      el("span", { id: "failed-summary", class: "muted" }),
      el("button", { type: "button", id: "failed-prev", onclick: () => page(-1) }, "Previous page"),
      el("button", { type: "button", id: "failed-next", onclick: () => page(1) }, "Next page")));
}
async function renderDetail() {
  const t = forward.targets.find((x) => x.name === forward.selected);
  if (!t) return;
  let frame = $("#target-detail .detail");
  if (!frame || frame.dataset.detail !== t.name) {
    frame = detailFrame(t);
    $("#target-detail").replaceChildren(frame);
  }
  renderRows($("#attempt-rows"), t.recentAttempts, (a) => `${a.seq}-${a.attempt}-${a.at}`, (a) => el("tr", { "data-delivery": a.deliveryId },
    ...attemptCells(a), el("td", {}, a.deliveryId)));
  $("#no-attempts").hidden = t.recentAttempts.length > 0;
  const after = forward.pages.at(-1);
  let result;
  try {
    result = await api(`${target(t.name)}/failed?${new URLSearchParams({ limit: String(FAILED_PAGE), after: String(after) })}`);
  } catch (error) { $("#failed-summary").textContent = error.message; return; }
  const { data, pagination } = result;
  renderRows($("#target-failed-rows"), data, (f) => f.seq, failedRow);
  $("#failed-summary").textContent = data.length ? `${data.length} shown of ${pagination.total} failed`
    : pagination.total ? `None on this page; ${pagination.total} failed in all` : "No failed deliveries.";
  $("#failed-prev").disabled = forward.pages.length === 1;
  $("#failed-next").disabled = data.length < FAILED_PAGE;
  $("#resend-all").disabled = pagination.total === 0;
}
function page(step) {
  if (step > 0) {
    const last = $("#target-failed-rows").lastElementChild;
    if (last) forward.pages.push(Number(last.dataset.key));
  } else if (forward.pages.length > 1) forward.pages.pop();
  renderDetail();
}
function failedRow(f) {
  const last = f.attempts.at(-1);
  const button = el("button", { type: "button", "aria-label": `Re-send ${f.deliveryId}`,
    onclick: () => resend({ seq: f.seq }, `delivery ${f.deliveryId}`, button) }, "Re-send");
  return el("tr", { "data-delivery": f.deliveryId, "data-seq": String(f.seq) },
    el("td", {}, new Date(f.receivedAtMs).toLocaleString()), el("td", {}, f.event), el("td", {}, f.repository || ""),
    el("td", {}, f.deliveryId),
    el("td", {}, last ? [when(last.at), " · ", last.status === null ? "no answer" : String(last.status), last.error ? [" · ", el("span", { class: "error" }, last.error)] : "",
      last.answer ? [" · ", el("code", { class: "answer" }, last.answer)] : ""] : when(f.failedAt)),
    el("td", {}, String(f.attempts.length ? f.attempts.at(-1).attempt : 0)), el("td", {}, button));
}
async function resend(selection, what, button) {
  const name = forward.selected;
  if (button) button.disabled = true;
  try {
    const { data } = await api(`${target(name)}/resend`, jsonPost(selection));
    $("#resend-result").textContent = `${what}: ${data.queued} queued to be sent again`;
  } catch (error) {
    $("#resend-result").textContent = `${what}: not re-sent: ${error.message}`;
  } finally {
    if (button) button.disabled = false;
  }
  await loaders.forwarding();
}
function resendAll() {
  const t = forward.targets.find((x) => x.name === forward.selected);
  if (!t || !confirm(`Send all ${t.failed} failed deliveries to ${t.name} again?`)) return;
  resend({ all: true }, "all failed", $("#resend-all"));
}
function resendRange() {
  const form = new FormData($("#resend-range"));
  const iso = (local) => new Date(local).toISOString();
  const [from, to] = [iso(form.get("from")), iso(form.get("to"))];
  if (!confirm(`Send the deliveries received from ${from} to ${to} that failed for ${forward.selected} again?`)) return;
  resend({ from, to }, "range", null);
}

// Creating and editing API targets; settings targets are read-only.
const list = (text) => String(text || "").split(",").map((s) => s.trim()).filter(Boolean);
function editTarget(name) {
  const t = forward.targets.find((x) => x.name === name);
  const form = $("#target-form");
  forward.editing = t;
  form.elements.name.value = t.name;
  form.elements.name.readOnly = true;
  form.elements.url.value = t.url;
  form.elements.events.value = t.events.join(", ");
  form.elements.repositories.value = t.repositories.join(", ");
  form.elements.secret.value = "";
  form.elements.secret.placeholder = t.hasSecret ? "unchanged" : "none";
  form.elements.concurrency.value = t.concurrency;
  form.elements.maxAttempts.value = t.maxAttempts;
  form.elements.ordered.checked = t.ordered;
  $("#target-editor-title").textContent = `Edit target ${t.name}`;
  $("#target-save").textContent = "Save target";
  $("#target-cancel").hidden = false;
  $("#target-editor").open = true;
  form.elements.url.focus();
}
function resetForm() {
  const form = $("#target-form");
  form.reset();
  forward.editing = null;
  form.elements.name.readOnly = false;
  form.elements.secret.placeholder = "none";
  $("#target-editor-title").textContent = "New target";
  $("#target-save").textContent = "Create target";
  $("#target-cancel").hidden = true;
}
$("#target-cancel").addEventListener("click", () => { resetForm(); $("#target-form-result").textContent = ""; });
$("#target-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  const form = $("#target-form").elements;
  const editing = forward.editing;
  const spec = editing ? Object.fromEntries(SPEC_FIELDS.map((k) => [k, editing[k]])) : {};
  Object.assign(spec, { name: form.name.value.trim(), url: form.url.value.trim(), events: list(form.events.value),
    repositories: list(form.repositories.value), concurrency: Number(form.concurrency.value),
    maxAttempts: Number(form.maxAttempts.value), ordered: form.ordered.checked });
  if (form.secret.value) spec.secret = form.secret.value;
  try {
    if (editing) await api(target(editing.name), jsonPost(spec, "PUT"));
    else await api("/api/forwarding/targets", jsonPost(spec));
    $("#target-form-result").textContent = `Target ${spec.name} ${editing ? "saved" : "created"}.`;
    resetForm();
    await loaders.forwarding();
    if (!editing) selectTarget(spec.name);
  } catch (error) {
    $("#target-form-result").textContent = `Not saved: ${error.message}`;
  }
});
async function deleteTarget(name) {
  if (!confirm(`Delete target ${name}? Its cursor and its failed deliveries are forgotten.`)) return;
  try {
    await api(target(name), { method: "DELETE" });
    $("#target-form-result").textContent = `Target ${name} deleted.`;
  } catch (error) {
    $("#resend-result").textContent = `Not deleted: ${error.message}`;
  }
  await loaders.forwarding();
}
setInterval(() => { if (!$("#forwarding").hidden) loaders.forwarding(); }, FORWARD_REFRESH_MS);

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

// ---- Actions (actions.js): queue, starved labels, job insights ----
actionsView({ $, el, api, loaders, socketOptions: () => (token ? { auth: { token } } : {}) });

// ---- start: health is public and says whether a token is needed, so the page asks
// for it before calling anything that would refuse it.
async function start() {
  const response = await fetch("/api/webhooks/health");
  const health = (await response.json()).data;
  if (health.tokenRequired && !token) {
    askToken();
    return;
  }
  const socketOptions = token ? { auth: { token } } : {};
  startLive(socketOptions);
  startAlerts(socketOptions);
  refreshHealth();
  setInterval(refreshHealth, 10_000);
}
start();

// ---- backfill: the last run, and a run on demand ----
const BACKFILL_FIELDS = [["trigger", "Started by"], ["finishedAt", "Finished"], ["dryRun", "Dry run"], ["checked", "Deliveries checked"],
  ["missing", "Missing"], ["requested", "Redeliveries requested"], ["confirmed", "Arrived"], ["rateLimitWaits", "Rate-limit waits"]];
function showBackfill(status, run) {
  $("#backfill-config").textContent = status.enabled
    ? `On (${status.auth}; hooks ${status.hooks.join(", ") || "found in stored deliveries"}; ${status.intervalMinutes ? `every ${status.intervalMinutes} min` : "on demand"})${status.running ? " · running now" : ""}`
    : "Off: set HOOKVAULT_GITHUB_TOKEN (or a GitHub App) to turn it on.";
  for (const id of ["#backfill-check", "#backfill-run"]) $(id).disabled = !status.enabled || status.running;
  const last = run || status.lastRun;
  const rows = last ? BACKFILL_FIELDS.map(([key, label]) => el("tr", { "data-field": key }, el("th", { scope: "row" }, label),
    el("td", {}, key === "finishedAt" ? when(last[key]) : String(last[key])))) : [el("tr", {}, el("td", {}, "No run yet."))];
  if (last?.missingIds.length) rows.push(el("tr", { "data-field": "missingIds" }, el("th", { scope: "row" }, "Missing ids"), el("td", {}, last.missingIds.join(", "))));
  for (const error of last?.errors || []) rows.push(el("tr", { class: "error" }, el("th", { scope: "row" }, "Error"), el("td", {}, error)));
  $("#backfill-last").replaceChildren(...rows);
}
loaders.backfill = async (run) => {
  try {
    showBackfill((await api("/api/backfill")).data, run);
    $("#backfill-error").textContent = "";
  } catch (error) { $("#backfill-error").textContent = `Could not load backfill: ${error.message}`; }
};
for (const [id, dryRun] of [["#backfill-check", true], ["#backfill-run", false]]) {
  $(id).addEventListener("click", async () => {
    $("#backfill-config").textContent = "Running…";
    try {
      const { data } = await api("/api/backfill", jsonPost({ dryRun }));
      await loaders.backfill(data);
    } catch (error) { $("#backfill-error").textContent = `Backfill failed: ${error.message}`; }
  });
}
