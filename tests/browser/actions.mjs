// Drives the dashboard's Actions view in Debian's Chromium (playwright-core) against a
// running hookvault that already holds job deliveries. The view must show what
// /api/actions/* reports (the queue oldest first, starved label sets, per-job
// insights, slowest and flakiest); a job queued while the view is open must appear
// without a reload, and leave the queue when it starts; axe must find nothing.
// Exits non-zero with a message on the first failed check.
//   HOOKVAULT_URL=… HOOKVAULT_SECRET=… LIVE_JOB=<job id> node actions.mjs <screenshot dir>
import { check, launch } from "./lib.mjs";
import { createHmac, randomUUID } from "node:crypto";
import { readFileSync, mkdirSync } from "node:fs";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";

const url = process.env.HOOKVAULT_URL;
const secret = process.env.HOOKVAULT_SECRET;
const liveJob = Number(process.env.LIVE_JOB);
const shots = process.argv[2] || "screenshots";
const fixtures = fileURLToPath(new URL("../../fixtures/", import.meta.url));
mkdirSync(shots, { recursive: true });
const axeSource = readFileSync(createRequire(import.meta.url).resolve("axe-core/axe.min.js"), "utf8");

const same = (a, b) => JSON.stringify(a) === JSON.stringify(b);
async function post(event, payload) {
  const body = JSON.stringify(payload);
  const response = await fetch(`${url}/api/webhooks/github`, {
    method: "POST", body,
    headers: { "content-type": "application/json", "x-github-event": event, "x-github-delivery": randomUUID(),
      "user-agent": "GitHub-Hookshot/browser-test",
      "x-hub-signature-256": "sha256=" + createHmac("sha256", secret).update(body).digest("hex") },
  });
  check(response.ok, `delivery accepted (${response.status})`);
}
async function api(path) {
  return (await (await fetch(`${url}${path}`)).json()).data;
}
// A real job delivery (fixtures/workflow_job/2.json) for LIVE_JOB, on ARM runners.
function liveDelivery(action, createdAt, startedAt) {
  const payload = JSON.parse(readFileSync(`${fixtures}workflow_job/2.json`, "utf8"));
  payload.action = action;
  Object.assign(payload.workflow_job, { id: liveJob, run_id: liveJob, run_attempt: 1, name: "release", workflow_name: "CI",
    labels: ["self-hosted", "arm64"], status: action, conclusion: null, created_at: createdAt, started_at: startedAt,
    completed_at: null, runner_name: action === "in_progress" ? "arm-1" : null, runner_group_name: action === "in_progress" ? "Default" : null });
  return payload;
}

let page;
const attrs = (selector, name) => page.$$eval(selector, (nodes, a) => nodes.map((n) => n.getAttribute(a)), name);
async function noViolations(what) {
  if (!(await page.evaluate(() => "axe" in window))) await page.evaluate(axeSource);
  const violations = await page.evaluate(async () => (await window.axe.run(document)).violations
    .map((v) => `${v.id} (${v.impact}): ${v.help} — ${v.nodes.map((n) => n.target.join(" ")).join(", ")}`));
  check(violations.length === 0, `axe, ${what}:\n${violations.join("\n")}`);
}
const groupName = (g) => `${g.job} · ${g.labels || "no labels"}`;

