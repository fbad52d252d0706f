// Drives the dashboard's Forwarding view in Debian's Chromium (playwright-core)
// against a running hookvault whose target TARGET refused the deliveries FAILED_IDS
// (its receiver takes everything now), beside a settings target SETTINGS_TARGET.
// Exits non-zero with a message on the first failed check.
//   HOOKVAULT_URL=… TARGET=… SETTINGS_TARGET=… FAILED_IDS=a,b DELIVERED=n RECEIVER_URL=…
//   node forwarding.mjs <screenshot dir>
import { check, launch } from "./lib.mjs";
import { readFileSync, mkdirSync } from "node:fs";
import { createRequire } from "node:module";

const url = process.env.HOOKVAULT_URL;
const name = process.env.TARGET;
const settingsName = process.env.SETTINGS_TARGET;
const [first, second] = process.env.FAILED_IDS.split(",");
const delivered = process.env.DELIVERED;
const receiverUrl = process.env.RECEIVER_URL;
const shots = process.argv[2] || "screenshots";
mkdirSync(shots, { recursive: true });
const axeSource = readFileSync(createRequire(import.meta.url).resolve("axe-core/axe.min.js"), "utf8");

async function apiJson(path) {
  return (await (await fetch(`${url}${path}`)).json()).data;
}
const row = (target) => `#target-rows tr[data-target="${target}"]`;
const cell = (target, field) => `${row(target)} td[data-field="${field}"]`;
let page;
async function waitText(selector, text) {
  await page.waitForFunction(([s, t]) => document.querySelector(s)?.textContent === t, [selector, text]);
}
async function noViolations(what) {
  // Evaluated, not a <script>: the dashboard's CSP rightly refuses inline scripts.
  if (!(await page.evaluate(() => "axe" in window))) await page.evaluate(axeSource);
  const violations = await page.evaluate(async () => (await window.axe.run(document)).violations
    .map((v) => `${v.id} (${v.impact}): ${v.help} — ${v.nodes.map((n) => n.target.join(" ")).join(", ")}`));
  check(violations.length === 0, `axe, ${what}:\n${violations.join("\n")}`);
}

