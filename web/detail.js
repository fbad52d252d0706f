// The event detail dialog: what the event is, Replay, the payload as a JSON tree
// (collapse, expand, copy), "Download raw" (the bytes exactly as received), "Copy as
// curl" (re-sends those bytes with GitHub's headers; signed only with a secret typed
// here, never the stored one), and the headers.
import { $, api, authFetch, copyText, el, marks, setOpener, statusBadge, when } from "./common.js";
import { hmacSha256Hex } from "./hmac.js";

let current = null; // { data, raw: Uint8Array | null }

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

// A word for the shell, in single quotes.
const quote = (text) => `'${text.replaceAll("'", "'\\''")}'`;

// Headers GitHub sends that the receiver reads; the signatures are left out.
const RESEND = ["content-type", "user-agent", "x-github-event", "x-github-delivery", "x-github-hook-id",
  "x-github-hook-installation-target-id", "x-github-hook-installation-target-type"];

async function rawBytes() {
  if (!current.raw) {
    const response = await authFetch(`/api/webhooks/events/${encodeURIComponent(current.data.deliveryId)}/raw`);
    if (!response.ok) throw new Error(`the raw body could not be read (${response.status})`);
    current.raw = new Uint8Array(await response.arrayBuffer());
  }
  return current.raw;
}

export async function curlCommand(data, bytes, secret, target) {
  const headers = Object.fromEntries(Object.entries(data.headers || {}).map(([k, v]) => [k.toLowerCase(), v]));
  headers["content-type"] ||= data.contentType;
  headers["x-github-event"] ||= data.event;
  headers["x-github-delivery"] ||= data.deliveryId;
  const lines = [`curl -sS -X POST ${quote(target)}`];
  for (const name of RESEND) if (headers[name]) lines.push(`-H ${quote(`${name}: ${headers[name]}`)}`);
  if (secret) lines.push(`-H ${quote(`x-hub-signature-256: sha256=${await hmacSha256Hex(secret, bytes)}`)}`);
  let text;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    text = null;
  }
  // printf is a shell builtin: no argument-length limit, and no newline added.
  if (text !== null && !text.includes("\0")) return `printf '%s' ${quote(text)} | ${lines.join(" ")} --data-binary @-`;
  return `${lines.join(" ")} --data-binary @${quote(`${data.deliveryId}.raw`)}  # the file from "Download raw"`;
}

async function openEvent(deliveryId) {
  const { data } = await api(`/api/webhooks/events/${encodeURIComponent(deliveryId)}`);
  current = { data, raw: null };
  $("#event-title").textContent = `${data.event}${data.action ? ` · ${data.action}` : ""} — ${data.repository || "no repository"}`;
  $("#event-meta").replaceChildren(
    el("p", {}, `Delivery `, el("code", {}, data.deliveryId), ` · received ${when(data.receivedAt)} · `, statusBadge(data.status), " ", marks(data),
      ` · attempts ${data.attempts}`, data.processingTimeMs != null ? ` · ${data.processingTimeMs} ms` : "", ` · ${data.bodySize.toLocaleString()} bytes`),
    data.duplicateOf ? el("p", {}, "Duplicate of ", el("a", { href: "#", onclick: (e) => { e.preventDefault(); openEvent(data.duplicateOf); } }, data.duplicateOf)) : "",
    data.lastError ? el("p", { class: "error" }, `Error: ${data.lastError}`) : "");
  $("#event-payload").replaceChildren(jsonTree(data.payload));
  $("#event-headers").replaceChildren(el("table", { class: "events headers" }, el("tbody", {},
    ...Object.entries(data.headers || {}).sort().map(([k, v]) => el("tr", {}, el("th", { scope: "row" }, k), el("td", {}, String(v)))))));
  $("#event-action-result").textContent = "";
  $("#curl-output").hidden = true;
  $("#curl-copy").hidden = true;
  $("#curl-form").elements.url.value ||= `${location.origin}/api/webhooks/github`;
  const dialog = $("#event-dialog");
  if (!dialog.open) dialog.showModal();
}
setOpener(openEvent);

$("#event-replay").addEventListener("click", async () => {
  const result = $("#event-action-result");
  try {
    const { data } = await api(`/api/webhooks/replay/${encodeURIComponent(current.data.deliveryId)}`, { method: "POST" });
    await openEvent(current.data.deliveryId);
    $("#event-action-result").textContent = `Replayed: ${data.status}${data.lastError ? ` (${data.lastError})` : ""}.`;
  } catch (error) {
    result.textContent = `Replay failed: ${error.message}`;
  }
});
$("#event-download").addEventListener("click", async () => {
  try {
    const bytes = await rawBytes();
    const url = URL.createObjectURL(new Blob([bytes], { type: current.data.contentType || "application/octet-stream" }));
    const ext = current.data.contentType === "application/json" ? "json" : "raw";
    const link = el("a", { href: url, download: `${current.data.deliveryId}.${ext}` });
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10_000);
  } catch (error) {
    $("#event-action-result").textContent = error.message;
  }
});
$("#event-copy").addEventListener("click", () => copyText(JSON.stringify(current.data.payload, null, 2), $("#event-action-result")));
$("#event-expand").addEventListener("click", () => { for (const d of document.querySelectorAll("#event-payload details")) d.open = true; });
$("#event-collapse").addEventListener("click", () => {
  for (const d of document.querySelectorAll("#event-payload details details")) d.open = false;
});
$("#curl-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  const form = new FormData($("#curl-form"));
  try {
    const command = await curlCommand(current.data, await rawBytes(), form.get("secret"), form.get("url").trim());
    $("#curl-output").textContent = command;
    $("#curl-output").hidden = false;
    $("#curl-copy").hidden = false;
    $("#curl-result").textContent = form.get("secret") ? "Signed with the secret typed here (not kept)." : "Unsigned: type the webhook secret to add X-Hub-Signature-256.";
    await copyText(command);
  } catch (error) {
    $("#curl-result").textContent = error.message;
  }
});
$("#curl-copy").addEventListener("click", () => copyText($("#curl-output").textContent, $("#curl-result")));
$("#event-dialog").addEventListener("close", () => { $("#curl-form").elements.secret.value = ""; });
