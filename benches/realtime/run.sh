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

echo "== no subscribers: closed loop, 32 connections (twice: the first run warms up)"
$LOADGEN --url $URL --secret bench --seconds 8
$LOADGEN --url $URL --secret bench --seconds 8

echo "== 1,000 subscribers attached (to a repository without traffic): same load"
node benches/realtime/subscribers.mjs $URL 1000 14 quiet/repo > /dev/null &
SUBSCRIBERS=$!
sleep 5
$LOADGEN --url $URL --secret bench --seconds 8
wait $SUBSCRIBERS || true

echo "== 1,000 subscribers receiving every event, open loop 10 deliveries/s"
node benches/realtime/subscribers.mjs $URL 1000 16 Codertocat/Hello-World,octo-org/octo-repo &
SUBSCRIBERS=$!
sleep 5
$LOADGEN --url $URL --secret bench --seconds 8 --rate 10
wait $SUBSCRIBERS || true
