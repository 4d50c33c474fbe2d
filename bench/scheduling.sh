#!/usr/bin/env bash
# HellaSwag scheduling benchmark: shared-prefix vs naive scoring and the engine floor.
# Usage: bash bench/scheduling.sh [DOCS=200] [ROUNDS=2]
# Prints a table; writes bench/results/scheduling.json. Run on a quiet machine.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p bench/results
cargo run --quiet --release -p assay-engine --example scheduling -- "${1:-200}" "${2:-2}" bench/results/scheduling.json
