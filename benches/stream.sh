#!/usr/bin/env bash
# Streaming to NATS JetStream under load, in one run on one machine: durable ingest
# at 32 connections with streaming off, then on (a local `nats-server -js`, file
# storage), the ratio of the two, and with streaming on the sink's lag sampled from
# health every 100 ms, its publish rate during the run and how long it took to catch
# up afterwards (the tests, not this, check that nothing is lost or doubled).
#
#   benches/stream.sh [SECONDS]     # default 10 s per measured run
#
# Needs the Rust toolchain, curl, python3 and nats-server (Debian's package).
source "$(dirname "$0")/common/prologue.sh"
SECONDS_RUN=${1:-10}
NATS_SERVER=$(command -v nats-server || echo /usr/sbin/nats-server)
machine "$($NATS_SERVER --version)"

stream_field() { # port field → the health's stream.<field>
  curl -s "http://127.0.0.1:$1/api/webhooks/health" |
    python3 -c "import json,sys; print(json.load(sys.stdin)['data']['stream']['$2'])"
}
rate_of() { sed -nE 's/.*rate=([0-9]+)\/s.*/\1/p' "$1"; }
secs_of() { sed -nE 's/.* seconds=([0-9.]+) .*/\1/p' "$1"; }

$NATS_SERVER -js -a 127.0.0.1 -p 4333 -sd "$WORK/nats" >/dev/null 2>&1 & NATS=$!
sleep 1

run() { # name port [env…] → the measured run's output in $WORK/<name>.txt
  local name=$1 port=$2; shift 2
  env "$@" target/release/hookvault --data-dir "$WORK/$name" --listen 127.0.0.1:$port --secret bench 2>/dev/null &
  HV=$!
  wait_healthy $port
  $LOADGEN --url http://127.0.0.1:$port --secret bench --seconds 5 --max-requests 200000 >/dev/null
  sleep 2
}

echo; echo "== streaming off: 32 connections, closed loop, ${SECONDS_RUN} s (after a 5 s warm-up)"
run off 3931
hv_off=$(cpu_ticks $HV)
$LOADGEN --url http://127.0.0.1:3931 --secret bench --seconds "$SECONDS_RUN" --max-requests 600000 | tee "$WORK/off.txt"
hv_off=$(( $(cpu_ticks $HV) - hv_off ))
kill $HV; wait $HV || true

echo; echo "== streaming on (nats-server -js on loopback): the same load"
run on 3932 HOOKVAULT_NATS_URL=nats://127.0.0.1:4333
# The warm-up's deliveries are published before the measured run starts.
until [ "$(stream_field 3932 lag)" = 0 ]; do sleep 0.1; done
published_before=$(stream_field 3932 published)
( while kill -0 $HV 2>/dev/null; do stream_field 3932 lag 2>/dev/null || true; sleep 0.1; done > "$WORK/lag.txt" ) & SAMPLER=$!
hv_on=$(cpu_ticks $HV); nats_on=$(cpu_ticks $NATS)
$LOADGEN --url http://127.0.0.1:3932 --secret bench --seconds "$SECONDS_RUN" --max-requests 600000 | tee "$WORK/on.txt"
loaded=$(date +%s%N)
hv_on=$(( $(cpu_ticks $HV) - hv_on )); nats_on=$(( $(cpu_ticks $NATS) - nats_on ))
published_during=$(( $(stream_field 3932 published) - published_before ))
until [ "$(stream_field 3932 lag)" = 0 ]; do sleep 0.01; done
caught_up=$(date +%s%N)
kill $SAMPLER 2>/dev/null || true
published_total=$(( $(stream_field 3932 published) - published_before ))
python3 - "$WORK/lag.txt" "$(rate_of "$WORK/off.txt")" "$(rate_of "$WORK/on.txt")" \
  "$published_during" "$published_total" "$loaded" "$caught_up" "$(secs_of "$WORK/on.txt")" \
  "$hv_off" "$hv_on" "$nats_on" "$(getconf CLK_TCK)" <<'PY'
import sys
lags = sorted(int(l) for l in open(sys.argv[1]) if l.strip().isdigit())
off, on, during, total = (int(x) for x in sys.argv[2:6])
loaded, caught_up = (int(x) / 1e9 for x in sys.argv[6:8])
secs = float(sys.argv[8])
hv_off, hv_on, nats_on, hz = (int(x) for x in sys.argv[9:13])
p = lambda q: lags[min(len(lags) - 1, int(q * len(lags)))] if lags else float("nan")
print(f"ingest with streaming on / off: {on}/{off} = {on / off:.3f}")
print(f"published during the run: {during} ({during / secs:.0f}/s); "
      f"all {total} published {caught_up - loaded:.2f} s after the load ended")
per = lambda ticks, n: ticks * 1e6 / hz / max(1, n * secs)
print(f"CPU µs per delivery: hookvault off {per(hv_off, off):.1f}, on {per(hv_on, on):.1f}; "
      f"nats-server {per(nats_on, on):.1f}")
print(f"stream lag over {len(lags)} samples (deliveries): p50 {p(.5)} p99 {p(.99)} max {lags[-1] if lags else 'nan'}")
PY
kill $HV; wait $HV || true
