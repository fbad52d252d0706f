#!/usr/bin/env bash
# Forwarding under load, in one run on one machine: durable ingest at 32 connections
# with no target and with one target that takes everything, alternating (none, one,
# none, one, …), each run on a fresh data dir after a 5 s warm-up. The target is
# nginx answering 204 (a real keep-alive HTTP server, as cheap as a target gets; set
# FORWARD_TARGET=noop for the no-op receiver, which also checks each signature).
# Prints each run's rate and CPU per delivery (hookvault's and the target's, from
# /proc), the ratios, and with the target its delivery rate during the run, its
# backlog sampled every 100 ms and how long it took to catch up afterwards (the
# tests, not this, check that nothing is lost). First, forwarding alone: 20,000
# stored deliveries sent to a target made afterwards, with nothing else running,
# its rate and CPU per delivery.
#
#   benches/forward.sh [SECONDS] [PAIRS]   # default 10 s per measured run, 2 pairs (0: only forwarding alone)
#
# Needs the Rust toolchain, curl, python3 and nginx (`apt-get install nginx`; without
# it the no-op receiver is the target).
# Honours CARGO_TARGET_DIR, and PROFILE (default release; `profiling` for perf).
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_RUN=${1:-10}
PAIRS=${2:-2}
PROFILE=${PROFILE:-release}
BUILD=${CARGO_TARGET_DIR:-target}/$PROFILE
FORWARD_TARGET=${FORWARD_TARGET:-$(command -v nginx >/dev/null && echo nginx || echo noop)}
cargo build --profile "$PROFILE" --bench loadgen --bench noop_receiver --bin hookvault --locked 2>&1 | tail -1
bench() { ls -t "$BUILD"/deps/"$1"-* | grep -v '\.d$' | head -1; }
LOADGEN=$(bench loadgen)
HOOKVAULT=${HOOKVAULT:-$BUILD/hookvault} # another build to compare: HOOKVAULT=path
WORK=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$WORK"' EXIT
echo "machine: $(nproc) cores, $(date -u +%F), commit $(git rev-parse --short HEAD), target: $FORWARD_TARGET"

PORT=3945
TARGET=127.0.0.1-$PORT-api-webhooks-github # the name HOOKVAULT_FORWARD gives the URL below
if [ "$FORWARD_TARGET" = nginx ]; then
  mkdir -p "$WORK/nginx"
  # One process (no master), no log, bodies read into memory and dropped.
  cat > "$WORK/nginx/nginx.conf" <<EOF
daemon off;
master_process off;
worker_processes 1;
pid $WORK/nginx/nginx.pid;
error_log $WORK/nginx/error.log crit;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path $WORK/nginx/body;
  proxy_temp_path $WORK/nginx/proxy;
  fastcgi_temp_path $WORK/nginx/fastcgi;
  uwsgi_temp_path $WORK/nginx/uwsgi;
  scgi_temp_path $WORK/nginx/scgi;
  client_max_body_size 32m;
  keepalive_requests 10000000;
  server {
    listen 127.0.0.1:$PORT;
    location / { return 204; }
  }
}
EOF
  nginx -c "$WORK/nginx/nginx.conf" -e "$WORK/nginx/error.log" & TARGET_PID=$!
else
  $(bench noop_receiver) 127.0.0.1:$PORT bench >/dev/null 2>&1 & TARGET_PID=$!
fi
until curl -s -o /dev/null "http://127.0.0.1:$PORT/"; do sleep 0.05; done

wait_healthy() { until curl -sf "http://127.0.0.1:$1/api/webhooks/health" >/dev/null; do sleep 0.01; done; }
target_field() { # port field → the target's <field>
  curl -s "http://127.0.0.1:$1/api/forwarding/targets/$TARGET" |
    python3 -c "import json,sys; print(json.load(sys.stdin)['data']['$2'])"
}
count_of() { # port field → the target's backlog, inFlight or delivered, read at once: no python3 (40-150 ms of CPU a start)
  curl -s "http://127.0.0.1:$1/api/forwarding/targets/$TARGET" | sed -nE "s/.*\"$2\":([0-9]+).*/\1/p"
}
rate_of() { sed -nE 's/.*rate=([0-9]+)\/s.*/\1/p' "$1"; }
secs_of() { sed -nE 's/.* seconds=([0-9.]+) .*/\1/p' "$1"; }
cpu_ticks() { awk '{print $14 + $15}' /proc/$1/stat; } # utime + stime
HZ=$(getconf CLK_TCK)
per_delivery() { # ticks deliveries → CPU µs per delivery
  python3 -c "import sys; t, n = map(float, sys.argv[1:]); print(f'{t * 1e6 / $HZ / max(1, n):.0f}')" "$1" "$2"
}

