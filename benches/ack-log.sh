#!/usr/bin/env bash
# The acknowledgement log's figures, in one run on one machine (the ratios compare
# like with like): durable ingest against the no-op receiver at 32 connections, the
# bytes written and CPU spent per delivery by each thread, the applier's lag under
# that load, ack latency at a fixed 1,000/s, and recovery after SIGKILL with EVENTS
# events in the store and the log's tail not yet applied durably.
#
#   benches/ack-log.sh [EVENTS]     # default 200000
#
# Needs the Rust toolchain, curl and python3. Prints each section's raw output;
# benches/README.md quotes it.
source "$(dirname "$0")/common/prologue.sh"
EVENTS=${1:-200000}
NOOP=$(bench noop_receiver)
LEDGER_CHECK=$(bench ledger_check)
machine

wait_healthy() { # port → milliseconds until health answers
  local start=$(date +%s%N)
  until curl -sf "http://127.0.0.1:$1/api/webhooks/health" >/dev/null; do sleep 0.01; done
  echo $(( ($(date +%s%N) - start) / 1000000 ))
}
# CPU ticks (utime + stime) per thread name of a process.
thread_ticks() {
  for stat in /proc/$1/task/*/stat; do
    # The name is in parentheses and may hold spaces. After the name and the state,
    # utime and stime (fields 14 and 15 of stat) are the 11th and 12th.
    sed -E 's/^[0-9]+ \((.*)\) [A-Za-z] (.*)$/\1|\2/' "$stat" 2>/dev/null |
      awk -F'|' '{split($2, f, " "); print $1 "\t" f[11] + f[12]}'
  done | awk -F'\t' '{sum[$1] += $2} END {for (n in sum) print n "\t" sum[n]}' | sort
}
write_bytes() { awk '/^write_bytes/ {print $2}' /proc/$1/io; }

echo; echo "== no-op receiver (HMAC check only): 32 connections, closed loop, 10 s"
$NOOP 127.0.0.1:3911 bench & NOOP_PID=$!
sleep 0.5
$LOADGEN --url http://127.0.0.1:3911 --secret bench --seconds 10
kill $NOOP_PID

echo; echo "== hookvault: same load (after a 5 s warm-up), durable ack after the log's fdatasync"
target/release/hookvault --data-dir "$WORK/ingest" --listen 127.0.0.1:3912 --secret bench 2>/dev/null & HV=$!
wait_healthy 3912 >/dev/null
$LOADGEN --url http://127.0.0.1:3912 --secret bench --seconds 5 --max-requests 200000 >/dev/null
sleep 2
before_bytes=$(write_bytes $HV)
thread_ticks $HV > "$WORK/ticks-before"
curl -s http://127.0.0.1:3912/metrics > "$WORK/metrics-before"
# The applier's lag, sampled from health every 100 ms during the run.
( while kill -0 $HV 2>/dev/null; do
    curl -s http://127.0.0.1:3912/api/webhooks/health |
      python3 -c 'import json,sys; d=json.load(sys.stdin)["data"]["log"]; print(d["applierLag"], d["lastApplyMs"])' 2>/dev/null || true
    sleep 0.1
  done > "$WORK/lag.txt" ) & SAMPLER=$!
$LOADGEN --url http://127.0.0.1:3912 --secret bench --seconds 10 --max-requests 600000 --ledger "$WORK/acked.txt" | tee "$WORK/run.txt"
kill $SAMPLER 2>/dev/null || true
sleep 2 # the index and processing catch up; their bytes and CPU count too
after_bytes=$(write_bytes $HV)
thread_ticks $HV > "$WORK/ticks-after"
curl -s http://127.0.0.1:3912/metrics > "$WORK/metrics-after"
acked=$(wc -l < "$WORK/acked.txt")
hz=$(getconf CLK_TCK)
echo "acknowledged in the measured run: $acked"
echo "bytes written to disk per delivery (/proc/<pid>/io write_bytes, run + 2 s): $(( (after_bytes - before_bytes) / acked ))"
echo "CPU µs per delivery by thread (run + 2 s):"
join -t$'\t' -a2 -e0 -o 0,1.2,2.2 "$WORK/ticks-before" "$WORK/ticks-after" |
  awk -F'\t' -v n="$acked" -v hz="$hz" '{d = $3 - $2; if (d > 0) {printf "  %-20s %7.1f\n", $1, d * 1e6 / hz / n; t += d}} END {printf "  %-20s %7.1f\n", "total", t * 1e6 / hz / n}'
python3 - "$WORK/metrics-before" "$WORK/metrics-after" <<'PY'
import re, sys
def sums(path):
    out = {}
    for line in open(path):
        m = re.match(r"(hookvault_(?:log_append_batch_size|log_append_seconds|commit_batch_size|commit_seconds))_(sum|count) (\S+)", line)
        if m:
            out[m.group(1), m.group(2)] = float(m.group(3))
    return out
a, b = sums(sys.argv[1]), sums(sys.argv[2])
mean = lambda n: (b[n, "sum"] - a.get((n, "sum"), 0)) / max(1, b[n, "count"] - a.get((n, "count"), 0))
count = lambda n: b[n, "count"] - a.get((n, "count"), 0)
print(f"log appends: {count('hookvault_log_append_batch_size'):.0f}, {mean('hookvault_log_append_batch_size'):.1f} deliveries and "
      f"{mean('hookvault_log_append_seconds') * 1000:.2f} ms (write + fdatasync) each; store commits: "
      f"{count('hookvault_commit_batch_size'):.0f}, {mean('hookvault_commit_batch_size'):.1f} requests and {mean('hookvault_commit_seconds') * 1000:.2f} ms each")
PY
python3 - "$WORK/lag.txt" <<'PY'
import sys
rows = [l.split() for l in open(sys.argv[1]) if len(l.split()) == 2]
lags = sorted(int(r[0]) for r in rows); waits = sorted(float(r[1]) for r in rows)
p = lambda v, q: v[min(len(v) - 1, int(q * len(v)))] if v else float("nan")
print(f"applier lag over {len(rows)} samples: frames p50 {p(lags, .5)} p99 {p(lags, .99)} max {lags[-1] if lags else 'nan'}; "
      f"append-to-apply ms p50 {p(waits, .5):.2f} p99 {p(waits, .99):.2f}")
PY
kill $HV; wait $HV || true
echo "every acknowledged delivery stored, exactly once (the ledger against an export):"
target/release/hookvault export --data-dir "$WORK/ingest" | $LEDGER_CHECK "$WORK/acked.txt"

echo; echo "== ack latency at a fixed 1,000 deliveries/s, open loop, 20 s, fresh store"
target/release/hookvault --data-dir "$WORK/latency" --listen 127.0.0.1:3913 --secret bench 2>/dev/null & HV=$!
wait_healthy 3913 >/dev/null
$LOADGEN --url http://127.0.0.1:3913 --secret bench --seconds 20 --rate 1000
kill $HV; wait $HV || true

echo; echo "== recovery after SIGKILL with $EVENTS events, killed under load"
target/release/hookvault --data-dir "$WORK/scale" --listen 127.0.0.1:3914 --secret bench 2>/dev/null & HV=$!
wait_healthy 3914 >/dev/null
stored=0
while [ "$stored" -lt "$EVENTS" ]; do
  $LOADGEN --url http://127.0.0.1:3914 --secret bench --seconds 20 --max-requests 400000 | grep -E "rate=" || true
  stored=$(curl -s "http://127.0.0.1:3914/api/webhooks/events?limit=1" | sed -E 's/.*"total":([0-9]+).*/\1/')
  echo "stored: $stored"
done
# Killed while a load runs: the log holds up to a second of deliveries past the
# store's last durable commit.
# (The generator builds its deliveries before it starts sending: few, so it starts
# at once.)
$LOADGEN --url http://127.0.0.1:3914 --secret bench --seconds 6 --max-requests 30000 >/dev/null & LOAD=$!
sleep 3
kill -KILL $HV; wait $HV 2>/dev/null || true
wait $LOAD 2>/dev/null || true
du -sh "$WORK/scale/log" | awk '{print "log on disk at the kill: " $1}'
target/release/hookvault --data-dir "$WORK/scale" --listen 127.0.0.1:3914 --secret bench 2> "$WORK/restart.log" & HV=$!
echo "startup to healthy after SIGKILL: $(wait_healthy 3914) ms"
grep -h "acknowledgement log" "$WORK/restart.log" | sed -E 's/^.*INFO //' || echo "(no tail to apply)"
curl -s "http://127.0.0.1:3914/api/webhooks/events?limit=1" | sed -E 's/.*"total":([0-9]+).*/events after the restart: \1/' 
kill -TERM $HV; wait $HV || true
