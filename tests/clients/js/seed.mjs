// The seed's JavaScript client example (SEED.md, "Usage Examples"), unmodified but
// for the server URL, plus a few instrumentation lines for the test to read.
import { io } from "socket.io-client";

const url = process.env.HOOKVAULT_URL;
const report = (kind, data) => console.log(JSON.stringify({ kind, data }));
globalThis.alert = (message) => report("alert", message);

// ---- seed example ----
// Listen for real-time webhook events
const socket = io(url);

// Subscribe to specific repository
socket.emit('subscribe:repository', 'myorg/myrepo');

// Handle workflow job events
socket.on('workflow-job', (data) => {
  console.log(`Job ${data.job.name} is ${data.action}`);

  if (data.action === 'completed') {
    console.log(`Conclusion: ${data.job.conclusion}`);
  }
});

// Handle security alerts
socket.on('security-alert', (data) => {
  alert(`Security issue in ${data.repository.full_name}: ${data.eventType}`);
});

// Monitor webhook health
async function checkWebhookHealth() {
  const response = await fetch(`${url}/api/webhooks/health`);
  const health = await response.json();

  if (health.data.healthScore < 80) {
    console.warn('Webhook system health degraded:', health.data);
  }
  report("health", health.data.healthScore);
}
// ---- end of seed example ----

// Same subscription again, asking for the server's acknowledgement: the test starts
// sending once it is in place.
socket.emit("subscribe:repository", "myorg/myrepo", () => report("ready", socket.id));
socket.on("push-event", (data) => report("push-event", { ref: data.ref, commits: data.commits.length }));
socket.on("webhook-event", (data) => report("webhook-event", data.eventType));
checkWebhookHealth();
// Until the test closes standard input (or is gone): no clock of its own.
process.stdin.on("end", () => process.exit(0));
process.stdin.resume();
