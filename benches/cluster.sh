#!/usr/bin/env bash
# Cluster mode on one machine: durable ingest at 32 connections into one hookvault
# (the local log), then into three hookvault nodes in cluster mode on a three-server
# NATS cluster (an R3 log stream), the load spread evenly over the three nodes (three
# load generators of 11 connections each, 33 in all), all on this machine's cores.
# With the cluster, each node's apply lag (messages of the log it has not applied)
# is sampled from health every 100 ms, and the time until every node holds every
# delivery after the load is measured. The tests, not this, check that every node
# holds every delivery once.
#
#   benches/cluster.sh [SECONDS]     # default 10 s per measured run
#
# Needs the Rust toolchain, curl, python3 and nats-server: 2.10 or later
# (tests/nats/requirements.txt) runs with sync_interval: always, as the tests do and
# as power-loss durability needs; Debian's 2.9 does not know it and runs without.
source "$(dirname "$0")/common/prologue.sh"
SECONDS_RUN=${1:-10}
NATS_SERVER=$(command -v nats-server || echo /usr/sbin/nats-server)
SYNC=()
if python3 -c 'import re, sys; sys.exit(tuple(map(int, re.search(r"v(\d+)\.(\d+)", sys.argv[1]).groups())) < (2, 10))' \
  "$($NATS_SERVER --version)"; then
  echo "jetstream { sync_interval: always }" >"$WORK/sync.conf"
  SYNC=(-c "$WORK/sync.conf")
fi
machine "$($NATS_SERVER --version)${SYNC:+, sync_interval: always}"

health() { # port python-expression-over-data
  curl -s "http://127.0.0.1:$1/api/webhooks/health" |
    python3 -c "import json,sys; data=json.load(sys.stdin)['data']; print($2)"
}
stored_of() { sed -nE 's/.*statuses=\{.*"200": ([0-9]+).*/\1/p' "$1"; }
secs_of() { sed -nE 's/.* seconds=([0-9.]+) .*/\1/p' "$1"; }

start_node() { # name port [env…]
  local name=$1 port=$2; shift 2
  env "$@" target/release/hookvault --data-dir "$WORK/$name" --listen 127.0.0.1:$port --secret bench >"$WORK/$name.log" 2>&1 &
}

echo; echo "== one node, the local log: 32 connections, closed loop, ${SECONDS_RUN} s (after a 5 s warm-up)"
start_node single 3941; SINGLE=$!
wait_healthy 3941
$LOADGEN --url http://127.0.0.1:3941 --secret bench --seconds 5 --max-requests 200000 >/dev/null
sleep 2
single_cpu=$(cpu_ticks $SINGLE)
$LOADGEN --url http://127.0.0.1:3941 --secret bench --seconds "$SECONDS_RUN" --max-requests 600000 | tee "$WORK/single.txt"
single_cpu=$(( $(cpu_ticks $SINGLE) - single_cpu ))
kill $SINGLE; wait $SINGLE || true

echo; echo "== three nodes in cluster mode on a three-server NATS cluster (R3 log): the same load, spread"
ROUTES=(6301 6302 6303)
NATS_PIDS=()
for i in 0 1 2; do
  others=$(for j in 0 1 2; do if [ $j != $i ]; then printf 'nats://127.0.0.1:%s,' ${ROUTES[$j]}; fi; done)
  $NATS_SERVER -js -a 127.0.0.1 -p $((4341 + i)) -sd "$WORK/nats$i" -n "bench-$i" \
    --cluster_name bench --cluster nats://127.0.0.1:${ROUTES[$i]} --routes "${others%,}" "${SYNC[@]}" >/dev/null 2>&1 &
  NATS_PIDS+=($!)
done
URLS=nats://127.0.0.1:4341,nats://127.0.0.1:4342,nats://127.0.0.1:4343
NODE_PIDS=()
for i in 0 1 2; do
  start_node "node$i" $((3951 + i)) HOOKVAULT_NATS_URL=$URLS HOOKVAULT_NATS_MODE=cluster
  NODE_PIDS+=($!)
