// What the dashboard's browser checks share: checks, signed deliveries, the API,
// axe-core, screenshots at two widths, and the page's weight.
import { chromium } from "playwright-core";
import { createHmac, randomUUID } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";
import { gzipSync } from "node:zlib";

export const url = process.env.HOOKVAULT_URL;
export const secret = process.env.HOOKVAULT_SECRET;
export const token = process.env.HOOKVAULT_TOKEN;
const fixtures = fileURLToPath(new URL("../../fixtures/", import.meta.url));
const axeSource = readFileSync(createRequire(import.meta.url).resolve("axe-core/axe.min.js"), "utf8");

export function check(condition, message) {
  if (!condition) throw new Error(`check failed: ${message}`);
}
// Debian's Chromium, through playwright-core.
export function launch() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    args: ["--no-sandbox", "--disable-background-networking", "--disable-gpu", "--disable-component-update", "--no-first-run"],
  });
}
export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
export const fixtureBytes = (event, n) => readFileSync(`${fixtures}${event}/${n}.json`);
export const fixture = (event, n) => JSON.parse(fixtureBytes(event, n).toString("utf8"));

// Posts `body` (bytes or an object) signed with `key`; returns the delivery id and answer.
export async function deliver(event, body, { key = secret, id = randomUUID() } = {}) {
  const bytes = Buffer.isBuffer(body) ? body : Buffer.from(JSON.stringify(body));
  const response = await fetch(`${url}/api/webhooks/github`, {
    method: "POST", body: bytes,
    headers: { "content-type": "application/json", "x-github-event": event, "x-github-delivery": id,
      "user-agent": "GitHub-Hookshot/browser-test",
      "x-hub-signature-256": "sha256=" + createHmac("sha256", key).update(bytes).digest("hex") },
  });
  return { id, status: response.status, body: await response.json() };
}
export async function post(event, payload) {
  const { id, status } = await deliver(event, payload);
  check(status === 200, `delivery accepted (${status})`);
  return id;
}
export async function apiJson(path) {
  const response = await fetch(`${url}${path}`, token ? { headers: { authorization: `Bearer ${token}` } } : {});
  return (await response.json()).data;
}
// Polls `probe` until it returns a truthy value (about 10 s).
export async function eventually(what, probe, tries = 100) {
  let last;
  for (let i = 0; i < tries; i++) {
    last = await probe();
    if (last) return last;
    await sleep(100);
  }
  check(false, what);
}

export async function noViolations(page, what) {
  if (!(await page.evaluate(() => "axe" in window))) await page.evaluate(axeSource);
  const violations = await page.evaluate(async () => (await window.axe.run(document, { resultTypes: ["violations"] })).violations
    .filter((v) => v.impact === "serious" || v.impact === "critical")
    .map((v) => `${v.id} (${v.impact}): ${v.nodes.slice(0, 3).map((n) => n.target.join(" ")).join(", ")}`));
  check(violations.length === 0, `axe, ${what}:\n${violations.join("\n")}`);
}

// Boxes of the elements matching `selector` that overlap one another, or that stick
// out of the chart (the SVG) they are drawn in, where they would be cut off.
export async function overlaps(page, selector) {
  return page.$$eval(selector, (nodes) => {
    const boxes = nodes.map((n) => [n.textContent, n.getBoundingClientRect()]);
    const out = [];
    for (const node of nodes) {
      const box = node.getBoundingClientRect();
      const chart = node.ownerSVGElement?.getBoundingClientRect();
      if (chart && (box.left < chart.left - 0.5 || box.right > chart.right + 0.5)) out.push(`"${node.textContent}" cut off at the edge`);
    }
    for (let i = 0; i < boxes.length; i++) {
      for (let j = i + 1; j < boxes.length; j++) {
        const [ta, a] = boxes[i];
        const [tb, b] = boxes[j];
        if (a.left < b.right && b.left < a.right && a.top < b.bottom && b.top < a.bottom) out.push(`"${ta}" and "${tb}"`);
      }
    }
    return { count: boxes.length, out };
  });
}

// Every response of the first load: bytes as sent and gzipped; written to `file`.
export function weigh(page) {
  const responses = [];
  const listener = (response) => responses.push(response);
  page.on("response", listener);
  return async (file) => {
    page.off("response", listener);
    const rows = [];
    for (const response of responses) {
      const body = await response.body().catch(() => Buffer.alloc(0));
      rows.push({ path: new URL(response.url()).pathname, bytes: body.length, gzip: gzipSync(body, { level: 9 }).length });
    }
    const total = rows.reduce((t, r) => ({ bytes: t.bytes + r.bytes, gzip: t.gzip + r.gzip }), { bytes: 0, gzip: 0 });
    const text = rows.map((r) => `${String(r.bytes).padStart(8)} ${String(r.gzip).padStart(8)}  ${r.path}`).join("\n") +
      `\n${String(total.bytes).padStart(8)} ${String(total.gzip).padStart(8)}  first load in total (bytes, gzip -9)\n`;
    writeFileSync(file, text);
    console.log(text);
    return total;
  };
}
