// Socket.IO fan-out bench: N official clients on `/`, each subscribed to the given
// repositories, measuring receive-to-client latency (now - receivedAt) of every
// `webhook-event` and counting the `security-alert`s they all get. Prints one JSON
// summary line after `seconds`, or when terminated (SIGTERM), with how many clients
// were connected then and how many disconnects happened: a bench that measures
// "with subscribers attached" needs 0.
//   node benches/realtime/subscribers.mjs <url> <clients> <seconds> <repo,repo,...>
import { createRequire } from "node:module";
const require = createRequire(new URL("../../tests/clients/js/package.json", import.meta.url));
const { io } = require("socket.io-client");

const [url, clients = "1000", seconds = "20", repos = ""] = process.argv.slice(2);
const latencies = [];
let connected = 0;
let disconnects = 0;
let alerts = 0;
const sockets = [];
for (let i = 0; i < Number(clients); i++) {
  const socket = io(url, { transports: ["websocket"], forceNew: true });
  socket.on("connect", () => {
    connected += 1;
    for (const repo of repos.split(",").filter(Boolean)) socket.emit("subscribe:repository", repo);
    if (connected === Number(clients)) console.error(`all ${clients} connected`);
  });
  socket.on("disconnect", () => {
    connected -= 1;
    disconnects += 1;
  });
  socket.on("webhook-event", (e) => latencies.push(Date.now() - Date.parse(e.receivedAt)));
  socket.on("security-alert", () => { alerts += 1; });
  sockets.push(socket);
}
function finish() {
  latencies.sort((a, b) => a - b);
  const at = (q) => latencies.length ? latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))] : null;
  console.log(JSON.stringify({ clients: Number(clients), connected, disconnects, alerts, messages: latencies.length, p50_ms: at(0.5), p99_ms: at(0.99), max_ms: at(1) }));
  process.exit(0);
}
setTimeout(finish, Number(seconds) * 1000);
process.on("SIGTERM", finish);
