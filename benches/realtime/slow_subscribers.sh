#!/usr/bin/env bash
# Memory held for subscribers that stop reading 500 WebSocket clients
# on `/` are frozen (SIGSTOP), 905 security alerts (which go to every client) are
# delivered, then the clients are killed. Prints the server's resident memory before,
# at its peak, and after they left, and how many clients were cut off.
#   benches/realtime/slow_subscribers.sh [path/to/hookvault]   (default target/release)
# Needs `npm ci --prefix tests/clients/js`.
set -euo pipefail
cd "$(dirname "$0")/../.."
BIN=${1:-target/release/hookvault}
PORT=${PORT_SLOW:-3905}
URL=http://127.0.0.1:$PORT
DATA=$(mktemp -d)
trap 'kill -CONT $SUBS 2>/dev/null; kill $(jobs -p) 2>/dev/null; rm -rf "$DATA"' EXIT
SUBS=0
"$BIN" --data-dir "$DATA" --listen 127.0.0.1:$PORT --secret bench --dedup-ttl 0 2>/dev/null &
SERVER=$!
until curl -sf $URL/api/webhooks/health >/dev/null; do sleep 0.2; done
rss() { awk '/VmRSS/ {print $2 / 1024 " MiB"}' /proc/$SERVER/status; }
hwm() { awk '/VmHWM/ {print $2 / 1024 " MiB"}' /proc/$SERVER/status; }

# Warm up: every code path once, so "before" is a running server, not a fresh one.
python3 benches/realtime/send_alerts.py $URL bench 20
echo "before:          $(rss)"

node benches/realtime/subscribers.mjs $URL 500 600 2> >(grep -m1 connected >&2) >/dev/null &
SUBS=$!
for _ in $(seq 100); do
  [ "$(curl -s $URL/metrics | awk '/^hookvault_socketio_connections\{namespace="\/"\}/ {print $2}')" = "500" ] && break
  sleep 0.2
done
echo "500 connected:   $(rss)"
kill -STOP $SUBS
python3 benches/realtime/send_alerts.py $URL bench 905
sleep 2
echo "after 905 alerts: $(rss) (peak $(hwm))"
kill -CONT $SUBS; kill -KILL $SUBS; wait $SUBS 2>/dev/null || true
SUBS=0
# Freed memory goes back to the system every 10 s (src/memory.rs): wait for one.
sleep 11
echo "clients gone:    $(rss)"
curl -s $URL/metrics | grep -E '^hookvault_(socketio_dropped_clients|socketio_skipped_broadcasts|http_connections_closed_total)'
