#!/usr/bin/env bash
# The customer's format test on the default model: bench/prompts/scenarios.jsonl (10 scenario
# prompts written for assay) x the four built-in formats through `assay generate`, an arc_easy
# run (LIMIT documents) into the same folder's benchmarks/, then `assay index`. Prints the
# format comparison and writes bench/results/generate_formats.json (the index's JSON).
# Usage: bash bench/generate_formats.sh [MAX_NEW_TOKENS=256] [LIMIT=50]
set -euo pipefail
cd "$(dirname "$0")/.."
max_new="${1:-256}"
limit="${2:-50}"
cargo build --quiet --release
out=bench/.work/formats/validation
rm -rf "$out" && mkdir -p bench/results
./target/release/assay generate --prompts bench/prompts/scenarios.jsonl --max-new-tokens "$max_new" --out "$out"
./target/release/assay run --tasks arc_easy --limit "$limit" --output-path "$out/benchmarks" --log-samples \
  --no-record --no-cache > /dev/null
./target/release/assay index "$out"
sed -n '/## Format comparison/,$p' "$out/DATA_MAPPING.md"
cp "$out/data_mapping.json" bench/results/generate_formats.json
