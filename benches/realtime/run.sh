#!/usr/bin/env bash
# Ingest with and without 1,000 Socket.IO subscribers attached, and the latency of
# fan-out at a steady rate. Needs `cargo build --release --benches --bins` and
# `npm ci --prefix tests/clients/js` first.
set -euo pipefail
cd "$(dirname "$0")/../.."
LOADGEN=$(ls -t target/release/deps/loadgen-* | grep -v '\.d$' | head -1)
DATA=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null; rm -rf "$DATA"' EXIT
target/release/hookvault --data-dir "$DATA" --listen 127.0.0.1:3903 --secret bench 2>/dev/null &
sleep 1
URL=http://127.0.0.1:3903
# The generator builds its deliveries before its clock starts (seconds, at 60,000
# per second of run): capped alike for every closed-loop run, and the subscribers
# are stopped only once the load is over, so they are attached for all of it.
LOAD="--url $URL --secret bench --seconds 8 --max-requests 150000"

# Security alerts go to every connected client (README "Live events"): 17 of the 329
# fixtures, so with 1,000 clients the full mix fans each of them out 1,000 times.
# The same types as `is_security_alert` in src/realtime/messages.rs.
SECURITY=code_scanning_alert,secret_scanning_alert,secret_scanning_alert_location,dependabot_alert,repository_vulnerability_alert,security_advisory,repository_advisory,security_and_analysis
QUIET="$LOAD --exclude-events $SECURITY"

echo "== no subscribers: closed loop, 32 connections (a warm-up, then without the security alerts, then the full mix)"
$LOADGEN $LOAD > /dev/null
$LOADGEN $QUIET
$LOADGEN $LOAD

echo "== 1,000 subscribers attached (to a repository without traffic): without the security alerts, then the full mix"
node benches/realtime/subscribers.mjs $URL 1000 600 quiet/repo &
SUBSCRIBERS=$!
sleep 5
$LOADGEN $QUIET
$LOADGEN $LOAD
kill -TERM $SUBSCRIBERS; wait $SUBSCRIBERS || true
# Live messages the fan-out skipped and clients dropped for not keeping up, so far.
curl -s $URL/metrics | grep -E '^hookvault_socketio_(skipped_broadcasts|dropped_clients) '

echo "== no subscribers again: without the security alerts"
sleep 2
$LOADGEN $QUIET

echo "== 1,000 subscribers receiving every event, open loop 10 deliveries/s"
node benches/realtime/subscribers.mjs $URL 1000 600 Codertocat/Hello-World,octo-org/octo-repo &
SUBSCRIBERS=$!
sleep 5
$LOADGEN --url $URL --secret bench --seconds 8 --rate 10
sleep 1 # the last deliveries' messages
kill -TERM $SUBSCRIBERS; wait $SUBSCRIBERS || true
