// Drives the embedded dashboard in Debian's Chromium (playwright-core) against a
// running hookvault. Exits non-zero with a message on the first failed check.
//   HOOKVAULT_URL=… HOOKVAULT_SECRET=… [HOOKVAULT_TOKEN=…] node dashboard.mjs <screenshot dir>
import { check, launch } from "./browser.mjs";
import { createHmac, randomUUID } from "node:crypto";
import { readFileSync, mkdirSync } from "node:fs";
import { fileURLToPath } from "node:url";

const url = process.env.HOOKVAULT_URL;
const secret = process.env.HOOKVAULT_SECRET;
const token = process.env.HOOKVAULT_TOKEN;
const shots = process.argv[2] || "screenshots";
const fixtures = fileURLToPath(new URL("../../fixtures/", import.meta.url));
mkdirSync(shots, { recursive: true });

async function post(event, payload) {
  const body = JSON.stringify(payload);
  const id = randomUUID();
  const response = await fetch(`${url}/api/webhooks/github`, {
    method: "POST", body,
    headers: { "content-type": "application/json", "x-github-event": event, "x-github-delivery": id,
      "user-agent": "GitHub-Hookshot/browser-test",
      "x-hub-signature-256": "sha256=" + createHmac("sha256", secret).update(body).digest("hex") },
  });
  check(response.ok, `delivery accepted (${response.status})`);
  return id;
}
const fixture = (event, n) => JSON.parse(readFileSync(`${fixtures}${event}/${n}.json`, "utf8"));
async function apiJson(path) {
  const response = await fetch(`${url}${path}`, token ? { headers: { authorization: `Bearer ${token}` } } : {});
  return (await response.json()).data;
}

