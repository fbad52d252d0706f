#!/bin/sh
# Builds the fuzz targets on stable Rust with libFuzzer's coverage instrumentation
# (the flags cargo-fuzz passes, minus the sanitizer, which needs nightly), then runs
# one on its corpus: fuzz/stable.sh TARGET [libFuzzer options, e.g. -max_total_time=60]
set -eu
cd "$(dirname "$0")"
target="$1"
shift
host="$(rustc -vV | sed -n 's/^host: //p')"
# --target keeps these flags off build scripts and proc macros.
RUSTFLAGS="--cfg fuzzing -Cpasses=sancov-module \
-Cllvm-args=-sanitizer-coverage-level=4 -Cllvm-args=-sanitizer-coverage-inline-8bit-counters \
-Cllvm-args=-sanitizer-coverage-pc-table -Cllvm-args=-sanitizer-coverage-trace-compares" \
    cargo build --release --target "$host" --bin "$target"
mkdir -p "corpus/$target" "artifacts/$target"
exec "${CARGO_TARGET_DIR:-target}/$host/release/$target" \
    -artifact_prefix="artifacts/$target/" "corpus/$target" "$@"
