#!/usr/bin/env bash
# Forwarding under load, in one run on one machine: durable ingest at 32 connections
# with no target, then with one target that takes everything (the no-op receiver,
# which checks each forwarded delivery's signature), the ratio of the two, and with
# the target on its delivery rate during the run, its backlog sampled every 100 ms
# and how long it took to catch up afterwards (the tests, not this, check that
# nothing is lost).
#
#   benches/forward.sh [SECONDS]     # default 10 s per measured run
#
# Needs the Rust toolchain, curl and python3.
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_RUN=${1:-10}
cargo build --release --benches --bins --locked 2>&1 | tail -1
bench() { ls -t target/release/deps/"$1"-* | grep -v '\.d$' | head -1; }
LOADGEN=$(bench loadgen)
NOOP=$(bench noop_receiver)
WORK=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$WORK"' EXIT
echo "machine: $(nproc) cores, $(date -u +%F), commit $(git rev-parse --short HEAD)"

TARGET=127.0.0.1-3945-api-webhooks-github # the name HOOKVAULT_FORWARD gives the URL below
wait_healthy() { until curl -sf "http://127.0.0.1:$1/api/webhooks/health" >/dev/null; do sleep 0.01; done; }
target_field() { # port field → the target's <field>
  curl -s "http://127.0.0.1:$1/api/forwarding/targets/$TARGET" |
    python3 -c "import json,sys; print(json.load(sys.stdin)['data']['$2'])"
}
rate_of() { sed -nE 's/.*rate=([0-9]+)\/s.*/\1/p' "$1"; }
secs_of() { sed -nE 's/.* seconds=([0-9.]+) .*/\1/p' "$1"; }
cpu_ticks() { awk '{print $14 + $15}' /proc/$1/stat; } # utime + stime

$NOOP 127.0.0.1:3945 bench >/dev/null 2>&1 & TARGET_PID=$!

run() { # name port [env…]: starts hookvault and warms it up
  local name=$1 port=$2; shift 2
  env "$@" target/release/hookvault --data-dir "$WORK/$name" --listen 127.0.0.1:$port --secret bench 2>/dev/null &
  HV=$!
  wait_healthy $port
  $LOADGEN --url http://127.0.0.1:$port --secret bench --seconds 5 --max-requests 200000 >/dev/null
  sleep 2
}

echo; echo "== no target: 32 connections, closed loop, ${SECONDS_RUN} s (after a 5 s warm-up)"
run off 3941
hv_off=$(cpu_ticks $HV)
$LOADGEN --url http://127.0.0.1:3941 --secret bench --seconds "$SECONDS_RUN" --max-requests 600000 | tee "$WORK/off.txt"
hv_off=$(( $(cpu_ticks $HV) - hv_off ))
kill $HV; wait $HV || true

echo; echo "== one target taking everything (the no-op receiver): the same load"
run on 3942 HOOKVAULT_FORWARD=http://127.0.0.1:3945/api/webhooks/github
# The warm-up's deliveries are forwarded before the measured run starts.
until [ "$(target_field 3942 backlog)" = 0 ]; do sleep 0.1; done
delivered_before=$(target_field 3942 delivered)
( while kill -0 $HV 2>/dev/null; do target_field 3942 backlog 2>/dev/null || true; sleep 0.1; done > "$WORK/backlog.txt" ) & SAMPLER=$!
hv_on=$(cpu_ticks $HV); target_on=$(cpu_ticks $TARGET_PID)
$LOADGEN --url http://127.0.0.1:3942 --secret bench --seconds "$SECONDS_RUN" --max-requests 600000 | tee "$WORK/on.txt"
loaded=$(date +%s%N)
hv_on=$(( $(cpu_ticks $HV) - hv_on )); target_on=$(( $(cpu_ticks $TARGET_PID) - target_on ))
delivered_during=$(( $(target_field 3942 delivered) - delivered_before ))
until [ "$(target_field 3942 backlog)" = 0 ]; do sleep 0.01; done
caught_up=$(date +%s%N)
kill $SAMPLER 2>/dev/null || true
delivered_total=$(( $(target_field 3942 delivered) - delivered_before ))
failed=$(target_field 3942 failed)
python3 - "$WORK/backlog.txt" "$(rate_of "$WORK/off.txt")" "$(rate_of "$WORK/on.txt")" \
  "$delivered_during" "$delivered_total" "$loaded" "$caught_up" "$(secs_of "$WORK/on.txt")" \
  "$hv_off" "$hv_on" "$target_on" "$(getconf CLK_TCK)" "$failed" <<'PY'
import sys
backlog = sorted(int(l) for l in open(sys.argv[1]) if l.strip().isdigit())
off, on, during, total = (int(x) for x in sys.argv[2:6])
loaded, caught_up = (int(x) / 1e9 for x in sys.argv[6:8])
secs = float(sys.argv[8])
hv_off, hv_on, target_on, hz, failed = (int(x) for x in sys.argv[9:14])
p = lambda q: backlog[min(len(backlog) - 1, int(q * len(backlog)))] if backlog else float("nan")
print(f"ingest with one target / none: {on}/{off} = {on / off:.3f}")
print(f"forwarded during the run: {during} ({during / secs:.0f}/s); "
      f"all {total} forwarded {caught_up - loaded:.2f} s after the load ended; failed: {failed}")
per = lambda ticks, n: ticks * 1e6 / hz / max(1, n * secs)
print(f"CPU µs per delivery: hookvault without a target {per(hv_off, off):.1f}, with one {per(hv_on, on):.1f}; "
      f"the target {per(target_on, on):.1f}")
print(f"backlog over {len(backlog)} samples (deliveries): p50 {p(.5)} p99 {p(.99)} max {backlog[-1] if backlog else 'nan'}")
PY
kill $HV; wait $HV || true
