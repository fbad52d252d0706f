// Drives the embedded dashboard in Debian's Chromium (playwright-core) against a
// running hookvault. Exits non-zero with a message on the first failed check.
//   HOOKVAULT_URL=… HOOKVAULT_SECRET=… [HOOKVAULT_TOKEN=…] node dashboard.mjs <screenshot dir>
import { execFileSync } from "node:child_process";
import { mkdirSync, readFileSync } from "node:fs";
import { apiJson, check, deliver, eventually, fixture, fixtureBytes, launch, noViolations, overlaps, post, sleep, token, url, weigh } from "./lib.mjs";

const shots = process.argv[2] || "screenshots";
mkdirSync(shots, { recursive: true });

const browser = await launch();
const problems = [];
const VIEWS = ["overview", "events", "stats", "failed", "rejected", "search", "security", "repos", "actions", "forwarding", "backfill"];
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 800 }, acceptDownloads: true });
  // Before the token is entered, the page's one call to learn the server's reason is
  // refused (Chromium logs that 401); any other console error is a problem.
  let asking = Boolean(token);
  page.on("console", (message) => {
    if (message.type() === "error" && !(asking && /status of 401/.test(message.text()))) problems.push(`console: ${message.text()}`);
  });
  page.on("pageerror", (error) => problems.push(`page error: ${error.message}`));
  page.on("request", (request) => {
    const target = request.url();
    if (!target.startsWith(url) && !target.startsWith("data:") && !target.startsWith("blob:")) problems.push(`request left the host: ${target}`);
  });
  const tab = (name) => page.click(`nav [role=tab][data-tab=${name}]`);

  // Something to show before the first load: a job and an issue.
  const jobId = await post("workflow_job", fixture("workflow_job", 1));
  const issueId = await post("issues", fixture("issues", 0));

  const weight = weigh(page);
  await page.goto(`${url}/`);
  check(page.url().endsWith("/dashboard"), `/ redirects to /dashboard (${page.url()})`);
  if (token) {
    await page.waitForSelector("#token-dialog[open]");
    check((await page.textContent("#token-why")).includes("API token"), "the dialog says why it asks");
    // Cancel closes the dialog; the button opens it again.
    await page.click("#token-cancel");
    await page.waitForSelector("#token-dialog:not([open])", { state: "attached" });
    await page.click("#token-button");
    await page.fill("#token-dialog input[name=token]", token);
    await page.click("#token-dialog button[type=submit]");
    await page.waitForLoadState("load");
    asking = false;
  }
  await page.waitForFunction(() => document.querySelector("#connection")?.textContent === "live");
  await page.waitForSelector(`#ov-rows tr[data-delivery="${issueId}"]`);
  await page.waitForLoadState("networkidle");
  const total = await weight(`${shots}/page-weight.txt`);
  check(total.gzip <= 300 * 1024, `first load ≤ 300 KB compressed (${total.gzip} B)`);

  // Overview: the landing view; its numbers are the statistics API's.
  check(await page.getAttribute("nav [data-tab=overview]", "aria-selected") === "true", "the overview is the landing view");
  async function overviewAgrees(when) {
    let seen;
    await eventually(`overview ${when} agrees with the statistics API: ${JSON.stringify(seen)}`, async () => {
      const { summary: s } = await apiJson("/api/webhooks/statistics?hours=24");
      const shown = await page.$$eval(["#ov-total", "#ov-success", "#ov-failed", "#ov-pending", "#ov-duplicates"].join(","), (n) => n.map((e) => e.textContent));
      const want = [s.totalEvents.toLocaleString("en-US"), `${s.successRate}%`, String(s.failedEvents), String(s.pendingEvents), String(s.duplicateEvents)];
      seen = { shown, want };
      return JSON.stringify(shown) === JSON.stringify(want);
    });
  }
  await overviewAgrees("at first");
  const health = await apiJson("/api/webhooks/health");
  check((await page.textContent("#ov-health")) === `${health.status} · ${health.healthScore}`, "overview health");

  // Events: new deliveries appear at the top without a reload.
  await tab("events");
  await page.waitForSelector(`#event-rows tr[data-delivery="${jobId}"]`);
  check(page.url().includes("view=events"), `the view is in the URL (${page.url()})`);
  const rawBytes = fixtureBytes("pull_request", 0);
  const prId = (await deliver("pull_request", rawBytes)).id;
  await page.waitForSelector(`#event-rows tr[data-delivery="${prId}"]`);
  check(await page.getAttribute("#event-rows tr:first-child", "data-delivery") === prId, "newest event on top");

  // The detail: payload, headers, Download raw (exact bytes), Copy as curl (re-sent: a duplicate).
  await page.click(`#event-rows tr[data-delivery="${prId}"]`);
  await page.waitForSelector("#event-dialog[open]");
  check((await page.textContent("#event-payload")).includes("\"pull_request\""), "payload shown");
  check((await page.textContent("#event-headers")).includes("x-github-event"), "headers shown");
  const [download] = await Promise.all([page.waitForEvent("download"), page.click("#event-download")]);
  const downloaded = readFileSync(await download.path());
  check(Buffer.compare(downloaded, rawBytes) === 0, `Download raw gives the exact bytes (${downloaded.length} vs ${rawBytes.length})`);
  await page.click("#curl summary");
  await page.fill("#curl-form input[name=secret]", process.env.HOOKVAULT_SECRET);
  await page.click("#curl-make");
  await page.waitForSelector("#curl-output:not([hidden])");
  const command = await page.textContent("#curl-output");
  check(command.includes("x-hub-signature-256: sha256=") && !command.includes(process.env.HOOKVAULT_SECRET), "signed, without the secret");
  const answer = JSON.parse(execFileSync("bash", ["-c", command], { encoding: "utf8", timeout: 20_000 }));
  check(answer.success && answer.data.status === "duplicate" && answer.data.deliveryId === prId, `the curl command is a duplicate: ${JSON.stringify(answer)}`);
  await page.click("#event-replay");
  await page.waitForFunction(() => document.querySelector("#event-action-result").textContent.startsWith("Replayed: processed"));
  check((await apiJson(`/api/webhooks/events/${prId}`)).attempts >= 2, "Replay processed it again");
  await noViolations(page, "the event detail");
  await page.screenshot({ path: `${shots}/detail-desktop.png` });
  await page.keyboard.press("Escape");

  // A filter is in the URL, survives a reload, and Back undoes it.
  await page.fill("#events-filter input[name=event]", "issues");
  await page.click("#events-filter button[type=submit]");
  await page.waitForFunction(() => new URLSearchParams(location.search).get("event") === "issues");
  await page.waitForSelector(`#event-rows tr[data-delivery="${issueId}"]`);
  await page.waitForSelector(`#event-rows tr[data-delivery="${jobId}"]`, { state: "detached" });
  await page.reload();
  await page.waitForSelector(`#event-rows tr[data-delivery="${issueId}"]`);
  check(await page.inputValue("#events-filter input[name=event]") === "issues", "the filter survives a reload");
  check((await page.$$("#event-rows tr")).length === 1, "still filtered after the reload");
  await page.goBack();
  await page.waitForSelector(`#event-rows tr[data-delivery="${jobId}"]`);
  check(await page.inputValue("#events-filter input[name=event]") === "", "Back restores the unfiltered list");
  await page.waitForFunction(() => document.querySelector("#connection")?.textContent === "live");

  // Paging: 50 more deliveries (the same issue event again and again: content
  // duplicates, dimmed); on page 2 a new delivery waits behind "show new" instead of
  // moving rows.
  await Promise.all(Array.from({ length: 50 }, () => post("issues", fixture("issues", 0))));
  await page.reload();
  await page.waitForFunction(() => /of 5\d events/.test(document.querySelector("#events-summary").textContent));
  check(await page.$("#event-rows tr.row-duplicate [data-status=duplicate]"), "duplicates are marked");
  await page.click("#events-older");
  await page.waitForFunction(() => new URLSearchParams(location.search).get("page") === "2");
  await page.waitForSelector(`#event-rows tr[data-delivery="${jobId}"]`);
  const lateId = await post("workflow_job", fixture("workflow_job", 2));
  await page.waitForSelector("#events-new:not([hidden])");
  check(await page.textContent("#events-new") === "Show 1 new event", "a new event waits on page 2");
  check(!(await page.$(`#event-rows tr[data-delivery="${lateId}"]`)), "page 2 keeps its rows");
  await page.click("#events-new");
  await page.waitForSelector(`#event-rows tr:first-child[data-delivery="${lateId}"]`);
  check(!new URLSearchParams(new URL(page.url()).search).get("page"), "back on the first page");
  // Scrolled down the first page, a new delivery waits too: the rows stay put.
  await page.evaluate(() => window.scrollTo(0, 900));
  const scrolled = await page.evaluate(() => window.scrollY);
  check(scrolled > 100, `the page scrolls (${scrolled})`);
  const lateId2 = await post("workflow_job", fixture("workflow_job", 0));
  await page.waitForSelector("#events-new:not([hidden])");
  check(await page.getAttribute("#event-rows tr:first-child", "data-delivery") === lateId, "the rows stay put");
  check(await page.evaluate(() => window.scrollY) === scrolled, "the reader's place is kept");
  await page.click("#events-new");
  await page.waitForSelector(`#event-rows tr:first-child[data-delivery="${lateId2}"]`);

  // Search shows highlighted hits, links readable (axe checks their contrast below).
  await tab("search");
  await page.fill("#search-form input[name=q]", "spelling");
  for (let attempt = 0; attempt < 40 && !(await page.$("#search-hits mark")); attempt++) {
    await page.press("#search-form input[name=q]", "Enter");
    await page.waitForTimeout(250);
  }
  await page.waitForSelector("#search-hits mark");
  check(/spelling/i.test(await page.textContent("#search-hits mark")), "matched word highlighted");
  await noViolations(page, "search hits");

  // A rejected delivery shows in the Rejected view.
  const forged = await deliver("push", fixture("push", 0), { key: "not-the-secret" });
  check(forged.status === 401, `a wrong signature is refused (${forged.status})`);
  await tab("rejected");
  await page.waitForSelector(`#rejected-rows tr[data-delivery="${forged.id}"]`, { timeout: 15_000 });
  check((await page.textContent(`#rejected-rows tr[data-delivery="${forged.id}"]`)).includes("signature_mismatch"), "the reason is shown");
  check(await page.$('#rejected-reasons tr[data-code="signature_mismatch"]'), "counted per reason");

  // A failed delivery is replayed from the Failed view and turns processed.
  const flaky = fixture("push", 0);
  flaky.fail_until_replay = true;
  const failedId = await post("push", flaky);
  await eventually("the delivery fails", async () => (await apiJson(`/api/webhooks/events/${failedId}`)).status === "failed");
  await tab("failed");
  const failedRow = `#failed-rows tr[data-delivery="${failedId}"]`;
  await page.waitForSelector(failedRow);
  await tab("overview");
  await overviewAgrees("with a failed event");
  check(await page.textContent("#ov-failed") !== "0", "the failure is counted");
  const failedCount = await page.textContent("#ov-failed");
  await page.click("#ov-failed");
  await page.waitForSelector(`#event-rows tr[data-delivery="${failedId}"].row-failed`);
  const listed = await page.textContent("#events-summary");
  check(listed.endsWith(`of ${failedCount} events`), `the list has as many as the overview counted (${listed}; ${failedCount})`);
  check(new URL(page.url()).searchParams.get("status") === "failed", "the failed count links to the failed events");
  // The list this visit asks for is held until the replay below has been answered,
  // as a list fetched just before a replay finished arrives: it must not bring the
  // replayed row back.
  let listFetched, replayAnswered, listDelivered;
  const fetched = new Promise((resolve) => { listFetched = resolve; });
  const replayed = new Promise((resolve) => { replayAnswered = resolve; });
  const delivered = new Promise((resolve) => { listDelivered = resolve; });
  page.on("response", (response) => { if (response.url().includes("/api/webhooks/replay/")) replayAnswered(); });
  await page.route((u) => u.pathname === "/api/webhooks/failed", async (route) => {
    const before = await route.fetch();
    listFetched();
    await replayed;
    await route.fulfill({ response: before });
    listDelivered();
  }, { times: 1 });
  await tab("failed");
  await fetched;
  await page.click(`${failedRow} button`);
  await delivered;
  await page.waitForSelector(failedRow, { state: "detached" });
  await page.waitForTimeout(500);
  check(!(await page.$(failedRow)), "a list fetched before the replay finished does not bring its row back");
  check((await apiJson(`/api/webhooks/events/${failedId}`)).status === "processed", "replayed event is processed");

  // Statistics agree with the API; a 7-day window has readable labels.
  await tab("stats");
  await page.waitForFunction(() => document.querySelector("#stat-total").textContent !== "–");
  const stats = await apiJson("/api/webhooks/statistics?hours=24");
  check(await page.textContent("#stat-total") === String(stats.summary.totalEvents), "total matches the API");
  check(await page.textContent("#stat-success") === `${stats.summary.successRate}%`, "success rate matches the API");
  check(await page.textContent("#stat-duplicates") === String(stats.summary.duplicateEvents), "duplicates match the API");
  const bars = await page.$$eval("#chart-types rect[data-label]", (rects) => rects.map((r) => [r.dataset.label, Number(r.dataset.value)]));
  check(JSON.stringify(bars) === JSON.stringify(stats.byEvent.map((e) => [e.event, e.total])), "per-type chart matches the API");
  // Every window, 1 hour to a year: bars per hour up to 7 days, per 6 hours up to 30, then per day.
  const bucketsOf = (h) => (h <= 168 ? h : h <= 720 ? h / 6 : h / 24);
  for (const hours of ["168", "1", "6", "720", "2160", "8760", "24"]) {
    await page.selectOption("#stats-window select", hours);
    await page.waitForFunction((h) => new URLSearchParams(location.search).get("hours") === h, hours);
    await page.waitForFunction((n) => document.querySelectorAll("#chart-hourly rect[data-label]").length === n, bucketsOf(Number(hours)));
    const sum = await page.$$eval("#chart-hourly rect[data-label]", (rects) => rects.reduce((s, r) => s + Number(r.dataset.value), 0));
    const windowed = await apiJson(`/api/webhooks/statistics?hours=${hours}`);
    check(sum === windowed.summary.totalEvents, `the ${hours} h chart adds up to the total (${sum})`);
    for (const labels of ["#chart-hourly text.x-label", "#chart-hourly text.y-label", "#chart-types text"]) {
      const { count, out } = await overlaps(page, labels);
      check(count >= 2 || labels.includes("types"), `${labels}: labels drawn in ${hours} h (${count})`);
      check(out.length === 0, `${hours} h: ${labels} do not overlap: ${out.join("; ")}`);
    }
    if (hours === "168") {
      // A bar's tooltip names its hour and count.
      const bar = await page.$("#chart-hourly rect[data-value]:not([data-value='0'])");
      await bar.hover();
      await page.waitForSelector("#chart-hourly .chart-tip:not([hidden])");
      check(/\d+ events?/.test(await page.textContent("#chart-hourly .chart-tip")), "the tooltip gives the count");
      await page.screenshot({ path: `${shots}/stats-7d-desktop.png`, fullPage: true });
    }
  }

  // Security: an alert shows live, and from stored state after a reload.
  await tab("security");
  const alertId = await post("dependabot_alert", fixture("dependabot_alert", 0));
  await page.waitForSelector(`#alerts tr[data-delivery="${alertId}"]`);
  await page.reload();
  await page.waitForSelector(`#alerts tr[data-delivery="${alertId}"]`);

  // Keyboard: arrow keys move between tabs.
  await page.focus("nav [data-tab=security]");
  await page.keyboard.press("ArrowRight");
  await page.waitForFunction(() => document.activeElement?.dataset.tab === "repos" && !document.querySelector("#repos").hidden);
  await page.waitForSelector("#repo-rows tr");
  await page.keyboard.press("Home");
  await page.waitForFunction(() => document.activeElement?.dataset.tab === "overview");

  // Every view: axe finds nothing serious, screenshots at desktop and phone widths.
  for (const [width, height, name] of [[1280, 800, "desktop"], [390, 844, "phone"]]) {
    await page.setViewportSize({ width, height });
    for (const view of VIEWS) {
      await tab(view);
      await page.waitForLoadState("networkidle");
      await sleep(150);
      await noViolations(page, `${view} at ${name} width`);
      await page.screenshot({ path: `${shots}/${view}-${name}.png`, fullPage: true });
    }
    const wide = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    check(wide <= 1, `no sideways scrolling at ${name} width (${wide} px)`);
  }

  check(problems.length === 0, problems.join("\n"));
  console.log("dashboard: all checks passed");
} catch (error) {
  console.error(problems.join("\n"));
  throw error;
} finally {
  await browser.close();
}
