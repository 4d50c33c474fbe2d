#!/usr/bin/env bash
# Reference check outside CI: score DOCS HellaSwag documents with assay and with Hugging Face
# transformers (the same GGUF dequantised to fp32), then compare item by item.
# Usage: bash bench/reference_check.sh [DOCS=200] [MODEL=default]
# With MODEL an F32 copy made by bench/dequantize_gguf.py, the comparison isolates the engine's
# own error from quantisation.
# Needs a Python venv with torch + transformers + gguf + accelerate (created at bench/.venv on first use, or
# set REF_PYTHON to an existing interpreter). Writes bench/results/reference_check.json.
set -euo pipefail
cd "$(dirname "$0")/.."
docs="${1:-200}"
model_arg="${2:-default}"
py=$(bash bench/ref_python.sh)
out=bench/.work/reference_check
rm -rf "$out"
cargo build --quiet --release
./target/release/assay run --no-cache --model "$model_arg" --tasks hellaswag --limit "$docs" --output-path "$out" --log-samples
samples=$(ls "$out"/*/samples_hellaswag_*.jsonl)
model=$(python3 -c "import json,glob; print(json.load(open(glob.glob('$out/*/results_*.json')[0]))['assay']['backend']['model_path'])")
mkdir -p bench/results
name=$(basename "$model" .gguf)
"$py" bench/reference_check.py "$samples" "$model" "bench/results/reference_check_$name.json"
