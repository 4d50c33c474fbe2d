#!/usr/bin/env bash
# assay against the engine floor on one task (see crates/assay-llama/examples/floor.rs).
# Usage: bash bench/floor.sh TASK [DOCS=100] [ROUNDS=2] [PARALLEL=8] [NUM_FEWSHOT]
# Prints a table; writes bench/results/floor_TASK[_Nshot].json. Run on a quiet machine.
set -euo pipefail
cd "$(dirname "$0")/.."
task="${1:?usage: bash bench/floor.sh TASK [DOCS] [ROUNDS] [PARALLEL] [NUM_FEWSHOT]}"
shots="${5:-}"
mkdir -p bench/results
cargo run --quiet --release -p assay-llama --example floor -- \
  "$task" "${2:-100}" "${3:-2}" "bench/results/floor_${task}${shots:+_${shots}shot}.json" "${4:-8}" $shots
