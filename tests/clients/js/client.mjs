// Drives the official socket.io-client for hookvault's integration tests. Prints one
// JSON line per thing that happened: {"kind": ..., "data": ...}.
//   node client.mjs webhooks '{"repository":"o/r"}'   events of /webhooks with a filter
//   node client.mjs resume <dropAfter>                  /webhooks, drop, resume with since
//   node client.mjs monitoring                          /monitoring updates
//   node client.mjs connect <namespace> [token]         connect, report ok or connect_error
import { io } from "socket.io-client";

const url = process.env.HOOKVAULT_URL;
const runMs = Number(process.env.RUN_MS || 8000);
const report = (kind, data) => console.log(JSON.stringify({ kind, data }));
const [mode, arg, arg2] = process.argv.slice(2);
setTimeout(() => process.exit(0), runMs);

if (mode === "webhooks") {
  const socket = io(`${url}/webhooks`);
  socket.on("connect", () => {
    socket.emit("subscribe:webhook-events", JSON.parse(arg || "{}"), () => report("ready", socket.id));
  });
  socket.on("event", (e) => report("event", { id: e.id, deliveryId: e.deliveryId, event: e.event, repository: e.repository, action: e.action }));
  socket.on("event-updated", (e) => report("event-updated", { id: e.id, status: e.status }));
} else if (mode === "resume") {
  const dropAfter = Number(arg || 20);
  let last = 0;
  let received = 0;
  const listen = (socket) => socket.on("event", (e) => {
    last = e.id;
    received += 1;
    report("event", { id: e.id });
    if (received === dropAfter) {
      socket.disconnect();
      report("dropped", last);
      // Offline for a while during the burst, then resume from the last seen id.
      setTimeout(() => {
        const again = io(`${url}/webhooks`, { forceNew: true });
        again.on("connect", () => again.emit("subscribe:webhook-events", { since: last }));
        listen(again);
      }, 400);
    }
  });
  const socket = io(`${url}/webhooks`);
  socket.on("connect", () => {
    socket.emit("subscribe:webhook-events", {}, () => report("ready", socket.id));
  });
  listen(socket);
} else if (mode === "monitoring") {
  const socket = io(`${url}/monitoring`);
  socket.on("update", (m) => report("update", m));
} else if (mode === "connect") {
  const options = arg2 ? { auth: { token: arg2 } } : {};
  const socket = io(`${url}${arg}`, { ...options, reconnection: false });
  socket.on("connect", () => { report("connected", socket.id); process.exit(0); });
  socket.on("connect_error", (e) => { report("connect_error", e.message); process.exit(0); });
}
