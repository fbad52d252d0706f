#!/bin/sh
# Seeds fuzz/corpus/<target>/ (git-ignored) from fixtures/ and a few hand-picked
# query strings. Inputs follow each target's layout in src/fuzzing/.
set -eu
cd "$(dirname "$0")"
for target in ingest_request signature payload query_params search_query; do
    mkdir -p "corpus/$target"
done
for fixture in ../fixtures/*/*.json; do
    name="$(basename "$(dirname "$fixture")")-$(basename "$fixture" .json)"
    cp "$fixture" "corpus/payload/$name"
    # flags 0x15: one secret, GitHub headers, signed right; secret "s"; no extra
    # headers; signer 0. Then 0x1d: the same body form-encoded.
    { printf '\025\001s\000\000'; cat "$fixture"; } >"corpus/ingest_request/$name"
    { printf '\035\001s\000\000'; cat "$fixture"; } >"corpus/ingest_request/$name-form"
    # secret "s", no header, bit 0, the body.
    { printf '\001s\000\000\000'; cat "$fixture"; } >"corpus/signature/$name"
done
n=0
for query in \
    'limit=10&offset=20&status=failed&processed=false' \
    'startDate=2024-01-01&endDate=2024-01-02T00:00:00Z&repository=octo/app' \
    'hours=48&sort=recent' \
    'q=parser&sort=newest&limit=5' \
    'q=event:push AND NOT action:opened&startDate=2024-01-01' \
    'q="flux capacitor" OR (build AND repository:"octo/app")' \
    'q=received:[2020-01-01T00:00:00Z TO *]&offset=1'; do
    n=$((n + 1))
    printf '%s' "$query" >"corpus/query_params/$n"
    printf '%s' "$query" >"corpus/search_query/$n"
done
