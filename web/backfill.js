// The backfill tab: the last run, and a run on demand.
import { $, api, el, jsonPost, loaders, when } from "./common.js";

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
