// The dashboard's shared pieces: DOM helpers, the API with its token (and what a 401
// means, in words), the loaders each view registers, event rows, copying.
export const $ = (selector, root = document) => root.querySelector(selector);
export const el = (tag, attrs = {}, ...children) => {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key === "class") node.className = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value);
  }
  for (const child of children.flat(Infinity)) node.append(child instanceof Node ? child : document.createTextNode(child ?? ""));
  return node;
};
const sameDay = (a, b) => a.toDateString() === b.toDateString();
// A time, with its date unless it is today.
export const time = (iso) => {
  if (!iso) return "–";
  const d = new Date(iso);
  return sameDay(d, new Date()) ? d.toLocaleTimeString() : d.toLocaleString(undefined, { month: "short", day: "numeric", hour: "2-digit", minute: "2-digit", second: "2-digit" });
};
// A count, or – for one the API answers null (statistics of a token limited to some
// organizations hold only what the per-repository counters count).
export const shown = (value, unit = "") => (value === null || value === undefined ? "–" : `${value}${unit}`);
export const when = (iso) => (iso ? new Date(iso).toLocaleString() : "–");
export const jsonPost = (body, method = "POST") => ({ method, headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });

// What each view runs when it is shown (its module sets `loaders[view]`).
export const loaders = {};
// Runs a tab's loader; what it could not load (a token limited to some organizations
// is refused what concerns the whole instance: 403) is said at the top of the tab.
export async function runLoader(name) {
  const section = document.getElementById(name);
  let notice = section?.querySelector(":scope > .tab-notice");
  try {
    await loaders[name]?.();
    notice?.remove();
  } catch (error) {
    if (!section || error.message === "unauthorized") return;
    if (!notice) {
      notice = el("p", { class: "tab-notice", role: "status" });
      section.querySelector("h2")?.after(notice) ?? section.prepend(notice);
    }
    notice.textContent = error.forbidden ? `Not available with this token: ${error.message}` : error.message;
  }
}

// ---- API and token ----
let token = localStorage.getItem("hookvault-token") || "";
// The API token the page uses, if any.
export const authToken = () => token;
export const authHeaders = () => (token ? { Authorization: `Bearer ${token}` } : {});
// fetch with the token; a 401 opens the token dialog with the server's reason.
export async function authFetch(path, options = {}) {
  const response = await fetch(path, { ...options, headers: { ...(options.headers || {}), ...authHeaders() } });
  if (response.status === 401) {
    const body = await response.json().catch(() => ({}));
    askToken(body.error?.message);
    throw new Error(body.error?.message || "unauthorized");
  }
  return response;
}
export async function api(path, options = {}) {
  const response = await authFetch(path, options);
  const body = await response.json();
  if (!body.success) {
    const error = new Error(body.error?.message || response.statusText);
    error.forbidden = response.status === 403;
    throw error;
  }
  return body;
}

// The token dialog explains why it is shown: the server's 401 message and how to get
// a token (docs/dashboard.md, "Opening it from another machine").
export function askToken(reason) {
  const dialog = $("#token-dialog");
  const why = $("#token-why");
  if (reason) {
    why.replaceChildren(el("strong", {}, "The server refused this page: "), reason);
    why.hidden = false;
  }
  $("#token-wrong").hidden = !token || !reason;
  if (!dialog.open) dialog.showModal();
}
$("#token-button").addEventListener("click", () => askToken());
$("#token-cancel").addEventListener("click", () => $("#token-dialog").close());
$("#token-form").addEventListener("submit", () => {
  token = new FormData($("#token-form")).get("token").trim();
  localStorage.setItem("hookvault-token", token);
  location.reload();
});
$("#token-forget").addEventListener("click", () => {
  localStorage.removeItem("hookvault-token");
  location.reload();
});

// ---- copying (the Clipboard API needs a secure context: fall back to a selection) ----
export async function copyText(text, status) {
  try {
    await navigator.clipboard.writeText(text);
  } catch {
    const area = el("textarea", { class: "visually-hidden", "aria-hidden": "true" });
    area.value = text;
    document.body.append(area);
    area.select();
    document.execCommand("copy");
    area.remove();
  }
  if (status) status.textContent = "Copied.";
}

// ---- event rows ----
export function statusBadge(status) {
  return el("span", { class: `badge status-${status}`, "data-status": status }, status);
}
// Marks for what a row is besides its status: a test event, a duplicate.
export function marks(event) {
  const out = [];
  if (event.test) out.push(el("span", { class: "badge mark-test", "data-mark": "test", title: "Made by POST /api/webhooks/test" }, "test"));
  if (event.contentDuplicates) out.push(el("span", { class: "badge mark-dup", "data-mark": "duplicated", title: "Arrived again under other delivery ids" }, `+${event.contentDuplicates} dup`));
  return out;
}
export function rowClass(event) {
  return [event.status === "failed" && "row-failed", event.status === "duplicate" && "row-duplicate", event.test && "row-test"].filter(Boolean).join(" ");
}
let opener = () => {};
// detail.js registers what opens an event.
export const setOpener = (open) => { opener = open; };
export const openEvent = (deliveryId) => opener(deliveryId);
export function eventRow(event, extra = []) {
  return el("tr", { tabindex: "0", class: rowClass(event), "data-delivery": event.deliveryId, "data-id": String(event.id),
      onclick: () => openEvent(event.deliveryId),
      onkeydown: (e) => { if (e.key === "Enter") openEvent(event.deliveryId); } },
    el("td", {}, el("time", { datetime: event.receivedAt, title: when(event.receivedAt) }, time(event.receivedAt))),
    el("td", {}, event.event), el("td", {}, event.action || ""),
    el("td", {}, event.repository || ""), el("td", {}, event.sender || ""), el("td", {}, statusBadge(event.status), " ", marks(event)), ...extra);
}