const browser = await launch();
const problems = [];
try {
  page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  page.on("console", (message) => { if (message.type() === "error") problems.push(`console: ${message.text()}`); });
  page.on("pageerror", (error) => problems.push(`page error: ${error.message}`));

  await page.goto(`${url}/dashboard`);
  await page.click("nav button[data-tab=actions]");
  await page.waitForSelector("#actions[data-refreshed]");
  await page.waitForFunction(() => document.querySelector("#actions-live")?.textContent.startsWith("Live"));

  // The queue, oldest first, as the API reports it.
  const queue = await api("/api/actions/queue");
  check(queue.jobs.length === 2, `two jobs queued (${JSON.stringify(queue)})`);
  check(same(await attrs("#actions-queue-rows tr", "data-job"), queue.jobs.map((j) => String(j.jobId))),
    `queue rows in the API's order (${JSON.stringify(queue.jobs.map((j) => j.jobId))})`);
  check(await page.textContent("#actions-queued") === String(queue.queued), "queued count");
  const firstWait = await page.textContent("#actions-queue-rows tr:first-child td[data-wait]");
  check(/^\d+ h( \d+ min)?$/.test(firstWait) && queue.jobs[0].waitSeconds >= 3600, `the oldest has waited hours (${firstWait})`);
  // Starved: the label sets with jobs queued and none running.
  const starved = queue.byLabels.filter((l) => l.starved).map((l) => l.labels);
  check(same(starved, ["gpu,self-hosted"]), `the GPU label set is starved (${JSON.stringify(queue.byLabels)})`);
  check(same(await attrs("#actions-starved li", "data-labels"), starved), "starved label sets listed");
  check(same(await attrs("#actions-label-rows tr", "data-labels"), queue.byLabels.map((l) => l.labels)), "every label set listed");
  check(await page.textContent("#actions-running") === String((await api("/api/actions/runners")).inProgress), "in progress count");

  // Insights of the last 24 h, as the API reports them.
  const insights = await api("/api/actions/insights?hours=24");
  check(insights.totals.count === 4 && insights.totals.flaky === 1, `four completed, one flaky (${JSON.stringify(insights.totals)})`);
  check(await page.textContent("#actions-completed") === String(insights.totals.count), "completed count");
  check(await page.textContent("#actions-flaky") === String(insights.totals.flaky), "flaky count");
  check(same(await attrs("#actions-group-rows tr", "data-group"), insights.groups.map(groupName)), "every job and label set");
  check(same(await attrs("#actions-slowest-rows tr", "data-group"), insights.slowest.map(groupName)), "slowest jobs");
  check(insights.slowest[0].job === "build", `build is the slowest (${insights.slowest.map(groupName)})`);
  check(same(await attrs("#actions-flakiest-rows tr", "data-group"), insights.flakiest.map(groupName)), "flakiest jobs");
  check(same(insights.flakiest.map((g) => g.job), ["test"]), "test is the flaky one");
  for (const [chart, kind] of [["#actions-chart-queue", "queueSeconds"], ["#actions-chart-run", "runSeconds"]]) {
    const drawn = await attrs(`${chart} rect.p95`, "data-p95");
    const timed = insights.groups.filter((g) => g[kind].count > 0);
    check(same(drawn, timed.map((g) => String(g[kind].p95))), `${chart}: one bar per timed job, its p95 (${drawn})`);
    check(same(await attrs(`${chart} rect.p50`, "data-group"), timed.map(groupName)), `${chart}: bars named by job`);
  }
  await noViolations("the Actions view");
  await page.screenshot({ path: `${shots}/actions.png`, fullPage: true });

  // A job queued now appears without a reload, last (the newest), and its label set
  // is starved; once it starts it leaves the queue and the set is served.
  await page.evaluate(() => { window.notReloaded = true; });
  const now = new Date().toISOString().replace(/\.\d+Z$/, "Z");
  await post("workflow_job", liveDelivery("queued", now, now));
  await page.waitForSelector(`#actions-queue-rows tr[data-job="${liveJob}"]`);
  check((await attrs("#actions-queue-rows tr", "data-job")).at(-1) === String(liveJob), "the new job is the newest in the queue");
  await page.waitForSelector('#actions-starved li[data-labels="arm64,self-hosted"]');
  check(await page.textContent("#actions-queued") === "3", "three queued");
  await post("workflow_job", liveDelivery("in_progress", now, new Date().toISOString().replace(/\.\d+Z$/, "Z")));
  await page.waitForSelector(`#actions-queue-rows tr[data-job="${liveJob}"]`, { state: "detached" });
  await page.waitForSelector('#actions-starved li[data-labels="arm64,self-hosted"]', { state: "detached" });
  check(await page.evaluate(() => window.notReloaded === true), "the page was not reloaded");
  check(same(await attrs("#actions-queue-rows tr", "data-job"), (await api("/api/actions/queue")).jobs.map((j) => String(j.jobId))),
    "the queue as the API has it");
  await noViolations("after the live updates");
  await page.screenshot({ path: `${shots}/actions-live.png`, fullPage: true });
  check(problems.length === 0, problems.join("\n"));
  console.log("all checks passed");
} finally {
  await browser.close();
}
