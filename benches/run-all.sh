#!/usr/bin/env bash
# Regenerates every figure of the README's benchmark table, in one run on one
# machine, so the ratios compare like with like. Prints each section's raw output;
# the table is copied from it. Takes about 30 minutes on 2 cores.
#
#   benches/run-all.sh [EVENTS]     # EVENTS for the scale figures, default 1000000
#
# Needs: the Rust toolchain, curl, and for the Socket.IO section Node with
# `npm ci --prefix tests/clients/js`.
set -euo pipefail
cd "$(dirname "$0")/.."
EVENTS=${1:-1000000}
cargo build --release --benches --bins --locked 2>&1 | tail -1
bench() { ls -t target/release/deps/"$1"-* | grep -v '\.d$' | head -1; }
LOADGEN=$(bench loadgen)
NOOP=$(bench noop_receiver)
LEDGER_CHECK=$(bench ledger_check)
WORK=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$WORK"' EXIT
echo "machine: $(nproc) cores, $(grep MemTotal /proc/meminfo | awk '{print $2/1024/1024 " GiB"}'), $(date -u +%F)"

wait_healthy() { # port → milliseconds until health answers
  local start=$(date +%s%N)
  until curl -sf "http://127.0.0.1:$1/api/webhooks/health" >/dev/null; do sleep 0.02; done
  echo $(( ($(date +%s%N) - start) / 1000000 ))
}
rss_mb() { awk '/VmRSS/ {printf "%.1f MB", $2/1024}' "/proc/$1/status"; }

echo; echo "== no-op receiver (HMAC check only): 32 connections, closed loop, 10 s"
$NOOP 127.0.0.1:3901 bench & NOOP_PID=$!
sleep 0.5
$LOADGEN --url http://127.0.0.1:3901 --secret bench --seconds 10
kill $NOOP_PID

echo; echo "== hookvault, whole pipeline: same load (after a 5 s warm-up)"
target/release/hookvault --data-dir "$WORK/ingest" --listen 127.0.0.1:3902 --secret bench 2>/dev/null & HV=$!
wait_healthy 3902 >/dev/null
echo "resident memory idle, empty store: $(rss_mb $HV)"
$LOADGEN --url http://127.0.0.1:3902 --secret bench --seconds 5 --max-requests 150000 >/dev/null
$LOADGEN --url http://127.0.0.1:3902 --secret bench --seconds 10 --max-requests 300000 --ledger "$WORK/acked.txt"

kill $HV; wait $HV || true
echo "every acknowledged delivery stored, exactly once (the measured run's ledger against an export):"
target/release/hookvault export --data-dir "$WORK/ingest" | $LEDGER_CHECK "$WORK/acked.txt"

# On a fresh store: right after the closed loop, the index would still be catching
# up on it, and that backlog (its segment writes and merges share the disk with the
# store's fsyncs) is not what a steady 1,000/s costs.
echo; echo "== ack latency at a fixed 1,000 deliveries/s, open loop, 20 s, fresh store"
target/release/hookvault --data-dir "$WORK/latency" --listen 127.0.0.1:3903 --secret bench 2>/dev/null & HV=$!
wait_healthy 3903 >/dev/null
$LOADGEN --url http://127.0.0.1:3903 --secret bench --seconds 20 --rate 1000
kill $HV; wait $HV || true

echo; echo "== memory and startup with $EVENTS events (closed-loop load until there)"
target/release/hookvault --data-dir "$WORK/scale" --listen 127.0.0.1:3904 --secret bench 2>/dev/null & HV=$!
wait_healthy 3904 >/dev/null
stored=0
round=0
while [ "$stored" -lt "$EVENTS" ]; do
  round=$((round + 1))
  $LOADGEN --url http://127.0.0.1:3904 --secret bench --seconds 30 --max-requests 300000 \
    --ledger "$WORK/scale-acked-$round.txt" | grep -E "rate=" || true
  stored=$(curl -s "http://127.0.0.1:3904/api/webhooks/events?limit=1" | sed -E 's/.*"total":([0-9]+).*/\1/')
  echo "stored: $stored; resident memory: $(rss_mb $HV)"
done
sleep 5
echo "resident memory right after the load: $(rss_mb $HV) ($(awk '/RssAnon|RssFile/ {printf "%s %.1f MB ", $1, $2/1024}' /proc/$HV/status))"
du -sh "$WORK/scale" | awk '{print "data dir: " $1}'
kill -TERM $HV; wait $HV || true
echo "every acknowledged delivery stored, exactly once:"
target/release/hookvault export --data-dir "$WORK/scale" | $LEDGER_CHECK "$WORK"/scale-acked-*.txt
target/release/hookvault --data-dir "$WORK/scale" --listen 127.0.0.1:3904 --secret bench 2>/dev/null & HV=$!
echo "startup to healthy after a clean stop: $(wait_healthy 3904) ms"
sleep 5
echo "resident memory idle after the restart: $(rss_mb $HV)"
kill -KILL $HV; wait $HV 2>/dev/null || true
target/release/hookvault --data-dir "$WORK/scale" --listen 127.0.0.1:3904 --secret bench 2>/dev/null & HV=$!
echo "startup to healthy after SIGKILL: $(wait_healthy 3904) ms"
kill -TERM $HV; wait $HV || true

echo; echo "== statistics latency at 10k, 100k and $EVENTS events"
"$(bench statistics)" --events "$EVENTS"

echo; echo "== search latency and bytes on disk per event at $EVENTS events"
"$(bench search)" --events "$EVENTS"

echo; echo "== redb commit modes"
BENCH_DIR="$WORK" "$(bench commit_modes)" --commits 3000 --events 100000

echo; echo "== payload dictionary"
"$(bench train_dictionary)"

echo; echo "== payload CPU per event (whole parse, fixed lookups, the index's pruned parse)"
"$(bench payload)"

if [ -d tests/clients/js/node_modules/socket.io-client ]; then
  echo; echo "== Socket.IO: ingest with 1,000 subscribers, and fan-out latency"
  benches/realtime/run.sh
else
  echo; echo "== Socket.IO section skipped: run npm ci --prefix tests/clients/js"
fi

if command -v nats-server >/dev/null 2>&1 || [ -x /usr/sbin/nats-server ]; then
  echo; echo "== streaming to NATS JetStream: ingest on vs off, publish rate and lag"
  benches/stream.sh
else
  echo; echo "== NATS section skipped: apt-get install nats-server"
fi

echo; echo "== forwarding to one target: ingest with vs without, forwarding rate and backlog"
benches/forward.sh

echo; echo "== the ingest filter: ingest with rules every delivery is matched against vs none"
benches/filters.sh
