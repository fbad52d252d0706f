// Drives the dashboard's Backfill view in Debian's Chromium (playwright-core) against
// a running hookvault whose backfill reads a fake GitHub delivery log in which the
// deliveries MISSING_IDS were never stored. A dry run lists them and changes nothing;
// "Backfill now" has GitHub redeliver them and shows them arrived. Exits non-zero
// with a message on the first failed check.
//   HOOKVAULT_URL=… HOOK=repo:owner/name:id MISSING_IDS=a,b,c CHECKED=n node backfill.mjs <screenshot dir>
import { check, launch } from "./lib.mjs";
import { readFileSync, mkdirSync } from "node:fs";
import { createRequire } from "node:module";

const url = process.env.HOOKVAULT_URL;
const hook = process.env.HOOK;
const missingIds = process.env.MISSING_IDS.split(",");
const checked = process.env.CHECKED;
const shots = process.argv[2] || "screenshots";
mkdirSync(shots, { recursive: true });
const axeSource = readFileSync(createRequire(import.meta.url).resolve("axe-core/axe.min.js"), "utf8");

const field = (name) => `#backfill-last tr[data-field="${name}"] td`;
let page;
async function waitText(selector, text) {
  await page.waitForFunction(([s, t]) => document.querySelector(s)?.textContent === t, [selector, text]);
}
async function stored() {
  return (await (await fetch(`${url}/api/webhooks/events?limit=1`)).json()).pagination.total;
}
async function noViolations(what) {
  if (!(await page.evaluate(() => "axe" in window))) await page.evaluate(axeSource);
  const violations = await page.evaluate(async () => (await window.axe.run(document)).violations
    .map((v) => `${v.id} (${v.impact}): ${v.help} — ${v.nodes.map((n) => n.target.join(" ")).join(", ")}`));
  check(violations.length === 0, `axe, ${what}:\n${violations.join("\n")}`);
}

const browser = await launch();
const problems = [];
try {
  page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  page.on("console", (message) => { if (message.type() === "error") problems.push(`console: ${message.text()}`); });
  page.on("pageerror", (error) => problems.push(`page error: ${error.message}`));

  await page.goto(`${url}/dashboard`);
  await page.click("nav button[data-tab=backfill]");
  await page.waitForFunction((h) => document.querySelector("#backfill-config")?.textContent.includes(h), hook);
  const config = await page.textContent("#backfill-config");
  check(config.startsWith("On (token;"), `the setting is shown, never the token (${config})`);
  check((await page.textContent("#backfill-last")).includes("No run yet."), "no run yet");
  await noViolations("before a run");

  // A dry run lists exactly the missing ids and stores nothing.
  const before = await stored();
  await page.click("#backfill-check");
  await waitText(field("dryRun"), "true");
  await waitText(field("checked"), checked);
  await waitText(field("missing"), String(missingIds.length));
  await waitText(field("requested"), "0");
  const listed = (await page.textContent(field("missingIds"))).split(", ").sort();
  check(JSON.stringify(listed) === JSON.stringify([...missingIds].sort()), `missing ids listed (${listed})`);
  check((await stored()) === before, "a dry run stores nothing");
  await page.screenshot({ path: `${shots}/backfill-dry-run.png`, fullPage: true });

  // The real run: GitHub redelivers them, and they arrive.
  await page.click("#backfill-run");
  await waitText(field("dryRun"), "false");
  await waitText(field("requested"), String(missingIds.length));
  await waitText(field("confirmed"), String(missingIds.length));
  check((await stored()) === before + missingIds.length, "the missing deliveries are stored");
  check(await page.isEnabled("#backfill-run"), "buttons enabled again after the run");
  await noViolations("after a run");
  await page.screenshot({ path: `${shots}/backfill-run.png`, fullPage: true });
  check(problems.length === 0, problems.join("\n"));
  console.log("all checks passed");
} finally {
  await browser.close();
}
