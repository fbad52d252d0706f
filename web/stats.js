// The Statistics view: the statistics API over a window from 1 hour to a year, as
// cards, events over time and events per type.
import { $, api, loaders, shown } from "./common.js";
import { barList, hourlyPoints, timeChart } from "./charts.js";
import { navigate, viewParams } from "./router.js";

loaders.stats = async () => {
  const select = $("#stats-window select");
  const wanted = viewParams().get("hours");
  if (wanted && [...select.options].some((o) => o.value === wanted)) select.value = wanted;
  const hours = select.value;
  const { data } = await api(`/api/webhooks/statistics?hours=${hours}`);
  const s = data.summary;
  $("#stat-total").textContent = s.totalEvents;
  $("#stat-success").textContent = shown(s.successRate, "%");
  $("#stat-failed").textContent = shown(s.failedEvents);
  $("#stat-pending").textContent = shown(s.pendingEvents);
  $("#stat-duplicates").textContent = shown(s.duplicateEvents);
  $("#stat-avg").textContent = shown(s.avgProcessingTimeMs, " ms");
  $("#stat-p95").textContent = data.processingTimeMs.p95 === null ? "–" : `≤ ${data.processingTimeMs.p95} ms`;
  const { points, bucketMs } = hourlyPoints(data.hourly);
  $("#chart-hourly-title").textContent = `Events per ${bucketMs === 3_600_000 ? "hour" : bucketMs === 86_400_000 ? "day" : `${bucketMs / 3_600_000} hours`}`;
  timeChart($("#chart-hourly"), points, { bucketMs });
  barList($("#chart-types"), data.byEvent.map((e) => ({ label: e.event, value: e.total, failed: e.failed })));
};
$("#stats-window").addEventListener("change", () => navigate("stats", { hours: $("#stats-window select").value }));
