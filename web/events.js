// The Events view: every stored event, newest first, a page at a time, filtered by
// repository, event, action, status and a date range. The filters live in the URL
// (?view=events&repository=…&page=2), so a link is shareable, a reload keeps them and
// Back goes to the previous filter. New deliveries arrive live at the top of the first
// page; while the reader is further down or on another page they wait behind a
// "show new" button instead of moving the rows under the reader's eyes.
import { $, api, eventRow, loaders, statusBadge } from "./common.js";
import { navigate, viewParams } from "./router.js";

const PAGE = 50;
const FIELDS = ["repository", "event", "action", "status", "from", "to"];
let feed = null;
let filter = {}; // the URL's filters
let page = 0;
let newestId = 0;
const held = [];
let heldCount = 0;
let paused = false;

// datetime-local value (local time) → RFC 3339 for the API.
const toIso = (local) => (local ? new Date(local).toISOString() : "");

function readUrl() {
  const params = viewParams();
  filter = {};
  for (const field of FIELDS) if (params.get(field)) filter[field] = params.get(field);
  page = Math.max(0, Number(params.get("page") || 1) - 1) || 0;
  const form = $("#events-filter");
  for (const field of FIELDS) form.elements[field].value = filter[field] || "";
}

function query() {
  const q = new URLSearchParams({ limit: String(PAGE), offset: String(page * PAGE) });
  for (const [field, param] of [["repository", "repository"], ["event", "event"], ["action", "action"], ["status", "status"]]) {
    if (filter[field]) q.set(param, filter[field]);
  }
  if (filter.from) q.set("startDate", toIso(filter.from));
  if (filter.to) q.set("endDate", toIso(filter.to));
  return q;
}

async function load() {
  const status = $("#events-summary");
  try {
    const body = await api(`/api/webhooks/events?${query()}`);
    total = body.pagination.total;
    $("#event-rows").replaceChildren(...body.data.map((event) => eventRow(event)));
    if (page === 0) newestId = Math.max(0, ...body.data.map((event) => event.id));
    summarize();
    held.length = 0;
    heldCount = 0;
    showHeld();
  } catch (error) {
    status.textContent = error.message;
  }
}

let total = 0;
function summarize() {
  const shown = $("#event-rows").children.length;
  $("#events-summary").textContent = total
    ? `${(page * PAGE + 1).toLocaleString()}–${(page * PAGE + shown).toLocaleString()} of ${total.toLocaleString()} events`
    : "No events match.";
  $("#events-newer").disabled = page === 0;
  $("#events-older").disabled = (page + 1) * PAGE >= total;
  $("#events-pages").hidden = total <= PAGE;
}

// Whether a live event belongs on this page under these filters.
function matches(event) {
  if (filter.to) return false;
  if (filter.status && event.status !== filter.status) return false;
  if (filter.from && Date.parse(event.receivedAt) < Date.parse(toIso(filter.from))) return false;
  return true;
}
function atTop() {
  const table = $("#event-rows").closest("table");
  return table.getBoundingClientRect().top >= -1 || window.scrollY < 40;
}
function showHeld() {
  const button = $("#events-new");
  button.hidden = heldCount === 0;
  button.textContent = `Show ${heldCount} new event${heldCount === 1 ? "" : "s"}`;
  $("#events-pause").textContent = paused ? "Resume" : "Pause";
}
function addLive(event) {
  newestId = Math.max(newestId, event.id);
  // Hidden, the view reloads when shown; held rows are capped (the count is not).
  if (!matches(event) || $("#events").hidden || $(`#event-rows tr[data-id="${event.id}"]`)) return;
  if (paused || page !== 0 || !atTop()) {
    held.push(event);
    if (held.length > PAGE) held.shift();
    heldCount += 1;
    showHeld();
    return;
  }
  const rows = $("#event-rows");
  rows.prepend(eventRow(event));
  while (rows.children.length > PAGE) rows.lastChild.remove();
  total += 1;
  summarize();
}
function flushHeld() {
  const rows = $("#event-rows");
  for (const event of held.splice(0)) rows.prepend(eventRow(event));
  total += heldCount;
  heldCount = 0;
  while (rows.children.length > PAGE) rows.lastChild.remove();
  summarize();
  showHeld();
}
$("#events-new").addEventListener("click", () => {
  if (page !== 0) return navigate("events", { ...filter }, true);
  flushHeld();
  $("#event-rows").closest("table").scrollIntoView({ block: "start" });
});
$("#events-pause").addEventListener("click", () => {
  paused = !paused;
  if (!paused) flushHeld();
  showHeld();
});

function subscribe() {
  if (!feed?.connected) return;
  const live = {};
  if (filter.repository) live.repository = filter.repository;
  if (filter.event) live.eventType = filter.event;
  if (filter.action) live.action = filter.action;
  // Resume after the newest event seen; before any, live from now (never the whole store).
  feed.emit("subscribe:webhook-events", newestId ? { ...live, since: newestId } : live);
}

// Suggestions for the repository and event fields, once: the catalog's event types
// and the repositories seen.
let suggested = false;
async function suggest() {
  if (suggested) return;
  suggested = true;
  const [types, repos] = await Promise.all([api("/api/webhooks/events/types"), api("/api/repositories?sort=name")]);
  const options = (values) => values.map((value) => Object.assign(document.createElement("option"), { value }));
  $("#known-events").replaceChildren(...options(types.data.categories.flatMap((c) => c.events.map((e) => e.name)).sort()));
  $("#known-repositories").replaceChildren(...options(repos.data.map((r) => r.repository)));
}

let loaded = Promise.resolve();
// Shown (also after Back/Forward): the URL's filters, the page they name.
loaders.events = () => {
  readUrl();
  suggest().catch(() => { suggested = false; });
  loaded = load().then(subscribe);
  return loaded;
};

$("#events-filter").addEventListener("submit", (e) => {
  e.preventDefault();
  const form = new FormData($("#events-filter"));
  const next = {};
  for (const field of FIELDS) {
    const value = String(form.get(field) || "").trim();
    if (value) next[field] = value;
  }
  navigate("events", next, true);
});
$("#events-clear").addEventListener("click", () => navigate("events", {}, true));
$("#events-newer").addEventListener("click", () => navigate("events", { ...filter, page: page > 1 ? String(page) : undefined }, true));
$("#events-older").addEventListener("click", () => navigate("events", { ...filter, page: String(page + 2) }, true));

// The /webhooks namespace: every event, then status changes.
export function startFeed(socketOptions, onEvent) {
  feed = io("/webhooks", socketOptions);
  feed.on("connect", () => {
    $("#connection").textContent = "live";
    $("#connection").className = "badge healthy";
    loaded.then(subscribe);
  });
  feed.on("disconnect", () => { $("#connection").textContent = "offline"; $("#connection").className = "badge muted"; });
  feed.on("event", (event) => { addLive(event); onEvent(event); });
  feed.on("event-updated", (event) => {
    for (const badge of document.querySelectorAll(`tr[data-id="${event.id}"] [data-status]`)) badge.replaceWith(statusBadge(event.status));
    for (const row of document.querySelectorAll(`#event-rows tr[data-id="${event.id}"]`)) row.classList.toggle("row-failed", event.status === "failed");
    onEvent(event);
  });
  return feed;
}
