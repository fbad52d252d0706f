# Sourced first by the bench scripts: stop at the first error, run from the
# repository, build the release binary and benches, and give the script what each of
# them needs: `bench NAME` (a bench's binary), `$LOADGEN`, `$WORK` (a directory
# removed on exit, when every background job is killed too), `wait_healthy PORT`,
# `cpu_ticks PID` and `machine [EXTRA]` (the line that dates a run).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[1]}")/.."
cargo build --release --benches --bins --locked 2>&1 | tail -1
bench() { ls -t target/release/deps/"$1"-* | grep -v '\.d$' | head -1; }
LOADGEN=$(bench loadgen)
WORK=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$WORK"' EXIT
wait_healthy() { until curl -sf "http://127.0.0.1:$1/api/webhooks/health" >/dev/null; do sleep 0.01; done; }
cpu_ticks() { awk '{print $14 + $15}' /proc/$1/stat; } # utime + stime
machine() { echo "machine: $(nproc) cores, $(date -u +%F), commit $(git rev-parse --short HEAD)${1:+, $1}"; }