done
for i in 0 1 2; do wait_healthy $((3951 + i)); done
spread() { # seconds max-requests-each out-prefix: 11 connections on each node
  local pids=()
  for i in 0 1 2; do
    $LOADGEN --url http://127.0.0.1:$((3951 + i)) --secret bench --concurrency 11 --seconds "$1" \
      --max-requests "$2" > "$3$i.txt" &
    pids+=($!)
  done
  wait "${pids[@]}"
}
all_applied() { # → 1 when every node applied the whole log
  local a b c
  a=$(health 3951 "data['cluster']['lag']"); b=$(health 3952 "data['cluster']['lag']"); c=$(health 3953 "data['cluster']['lag']")
  [ "$a$b$c" = 000 ]
}
spread 5 70000 "$WORK/warm"
until all_applied; do sleep 0.1; done
( while true; do for i in 0 1 2; do health $((3951 + i)) "data['cluster']['lag']" 2>/dev/null || true; done; sleep 0.1; done > "$WORK/lag.txt" ) & SAMPLER=$!
cpu_before=0; for p in "${NODE_PIDS[@]}"; do cpu_before=$(( cpu_before + $(cpu_ticks $p) )); done
nats_before=0; for p in "${NATS_PIDS[@]}"; do nats_before=$(( nats_before + $(cpu_ticks $p) )); done
spread "$SECONDS_RUN" 200000 "$WORK/cluster"
loaded=$(date +%s%N)
cpu_after=0; for p in "${NODE_PIDS[@]}"; do cpu_after=$(( cpu_after + $(cpu_ticks $p) )); done
nats_after=0; for p in "${NATS_PIDS[@]}"; do nats_after=$(( nats_after + $(cpu_ticks $p) )); done
until all_applied; do sleep 0.01; done
caught_up=$(date +%s%N)
kill $SAMPLER 2>/dev/null || true
cat "$WORK"/cluster?.txt
python3 - "$WORK" "$(stored_of "$WORK/single.txt")" "$(secs_of "$WORK/single.txt")" \
  "$loaded" "$caught_up" "$single_cpu" "$(( cpu_after - cpu_before ))" "$(( nats_after - nats_before ))" \
  "$(getconf CLK_TCK)" <<'PY'
import re, sys
work = sys.argv[1]
single, single_secs = int(sys.argv[2]), float(sys.argv[3])
loaded, caught_up = (int(x) / 1e9 for x in sys.argv[4:6])
single_cpu, nodes_cpu, nats_cpu, hz = (int(x) for x in sys.argv[6:10])
stored, secs = 0, 0.0
for i in range(3):
    text = open(f"{work}/cluster{i}.txt").read()
    stored += int(re.search(r'"200": (\d+)', text).group(1))
    secs = max(secs, float(re.search(r"seconds=([0-9.]+)", text).group(1)))
lags = sorted(int(l) for l in open(f"{work}/lag.txt") if l.strip().isdigit())
p = lambda q: lags[min(len(lags) - 1, int(q * len(lags)))] if lags else float("nan")
print(f"one node: {single / single_secs:.0f} deliveries/s stored; three-node cluster: {stored / secs:.0f}/s "
      f"= {stored / secs / (single / single_secs):.3f} of one node")
per = lambda ticks, n, s: ticks * 1e6 / hz / max(1, n)
print(f"CPU µs per delivery: one node {per(single_cpu, single, single_secs):.0f}; "
      f"cluster: the three hookvault nodes {per(nodes_cpu, stored, secs):.0f}, "
      f"the three nats-servers {per(nats_cpu, stored, secs):.0f}")
print(f"apply lag per node over {len(lags)} samples (messages): p50 {p(.5)} p99 {p(.99)} max {lags[-1] if lags else 'nan'}; "
      f"every node held everything {caught_up - loaded:.2f} s after the load ended")
PY
kill "${NODE_PIDS[@]}" "${NATS_PIDS[@]}" 2>/dev/null || true