const browser = await launch();
const problems = [];
const confirms = [];
try {
  page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  page.on("console", (message) => { if (message.type() === "error") problems.push(`console: ${message.text()}`); });
  page.on("pageerror", (error) => problems.push(`page error: ${error.message}`));
  page.on("dialog", (dialog) => { confirms.push(dialog.message()); dialog.accept(); });

  await page.goto(`${url}/dashboard`);
  await page.click("nav button[data-tab=forwarding]");

  // The list: both targets, with the counts the API has.
  await page.waitForSelector(row(name));
  await page.waitForSelector(row(settingsName));
  await waitText(cell(name, "failed"), "2");
  await waitText(cell(name, "delivered"), delivered);
  await waitText(cell(name, "backlog"), "0");
  await waitText(cell(name, "inFlight"), "0");
  const view = (await apiJson("/api/forwarding/targets")).find((t) => t.name === name);
  const stateText = await page.textContent(`${row(name)} [data-state]`);
  check(["healthy", "retrying", "circuit open"].includes(stateText), `state shown as text (${stateText})`);
  check((await page.getAttribute(`${row(name)} [data-state]`, "data-state")) === view.state, "state matches the API");
  const rowText = await page.textContent(row(name));
  check(rowText.includes(view.url) && rowText.includes("API") && rowText.includes("max attempts 1"), `url, source and filters shown (${rowText})`);
  check(rowText.includes("422"), `last error shown (${rowText})`);
  check((await page.textContent(row(settingsName))).includes("settings"), "the settings target says so");
  await waitText("#forward-failed-count", "2");

  // Its detail: recent attempts and the failed deliveries.
  await page.click(`${row(name)} button`);
  await page.waitForSelector(`#target-failed-rows tr[data-delivery="${first}"]`);
  await page.waitForSelector(`#target-failed-rows tr[data-delivery="${second}"]`);
  const attempt = await page.textContent(`#attempt-rows tr[data-delivery="${first}"]`);
  check(attempt.includes("422") && attempt.includes("answer 422") && attempt.includes(" ms"), `attempt shows status, answer, latency (${attempt})`);
  check((await page.textContent("#failed-summary")).includes("2 shown of 2"), "failed summary");
  const failedText = await page.textContent(`#target-failed-rows tr[data-delivery="${first}"]`);
  check(failedText.includes("422 · answered 422") && failedText.includes("answer 422") && !failedText.includes("[object"),
    `failed delivery shows its last attempt (${failedText})`);
  check(await page.$("#target-edit"), "an API target can be edited");
  await noViolations("a target with failed deliveries");
  await page.screenshot({ path: `${shots}/forwarding-failed.png`, fullPage: true });

  // Re-send one: it leaves the failed list once the target takes it.
  await page.click(`#target-failed-rows tr[data-delivery="${first}"] button`);
  await page.waitForFunction(() => /1 queued/.test(document.querySelector("#resend-result").textContent));
  await page.waitForSelector(`#target-failed-rows tr[data-delivery="${first}"]`, { state: "detached" });
  await waitText(cell(name, "failed"), "1");

  // Re-send all failed, after a confirmation.
  await page.click("#resend-all");
  check(confirms.some((m) => m.includes("Send all 1 failed")), `confirmation asked (${confirms})`);
  await page.waitForSelector(`#target-failed-rows tr[data-delivery="${second}"]`, { state: "detached" });
  await waitText(cell(name, "failed"), "0");
  await waitText("#failed-summary", "No failed deliveries.");
  await waitText("#forward-failed-count", "");
  check((await apiJson(`/api/forwarding/targets/${name}`)).failed === 0, "the API agrees: nothing failed");

  // A settings target is read-only.
  await page.click(`${row(settingsName)} button`);
  await page.waitForSelector(`[data-detail="${settingsName}"]`);
  check((await page.textContent("#target-detail")).includes("read-only"), "settings target is read-only");
  check(!(await page.$("#target-edit")), "no edit button for a settings target");

  // Create, edit and delete a target from the form.
  await page.click("#target-editor summary");
  await page.fill("#target-form [name=name]", "made-here");
  await page.fill("#target-form [name=url]", receiverUrl);
  await page.fill("#target-form [name=events]", "push, issues");
  await page.fill("#target-form [name=secret]", "s3cret-from-the-form");
  await page.click("#target-save");
  await page.waitForSelector(row("made-here"));
  let made = await apiJson("/api/forwarding/targets/made-here");
  check(made.hasSecret && made.events.join() === "push,issues" && made.source === "api", `created as filled in (${JSON.stringify(made)})`);
  await page.waitForSelector('[data-detail="made-here"]');
  await page.click("#target-edit");
  await page.fill("#target-form [name=repositories]", "octo-org/*");
  await page.check("#target-form [name=ordered]");
  await page.click("#target-save");
  await page.waitForFunction((s) => document.querySelector(s)?.textContent.includes("repositories: octo-org/*"), row("made-here"));
  made = await apiJson("/api/forwarding/targets/made-here");
  check(made.ordered && made.hasSecret && made.repositories.join() === "octo-org/*" && made.events.join() === "push,issues",
    `edited, secret kept (${JSON.stringify(made)})`);
  await page.click("#target-editor summary");
  await noViolations("the target form");
  await page.screenshot({ path: `${shots}/forwarding-form.png`, fullPage: true });
  await page.click("#target-delete");
  await page.waitForSelector(row("made-here"), { state: "detached" });
  check(confirms.some((m) => m.startsWith("Delete target made-here")), "delete asked for a confirmation");

  // Phone width.
  await page.setViewportSize({ width: 390, height: 844 });
  await page.click(`${row(name)} button`);
  await page.screenshot({ path: `${shots}/forwarding-phone.png`, fullPage: true });

  check(problems.length === 0, problems.join("\n"));
  console.log("forwarding: all checks passed");
} finally {
  await browser.close();
}
