// The dashboard opened from another machine (requests carry X-Forwarded-For, so the
// server does not treat them as local) of a hookvault whose API token is the one
// generated into its data directory: the page explains the 401 in the server's
// words, Cancel closes the dialog, a wrong token is said to be wrong, the right one
// lets the page in. Also: the HMAC fallback for pages without WebCrypto agrees with
// WebCrypto.
//   HOOKVAULT_URL=… HOOKVAULT_TOKEN=… node remote.mjs <screenshot dir>
import { mkdirSync } from "node:fs";
import { check, launch, noViolations, token, url } from "./lib.mjs";

const shots = process.argv[2] || "screenshots";
mkdirSync(shots, { recursive: true });
const browser = await launch();
try {
  const context = await browser.newContext({ extraHTTPHeaders: { "x-forwarded-for": "192.0.2.7" }, viewport: { width: 1280, height: 800 } });
  const page = await context.newPage();
  await page.goto(`${url}/dashboard`);
  await page.waitForSelector("#token-dialog[open]");
  const why = await page.textContent("#token-why");
  check(why.includes("api-token") && why.includes("data directory"), `the dialog gives the server's reason: ${why}`);
  await noViolations(page, "the token dialog");
  await page.screenshot({ path: `${shots}/token-dialog-desktop.png` });
  await page.click("#token-cancel");
  await page.waitForSelector("#token-dialog:not([open])", { state: "attached" });

  // A wrong token: said to be refused.
  await page.click("#token-button");
  await page.fill("#token-dialog input[name=token]", "not-the-token-0123456789");
  await page.click("#token-dialog button[type=submit]");
  await page.waitForLoadState("load");
  await page.waitForSelector("#token-dialog[open] #token-wrong:not([hidden])");

  // The right one lets the page in.
  await page.fill("#token-dialog input[name=token]", token);
  await page.click("#token-dialog button[type=submit]");
  await page.waitForLoadState("load");
  await page.waitForFunction(() => document.querySelector("#connection")?.textContent === "live");
  await page.waitForFunction(() => document.querySelector("#ov-total")?.textContent !== "–");
  check(!(await page.$("#token-dialog[open]")), "no dialog once the token is right");

  // hmac.js without WebCrypto computes what WebCrypto does.
  const same = await page.evaluate(async () => {
    const { hmacSha256Hex } = await import("/dashboard/assets/hmac.js");
    const bytes = new TextEncoder().encode('{"zen":"Keep it logically awesome.","é":1}'.repeat(50));
    const viaWebCrypto = await hmacSha256Hex("a secret", bytes);
    const subtle = Object.getOwnPropertyDescriptor(Crypto.prototype, "subtle");
    Object.defineProperty(Crypto.prototype, "subtle", { get: () => undefined, configurable: true });
    const viaFallback = await hmacSha256Hex("a secret", bytes);
    Object.defineProperty(Crypto.prototype, "subtle", subtle);
    return viaWebCrypto === viaFallback && viaWebCrypto.length === 64;
  });
  check(same, "the HMAC fallback agrees with WebCrypto");
  console.log("remote: all checks passed");
} finally {
  await browser.close();
}
