#!/usr/bin/env bash
# What the ingest filter costs, in one run on one machine: durable ingest at 32
# connections without rules, then with rules that every delivery is matched against
# and none of them turns away (an allow rule taking every event, deny rules on an
# organization, a repository glob, an event and an action the load does not send),
# so both runs store the same deliveries and the difference is the rule matching.
# The two alternate twice, each on a fresh data directory after a 5 s warm-up.
#
#   benches/filters.sh [SECONDS]     # default 10 s per measured run
#
# Needs the Rust toolchain and curl.
source "$(dirname "$0")/common/prologue.sh"
SECONDS_RUN=${1:-10}
machine
ALLOW='event:*'
DENY='organization:no-such-org,repository:no-such-org/sandbox-*,event:no_such_event,action:no_such_action'
echo "rules: HOOKVAULT_INGEST_ALLOW=$ALLOW HOOKVAULT_INGEST_DENY=$DENY"

rate_of() { sed -nE 's/.*rate=([0-9]+)\/s.*/\1/p' "$1"; }

measure() { # name port [env…] → prints the rate
  local name=$1 port=$2; shift 2
  env "$@" target/release/hookvault --data-dir "$WORK/$name" --listen 127.0.0.1:$port --secret bench >/dev/null 2>&1 &
  local hv=$!
  wait_healthy $port
  $LOADGEN --url http://127.0.0.1:$port --secret bench --seconds 5 --max-requests 200000 >/dev/null
  sleep 2
  $LOADGEN --url http://127.0.0.1:$port --secret bench --seconds "$SECONDS_RUN" --max-requests 600000 > "$WORK/$name.txt"
  local ignored
  ignored=$(curl -s "http://127.0.0.1:$port/metrics" | awk '/^hookvault_deliveries_ignored_total/ {n += $2} END {print n + 0}')
  kill $hv; wait $hv || true
  echo "$name: $(rate_of "$WORK/$name.txt")/s (ignored: $ignored)" >&2
  rate_of "$WORK/$name.txt"
}

declare -a without with
for round in 1 2; do
  without+=("$(measure "none-$round" $((3960 + round)))")
  with+=("$(measure "rules-$round" $((3970 + round)) HOOKVAULT_INGEST_ALLOW="$ALLOW" HOOKVAULT_INGEST_DENY="$DENY")")
done
python3 - "${without[@]}" "${with[@]}" <<'PY'
import sys
n = (len(sys.argv) - 1) // 2
without, with_ = [int(x) for x in sys.argv[1:1 + n]], [int(x) for x in sys.argv[1 + n:]]
print(f"without rules: {without} /s, mean {sum(without) / n:.0f}")
print(f"with rules:    {with_} /s, mean {sum(with_) / n:.0f}")
print(f"ratio with / without: {sum(with_) / sum(without):.3f} "
      f"(the runs without rules differ from each other by {abs(without[0] - without[1]) / max(without):.1%})")
PY
