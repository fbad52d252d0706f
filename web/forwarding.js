// The forwarding tab: targets, their attempts and failed deliveries, re-sending,
// creating and editing targets.
import { $, api, el, jsonPost, loaders, runLoader, time, when } from "./common.js";

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
export const countFailed = (targets) => { const n = targets.reduce((sum, t) => sum + t.failed, 0); return n ? String(n) : ""; };
function targetRow(t) {
  const open = el("button", { type: "button", class: "link", "aria-label": `Show target ${t.name}`, onclick: (e) => { e.stopPropagation(); selectTarget(t.name); } }, t.name);
  return el("tr", { "data-target": t.name, onclick: () => selectTarget(t.name) },
    el("td", {}, open, " ", el("span", { class: "badge muted" }, t.source === "settings" ? "settings" : "API"),
      t.runsHere ? "" : [" ", el("span", { class: "badge muted", title: "In a cluster one node runs forwarding; this one shows the cursor it saved last" }, "runs on another node")],
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
setInterval(() => { if (!$("#forwarding").hidden) runLoader("forwarding"); }, FORWARD_REFRESH_MS);
