// The Rejected view: deliveries refused at the ingest endpoint (wrong secret, wrong
// User-Agent, bad JSON, …), newest first, with a count per reason. Nothing about them
// was stored but this log (GET /api/webhooks/rejected, admin tokens only). Polled
// every 5 seconds while shown.
import { $, api, el, loaders, time, when } from "./common.js";

let timer = null;

loaders.rejected = async () => {
  clearTimeout(timer);
  try {
    const { data } = await api("/api/webhooks/rejected?limit=200");
    $("#rejected-error").textContent = "";
    const reasons = Object.entries(data.byReason).sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]));
    $("#rejected-reasons").replaceChildren(...reasons.map(([code, count]) =>
      el("tr", { "data-code": code }, el("td", {}, el("code", {}, code)), el("td", { class: "num" }, count.toLocaleString()))));
    $("#rejected-none").hidden = data.entries.length > 0;
    $("#rejected-rows").replaceChildren(...data.entries.map((entry) => el("tr", { "data-delivery": entry.deliveryId || "", "data-code": entry.code },
      el("td", {}, el("time", { datetime: entry.receivedAt, title: when(entry.receivedAt) }, time(entry.receivedAt))),
      el("td", {}, el("span", { class: "badge status-failed" }, `${entry.status} ${entry.code}`), el("div", { class: "small" }, entry.reason)),
      el("td", {}, entry.event || "–"),
      el("td", { class: "url" }, entry.deliveryId || "–"),
      el("td", {}, entry.source),
      el("td", { class: "small" }, entry.userAgent || "–", el("br"), entry.signatureSent ? "signature sent" : "no signature"),
      el("td", { class: "num" }, entry.bodyBytes == null ? "–" : entry.bodyBytes.toLocaleString()))));
  } catch (error) {
    $("#rejected-error").textContent = `${error.message} (the rejected log needs an admin token).`;
  }
  if (!$("#rejected").hidden) timer = setTimeout(() => { if (!$("#rejected").hidden) loaders.rejected(); }, 5000);
};
