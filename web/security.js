// The Security view, from what is stored: open alerts per repository (the
// repositories API counts them as alerts are opened, fixed, dismissed, reopened) and
// the newest alert events of the security types in the event catalog; alerts that
// arrive while the page is open (Socket.IO `security-alert`) are added on top.
import { $, api, el, eventRow, loaders } from "./common.js";

let securityTypes = null;

async function types() {
  if (!securityTypes) {
    const { data } = await api("/api/webhooks/events/types");
    securityTypes = data.categories.find((c) => c.category === "security")?.events.map((e) => e.name) ?? [];
  }
  return securityTypes;
}

export async function refreshAlertCount() {
  const { data } = await api("/api/repositories?sort=activity");
  const open = data.filter((repo) => repo.openSecurityAlerts > 0).sort((a, b) => b.openSecurityAlerts - a.openSecurityAlerts);
  const total = open.reduce((sum, repo) => sum + repo.openSecurityAlerts, 0);
  $("#alert-count").textContent = total ? String(total) : "";
  return { open, total };
}

loaders.security = async () => {
  const [{ open, total }, names] = await Promise.all([refreshAlertCount(), types()]);
  $("#security-open-total").textContent = total.toLocaleString();
  $("#security-repos").replaceChildren(...open.map((repo) => el("tr", { "data-repository": repo.repository },
    el("td", {}, repo.repository), el("td", { class: "num" }, String(repo.openSecurityAlerts)))));
  $("#security-repos-none").hidden = open.length > 0;
  const lists = await Promise.all(names.map((name) => api(`/api/webhooks/events?${new URLSearchParams({ event: name, limit: "20" })}`).then((b) => b.data)));
  const newest = lists.flat().sort((a, b) => b.id - a.id).slice(0, 30);
  $("#alerts").replaceChildren(...newest.map((event) => eventRow(event)));
  $("#alerts-none").hidden = newest.length > 0;
};

// A live `security-alert`: its row on top, and the counts again.
export function alertArrived(alert) {
  const row = eventRow({ id: 0, deliveryId: alert.deliveryId, receivedAt: alert.receivedAt, event: alert.eventType, action: alert.action,
    repository: alert.repository?.full_name, sender: alert.sender?.login, status: "pending" });
  row.classList.add("row-new");
  if (!$(`#alerts tr[data-delivery="${CSS.escape(alert.deliveryId)}"]`)) $("#alerts").prepend(row);
  $("#alerts-none").hidden = true;
  setTimeout(() => (!$("#security").hidden ? loaders.security() : refreshAlertCount()).catch(() => {}), 1000);
}
