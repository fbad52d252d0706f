// Drives the official socket.io-client for hookvault's integration tests. Prints one
// JSON line per thing that happened: {"kind": ..., "data": ...}.
//   node client.mjs webhooks '{"repository":"o/r"}'   events of /webhooks with a filter
//   node client.mjs resume <dropAfter> [awayMs]         /webhooks, drop, resume with since
//   node client.mjs alerts                              connect to /, report each security-alert
//   node client.mjs monitoring                          /monitoring updates
//   node client.mjs connect <namespace> [token]         connect, report ok or connect_error
//   node client.mjs guess <wrong> <token>               <wrong> bad tokens on /, then the right one
//   node client.mjs subscribe-many <n>                  n repository subscriptions on /, acks counted
//   node client.mjs oversize <bytes>                    send one message that large on /, report the disconnect
//   node client.mjs stay <namespace> [token]            connect and stay connected
//   node client.mjs origin <origin> <transport>         connect to / sending that Origin, report ok or connect_error
//   node client.mjs scoped <token> '["org:o","repo:o/r"]' as <token>: /webhooks from the start, and / with these
//                                                       subscriptions; reports every event, live message and disconnect
// Runs until the test closes its standard input (or is gone), however long the test
// takes: a clock here would end the client while a slow test still reads from it.
import { io } from "socket.io-client";

const url = process.env.HOOKVAULT_URL;
const report = (kind, data) => console.log(JSON.stringify({ kind, data }));
const [mode, arg, arg2] = process.argv.slice(2);
process.stdin.on("end", () => process.exit(0));
process.stdin.resume();

if (mode === "webhooks") {
  const socket = io(`${url}/webhooks`);
  socket.on("connect", () => {
    socket.emit("subscribe:webhook-events", JSON.parse(arg || "{}"), () => report("ready", socket.id));
  });
  socket.on("event", (e) => report("event", { id: e.id, deliveryId: e.deliveryId, event: e.event, repository: e.repository, action: e.action, status: e.status }));
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
        again.on("connect", () => {
          const since = last;
          again.emit("subscribe:webhook-events", { since }, (ok) => report("resumed", { since, ok }));
        });
        listen(again);
      }, Number(arg2 || 400));
    }
  });
  const socket = io(`${url}/webhooks`);
  socket.on("connect", () => {
    socket.emit("subscribe:webhook-events", {}, () => report("ready", socket.id));
  });
  listen(socket);
} else if (mode === "alerts") {
  const socket = io(url);
  socket.on("connect", () => report("connected", socket.id));
  socket.on("security-alert", (a) => report("alert", { id: a.id, deliveryId: a.deliveryId }));
} else if (mode === "monitoring") {
  const socket = io(`${url}/monitoring`);
  socket.on("update", (m) => report("update", m));
} else if (mode === "connect") {
  const options = arg2 ? { auth: { token: arg2 } } : {};
  const socket = io(`${url}${arg}`, { ...options, reconnection: false });
  socket.on("connect", () => { report("connected", socket.id); process.exit(0); });
  socket.on("connect_error", (e) => { report("connect_error", e.message); process.exit(0); });
} else if (mode === "guess") {
  const attempt = (token) => new Promise((resolve) => {
    // As a remote client behind the trusted proxy (the test configures 127.0.0.1).
    const extraHeaders = { "X-Forwarded-For": "198.51.100.9" };
    const socket = io(url, { auth: { token }, reconnection: false, forceNew: true, extraHeaders });
    socket.on("connect", () => { socket.disconnect(); resolve("connected"); });
    socket.on("connect_error", (e) => resolve(e.message));
  });
  for (let i = 0; i < Number(arg); i++) report("wrong", await attempt(`guess-${i}`));
  report("right", await attempt(arg2));
  process.exit(0);
} else if (mode === "subscribe-many") {
  const socket = io(url);
  let errors = 0;
  socket.on("subscription-error", () => { errors += 1; });
  socket.on("connect", async () => {
    let accepted = 0;
    for (let i = 0; i < Number(arg); i++) {
      if (await socket.emitWithAck("subscribe:repository", `owner/repo-${i}`)) accepted += 1;
    }
    report("subscribed", { accepted, errors });
    process.exit(0);
  });
} else if (mode === "oversize") {
  const socket = io(url, { reconnection: false, transports: ["websocket"] });
  socket.on("connect", () => {
    report("connected", socket.id);
    socket.emit("subscribe:repository", "x".repeat(Number(arg)), (ok) => report("ack", ok));
  });
  socket.on("disconnect", (reason) => { report("disconnect", reason); process.exit(0); });
} else if (mode === "stay") {
  const options = arg2 ? { auth: { token: arg2 } } : {};
  const socket = io(`${url}${arg}`, { ...options, reconnection: false });
  socket.on("connect", () => report("connected", socket.id));
  socket.on("connect_error", (e) => report("connect_error", e.message));
  socket.on("disconnect", (reason) => report("disconnect", reason));
} else if (mode === "origin") {
  const socket = io(url, { reconnection: false, transports: [arg2], extraHeaders: { Origin: arg } });
  socket.on("connect", () => { report("connected", socket.id); process.exit(0); });
  socket.on("connect_error", (e) => { report("connect_error", e.message); process.exit(0); });
} else if (mode === "scoped") {
  const auth = { token: arg };
  const feed = io(`${url}/webhooks`, { auth, reconnection: false, forceNew: true });
  feed.on("connect", () => feed.emit("subscribe:webhook-events", { since: 0 }, (ok) => report("ready", ok)));
  feed.on("connect_error", (e) => report("connect_error", e.message));
  feed.on("event", (e) => report("event", { id: e.id, deliveryId: e.deliveryId, repository: e.repository, organization: e.organization }));
  feed.on("disconnect", (reason) => report("disconnect", { ns: "/webhooks", reason }));
  const main = io(url, { auth, reconnection: false, forceNew: true });
  main.on("connect", async () => {
    for (const room of JSON.parse(arg2 || "[]")) {
      const [kind, name] = room.split(":");
      await main.emitWithAck(kind === "org" ? "subscribe:organization" : "subscribe:repository", name);
    }
    report("subscribed", main.id);
  });
  for (const kind of ["webhook-event", "security-alert"]) {
    main.on(kind, (e) => report("live", { kind, deliveryId: e.deliveryId, repository: e.repository?.full_name ?? null, organization: e.organization?.login ?? null }));
  }
  main.on("disconnect", (reason) => report("disconnect", { ns: "/", reason }));
}
