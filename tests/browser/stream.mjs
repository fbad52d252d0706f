// The Overview's NATS stream card against health: the stream's lag and whether the
// sink is connected, with NATS's own complaint when it is not; axe finds nothing.
//   HOOKVAULT_URL=… EXPECT_LAG=n EXPECT_CONNECTED=true|false node stream.mjs <screenshot dir>
import { mkdirSync } from "node:fs";
import { apiJson, check, launch, noViolations, url } from "./lib.mjs";

const shots = process.argv[2] || "screenshots";
mkdirSync(shots, { recursive: true });
const lag = Number(process.env.EXPECT_LAG);
const connected = process.env.EXPECT_CONNECTED === "true";
const browser = await launch();
try {
  const stream = (await apiJson("/api/webhooks/health")).stream;
  check(stream.lag === lag && stream.connected === connected, `health as the test set it up: ${JSON.stringify(stream)}`);
  const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
  await page.goto(`${url}/dashboard`);
  await page.waitForSelector("#ov-stream-card:not([hidden])");
  const value = await page.textContent("#ov-stream");
  check(value === (lag === 0 ? "up to date" : `${lag.toLocaleString()} behind`), `the card says how far behind: ${value}`);
  const detail = await page.textContent("#ov-stream-detail");
  if (connected) {
    check(detail.startsWith("connected"), `connected: ${detail}`);
  } else {
    check(detail.startsWith(stream.lastError), `NATS's complaint shown: ${detail}`);
  }
  await noViolations(page, "the overview with streaming on");
  await page.screenshot({ path: `${shots}/overview-stream-${connected ? "up" : "down"}.png` });
  console.log("all checks passed");
} finally {
  await browser.close();
}
