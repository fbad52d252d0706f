// The dashboard with a token limited to one organization (HOOKVAULT_TOKEN, for
// octo-org): the events table and the statistics show only its events, and the views
// about the whole instance (Forwarding, Backfill, Rejected) say plainly that the token may not
// use them, with no page error. The events are posted by the test before this runs:
// HOOKVAULT_MINE and HOOKVAULT_OTHERS hold their delivery ids, comma-separated.
//   HOOKVAULT_URL=… HOOKVAULT_TOKEN=… HOOKVAULT_MINE=… HOOKVAULT_OTHERS=… node scoped.mjs <screenshot dir>
import { check, launch } from "./lib.mjs";
import { mkdirSync } from "node:fs";

const url = process.env.HOOKVAULT_URL;
const token = process.env.HOOKVAULT_TOKEN;
const mine = process.env.HOOKVAULT_MINE.split(",");
const others = process.env.HOOKVAULT_OTHERS.split(",");
const shots = process.argv[2] || "screenshots";
mkdirSync(shots, { recursive: true });

const browser = await launch();
const problems = [];
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
  page.on("pageerror", (error) => problems.push(`page error: ${error.message}`));
  await page.addInitScript((t) => localStorage.setItem("hookvault-token", t), token);
  await page.goto(`${url}/dashboard`);
  await page.waitForFunction(() => document.querySelector("#connection")?.textContent === "live");
  const tab = (name) => page.click(`nav [role=tab][data-tab=${name}]`);
  await tab("events");
  for (const id of mine) await page.waitForSelector(`#event-rows tr[data-delivery="${id}"]`);
  for (const id of others) check(!(await page.$(`#event-rows tr[data-delivery="${id}"]`)), `${id} of another organization is not listed`);

  await tab("stats");
  await page.waitForFunction((n) => document.querySelector("#stat-total").textContent === String(n), mine.length);
  check((await page.textContent("#stat-failed")) === "–", "statuses are not counted per repository: shown as –");

  for (const [view, message] of [["forwarding", "#forward-error"], ["backfill", "#backfill-error"], ["rejected", "#rejected-error"]]) {
    await tab(view);
    await page.waitForFunction((m) => /this token/.test(document.querySelector(m).textContent), message);
  }
  await page.screenshot({ path: `${shots}/forwarding-refused.png` });
  await tab("repos");
  await page.waitForSelector("#repo-rows tr");
  const repositories = await page.$$eval("#repo-rows tr td:first-child", (cells) => cells.map((c) => c.textContent));
  check(repositories.every((r) => r.toLowerCase().startsWith("octo-org/")), `only its repositories: ${repositories}`);

  check(problems.length === 0, problems.join("\n"));
  console.log("scoped dashboard: all checks passed");
} finally {
  await browser.close();
}
