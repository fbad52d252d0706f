// What every browser script shares: Debian's Chromium through playwright-core, and
// the check that ends a script with a message on the first failure.
import { chromium } from "playwright-core";

export function check(condition, message) {
  if (!condition) throw new Error(`check failed: ${message}`);
}

export function launch() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    args: ["--no-sandbox", "--disable-background-networking", "--disable-gpu", "--disable-component-update", "--no-first-run"],
  });
}
