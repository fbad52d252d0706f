// The dashboard's shared pieces: DOM helpers, the API with its token, the loaders
// each tab registers, and event rows with their detail dialog.
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
export const time = (iso) => (iso ? new Date(iso).toLocaleTimeString() : "–");
export const when = (iso) => (iso ? new Date(iso).toLocaleString() : "–");
export const jsonPost = (body, method = "POST") => ({ method, headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });

// What each tab runs when it is shown (its module sets `loaders[tab]`).
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
export async function api(path, options = {}) {
  const headers = { ...(options.headers || {}) };
  if (token) headers.Authorization = `Bearer ${token}`;
  const response = await fetch(path, { ...options, headers });
  if (response.status === 401) {
    askToken();
    throw new Error("unauthorized");
  }
  const body = await response.json();
  if (!body.success) {
    const error = new Error(body.error?.message || response.statusText);
    error.forbidden = response.status === 403;
    throw error;
  }
  return body;
}
export function askToken() {
  const dialog = $("#token-dialog");
  if (!dialog.open) dialog.showModal();
}
$("#token-button").addEventListener("click", askToken);
$("#token-form").addEventListener("submit", () => {
  token = new FormData($("#token-form")).get("token");
  localStorage.setItem("hookvault-token", token);
  location.reload();
});

// ---- event rows and details ----
export function statusBadge(status) {
  return el("span", { class: `badge status-${status}`, "data-status": status }, status);
}
export function eventRow(event, extra = []) {
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
export async function openEvent(deliveryId) {
  const { data } = await api(`/api/webhooks/events/${encodeURIComponent(deliveryId)}`);
  $("#event-title").textContent = `${data.event}${data.action ? ` · ${data.action}` : ""} — ${data.repository || "no repository"}`;
  $("#event-meta").replaceChildren(el("p", {}, `Delivery ${data.deliveryId} · received ${new Date(data.receivedAt).toLocaleString()} · `,
    statusBadge(data.status), ` · attempts ${data.attempts}`, data.lastError ? ` · error: ${data.lastError}` : ""));
  $("#event-payload").replaceChildren(jsonTree(data.payload));
  $("#event-headers").replaceChildren(jsonTree(data.headers));
  $("#event-dialog").showModal();
}