run() { # n with|none: one measured run on a fresh data dir; appends to $WORK/runs
  local n=$1 mode=$2 port=$((3950 + $1)) env=()
  [ "$mode" = with ] && env=(HOOKVAULT_FORWARD=http://127.0.0.1:$PORT/api/webhooks/github)
  env "${env[@]}" "$HOOKVAULT" --data-dir "$WORK/data-$n" --listen 127.0.0.1:$port --secret bench >/dev/null 2>&1 &
  HV=$!
  wait_healthy $port
  $LOADGEN --url http://127.0.0.1:$port --secret bench --seconds 5 --max-requests 200000 >/dev/null
  sleep 2
  if [ "$mode" = with ]; then
    # The warm-up's deliveries are forwarded before the measured run starts.
    until [ "$(target_field $port backlog)" = 0 ]; do sleep 0.1; done
    delivered_before=$(target_field $port delivered)
    # One process for every sample: a python3 started per sample costs 40-150 ms
    # of CPU, a third of a core at ten a second, taken from the runs with a target
    # only.
    python3 - $port "$TARGET" > "$WORK/backlog-$n.txt" <<'PY' & SAMPLER=$!
import json, sys, time, urllib.request
url = f"http://127.0.0.1:{sys.argv[1]}/api/forwarding/targets/{sys.argv[2]}"
while True:
    try:
        print(json.load(urllib.request.urlopen(url, timeout=5))["data"]["backlog"], flush=True)
    except OSError:
        pass
    time.sleep(0.1)
PY
  fi
  local hv=$(cpu_ticks $HV) target=$(cpu_ticks $TARGET_PID)
  echo "-- run $n, $mode target"
  $LOADGEN --url http://127.0.0.1:$port --secret bench --seconds "$SECONDS_RUN" --max-requests 600000 | tee "$WORK/run-$n.txt"
  local loaded=$(date +%s%N)
  local hv_run=$(( $(cpu_ticks $HV) - hv )) target_run=$(( $(cpu_ticks $TARGET_PID) - target ))
  local rate=$(rate_of "$WORK/run-$n.txt") secs=$(secs_of "$WORK/run-$n.txt")
  local deliveries=$(awk "BEGIN { printf \"%d\", $rate * $secs + 0.5 }")
  if [ "$mode" = with ]; then
    local during=$(( $(count_of $port delivered) - delivered_before ))
    until [ "$(count_of $port backlog)" = 0 ]; do sleep 0.01; done
    local caught_up=$(date +%s%N)
    local hv_all=$(( $(cpu_ticks $HV) - hv )) target_all=$(( $(cpu_ticks $TARGET_PID) - target ))
    kill $SAMPLER 2>/dev/null || true
    local total=$(( $(target_field $port delivered) - delivered_before ))
    echo "forwarded during the run: $during ($(python3 -c "print(round($during / $secs))")/s); all $total forwarded" \
      "$(python3 -c "print(f'{($caught_up - $loaded) / 1e9:.2f}')") s after the load ended; failed: $(target_field $port failed)"
    echo "CPU µs per delivery during the run: hookvault $(per_delivery $hv_run $deliveries), the target $(per_delivery $target_run $deliveries);" \
      "until caught up: hookvault $(per_delivery $hv_all $deliveries), the target $(per_delivery $target_all $total)"
    python3 - "$WORK/backlog-$n.txt" <<'PY'
import sys
b = sorted(int(l) for l in open(sys.argv[1]) if l.strip().isdigit())
p = lambda q: b[min(len(b) - 1, int(q * len(b)))] if b else float("nan")
print(f"backlog over {len(b)} samples (deliveries): p50 {p(.5)} p99 {p(.99)} max {b[-1] if b else 'nan'}")
PY
  else
    echo "CPU µs per delivery during the run: hookvault $(per_delivery $hv_run $deliveries)"
  fi
  echo "$mode $rate" >> "$WORK/runs"
  kill $HV; wait $HV || true
  rm -rf "$WORK/data-$n"
}

alone() { # forwarding alone: N stored deliveries sent to a target made afterwards, no ingest meanwhile
  local port=3949 n=20000
  "$HOOKVAULT" --data-dir "$WORK/data-alone" --listen 127.0.0.1:$port --secret bench >/dev/null 2>&1 &
  HV=$!
  wait_healthy $port
  $LOADGEN --url http://127.0.0.1:$port --secret bench --seconds 30 --max-requests $n | grep -o 'requests=[0-9]*'
  # Until the indexer and the store settle: no CPU used for a second.
  local last=-1 now
  while now=$(cpu_ticks $HV); [ "$now" != "$last" ]; do last=$now; sleep 1; done
  local hv=$(cpu_ticks $HV) target=$(cpu_ticks $TARGET_PID) started=$(date +%s%N)
  curl -sf -H 'Content-Type: application/json' "http://127.0.0.1:$port/api/forwarding/targets" \
    -d "{\"name\":\"alone\",\"url\":\"http://127.0.0.1:$PORT/api/webhooks/github\",\"start\":\"beginning\"}" >/dev/null
  TARGET=alone
  until [ "$(count_of $port backlog)" = 0 ] && [ "$(count_of $port inFlight)" = 0 ]; do sleep 0.01; done
  local took=$(( $(date +%s%N) - started ))
  hv=$(( $(cpu_ticks $HV) - hv )); target=$(( $(cpu_ticks $TARGET_PID) - target ))
  local delivered=$(target_field $port delivered)
  echo "forwarded $delivered stored deliveries in $(python3 -c "print(f'{$took / 1e9:.2f}')") s" \
    "($(python3 -c "print(round($delivered / ($took / 1e9)))")/s, concurrency 4); CPU µs per delivery:" \
    "hookvault $(per_delivery $hv $delivered), the target $(per_delivery $target $delivered)"
  kill $HV; wait $HV || true
  rm -rf "$WORK/data-alone"
  TARGET=127.0.0.1-$PORT-api-webhooks-github
}

echo; echo "== forwarding alone: stored deliveries sent to a target made afterwards, nothing else running"
alone

n=0
for pair in $(seq "$PAIRS"); do
  echo; run $((n += 1)) none
  echo; run $((n += 1)) with
done
[ "$PAIRS" -gt 0 ] || exit 0
echo
python3 - "$WORK/runs" <<'PY'
import sys
runs = [l.split() for l in open(sys.argv[1])]
none = [int(r) for m, r in runs if m == "none"]
with_ = [int(r) for m, r in runs if m == "with"]
pairs = ", ".join(f"{w}/{o} = {w / o:.3f}" for o, w in zip(none, with_))
print(f"ingest with one target / none, pair by pair: {pairs}; "
      f"all runs: {sum(with_)}/{sum(none)} = {sum(with_) / sum(none):.3f}")
PY
