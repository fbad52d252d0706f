#!/usr/bin/env bash
# Two or more builds of hookvault under the same durable-ingest load, alternating, so
# a change worth a few per cent shows against the machine's drift: the no-op
# receiver once, then ROUNDS times each binary on a fresh data dir (5 s warm-up, then
# 10 s closed loop at 32 connections), with the CPU hookvault spent per delivery
# (utime + stime from /proc over the run and 1 s after it, when the index catches up).
#
#   benches/compare.sh ROUNDS BINARY...     # e.g. 4 /tmp/before /tmp/after
source "$(dirname "$0")/common/prologue.sh"
NOOP=$(bench noop_receiver)
ROUNDS=$1
shift
machine
hz=$(getconf CLK_TCK)
$NOOP 127.0.0.1:3911 bench & NOOP_PID=$!
sleep 0.5
echo "no-op receiver: $($LOADGEN --url http://127.0.0.1:3911 --secret bench --seconds 10 | head -1)"
kill $NOOP_PID
for round in $(seq "$ROUNDS"); do
  for binary in "$@"; do
    dir=$(mktemp -d -p "$WORK")
    "$binary" --data-dir "$dir" --listen 127.0.0.1:3912 --secret bench >/dev/null 2>&1 & HV=$!
    wait_healthy 3912
    $LOADGEN --url http://127.0.0.1:3912 --secret bench --seconds 5 --max-requests 200000 >/dev/null
    sleep 1
    before=$(cpu_ticks $HV)
    run=$($LOADGEN --url http://127.0.0.1:3912 --secret bench --seconds 10 --max-requests 600000 | head -1)
    sleep 1
    after=$(cpu_ticks $HV)
    acked=$(sed -E 's/.*requests=([0-9]+).*/\1/' <<<"$run")
    echo "round $round, $binary: $run, CPU $(( (after - before) * 1000000 / hz / acked )) µs per delivery"
    kill $HV
    wait $HV 2>/dev/null || true
  done
done