const browser = await launch();
const problems = [];
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
  page.on("console", (message) => { if (message.type() === "error") problems.push(`console: ${message.text()}`); });
  page.on("pageerror", (error) => problems.push(`page error: ${error.message}`));
  page.on("request", (request) => {
    const target = request.url();
    if (!target.startsWith(url) && !target.startsWith("data:")) problems.push(`request left the host: ${target}`);
  });

  await page.goto(`${url}/`);
  check(page.url().endsWith("/dashboard"), `/ redirects to /dashboard (${page.url()})`);
  if (token) {
    await page.waitForSelector("#token-dialog[open]");
    await page.fill("#token-dialog input[name=token]", token);
    await page.click("#token-dialog button[type=submit]");
    await page.waitForLoadState("load");
  }
  await page.waitForFunction(() => document.querySelector("#connection")?.textContent === "live");

  // The health badge shows the status and score the health API reports. The page
  // reads health every 10 s and after a failed event or a replay: up to 30 s to agree.
  async function badgeShowsHealth(when) {
    let health, text, style;
    for (let attempt = 0; attempt < 300; attempt++) {
      health = await apiJson("/api/webhooks/health");
      text = await page.textContent("#health");
      style = await page.getAttribute("#health", "class");
      if (text === `${health.status} · ${health.healthScore}` && style === `badge ${health.status}`) return health;
      await new Promise((r) => setTimeout(r, 100));
    }
    check(false, `health badge ${when} shows "${text}" (${style}); the API says ${health.status} · ${health.healthScore}`);
  }

  // Live: deliveries appear without a reload, newest on top.
  const jobId = await post("workflow_job", fixture("workflow_job", 1));
  const issueId = await post("issues", fixture("issues", 0));
  await page.waitForSelector(`#live-rows tr[data-delivery="${issueId}"]`);
  await page.waitForSelector(`#live-rows tr[data-delivery="${jobId}"]`);
  const first = await page.getAttribute("#live-rows tr:first-child", "data-delivery");
  check(first === issueId, "newest event on top");
  await page.waitForSelector(`#live-rows tr[data-delivery="${issueId}"] [data-status="processed"]`);

  // Opening one shows its payload and headers.
  await page.click(`#live-rows tr[data-delivery="${jobId}"]`);
  await page.waitForSelector("#event-dialog[open]");
  const payloadText = await page.textContent("#event-payload");
  check(payloadText.includes("\"workflow_job\"") && payloadText.includes("linters"), "payload shown");
  check((await page.textContent("#event-headers")).includes("x-github-event"), "headers shown");
  await page.screenshot({ path: `${shots}/event-desktop.png` });
  await page.keyboard.press("Escape");

  // Search shows highlighted hits.
  await page.click("nav button[data-tab=search]");
  await page.fill("#search-form input[name=q]", "spelling");
  // The index commits about every half second: search again until the new delivery
  // is in, as a person would.
  for (let attempt = 0; attempt < 40 && !(await page.$("#search-hits mark")); attempt++) {
    await page.press("#search-form input[name=q]", "Enter");
    await page.waitForTimeout(250);
  }
  await page.waitForSelector("#search-hits mark");
  check(/spelling/i.test(await page.textContent("#search-hits mark")), "matched word highlighted");
  await page.screenshot({ path: `${shots}/search-desktop.png` });

  // A failed delivery is replayed from the Failed tab and turns processed.
  const flaky = fixture("push", 0);
  flaky.fail_until_replay = true;
  const failedId = await post("push", flaky);
  for (let i = 0; i < 100 && (await apiJson(`/api/webhooks/events/${failedId}`)).status !== "failed"; i++) {
    await new Promise((r) => setTimeout(r, 50));
  }
  await page.click("nav button[data-tab=failed]");
  const failedRow = `#failed-rows tr[data-delivery="${failedId}"]`;
  await page.waitForSelector(failedRow);
  const failing = await badgeShowsHealth("with a failed event");
  check(failing.healthScore < 100, `a failed event lowers the health score (${failing.healthScore})`);
  await page.screenshot({ path: `${shots}/failed-desktop.png` });
  await page.click(`${failedRow} button`);
  await page.waitForSelector(failedRow, { state: "detached" });
  check((await apiJson(`/api/webhooks/events/${failedId}`)).status === "processed", "replayed event is processed");
  await page.click("nav button[data-tab=live]");
  await page.waitForSelector(`#live-rows tr[data-delivery="${failedId}"] [data-status="processed"]`);

  // Statistics agree with the API.
  await page.click("nav button[data-tab=stats]");
  await page.waitForFunction(() => document.querySelector("#stat-total").textContent !== "–");
  const stats = await apiJson("/api/webhooks/statistics?hours=24");
  check(await page.textContent("#stat-total") === String(stats.summary.totalEvents), "total matches the API");
  check(await page.textContent("#stat-success") === `${stats.summary.successRate}%`, "success rate matches the API");
  check(await page.textContent("#stat-failed") === String(stats.summary.failedEvents), "failed matches the API");
  const bars = await page.$$eval("#chart-types rect[data-label]", (rects) => rects.map((r) => [r.dataset.label, Number(r.dataset.value)]));
  check(JSON.stringify(bars) === JSON.stringify(stats.byEvent.map((e) => [e.event, e.total])), "per-type chart matches the API");
  const hourly = await page.$$eval("#chart-hourly rect[data-label]", (rects) => rects.reduce((sum, r) => sum + Number(r.dataset.value), 0));
  check(hourly === stats.summary.totalEvents, "hourly chart adds up to the total");
  await page.screenshot({ path: `${shots}/stats-desktop.png` });

  // Repositories, security alerts.
  await post("dependabot_alert", fixture("dependabot_alert", 0));
  await page.click("nav button[data-tab=security]");
  await page.waitForSelector("#alerts li");
  check((await page.textContent("#alerts li")).includes("dependabot_alert"), "security alert shown live");
  await page.click("nav button[data-tab=repos]");
  await page.waitForSelector("#repo-rows tr");
  await badgeShowsHealth("at the end");

  // Phone width.
  await page.setViewportSize({ width: 390, height: 844 });
  await page.click("nav button[data-tab=live]");
  await page.screenshot({ path: `${shots}/live-phone.png`, fullPage: true });
  await page.setViewportSize({ width: 1280, height: 800 });
  await page.screenshot({ path: `${shots}/live-desktop.png` });

  check(problems.length === 0, problems.join("\n"));
  console.log("dashboard: all checks passed");
} finally {
  await browser.close();
}
