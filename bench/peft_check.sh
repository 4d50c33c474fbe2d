#!/usr/bin/env bash
# A PEFT LoRA adapter made by `peft` on the default model, scored by lm-eval's hf backend with
# peft (`--model_args ...,peft=DIR`: PeftModel forward, float32) and by assay with the adapter
# folder at run time (`--lora DIR`, on an F32 copy of the same GGUF) and merged (`assay lora
# merge --lora DIR`), on the same task file and documents; then the per-choice log-likelihoods
# and chosen answers compared (bench/lm_eval_native_compare.py --same-model).
#
#   bash bench/peft_check.sh [LIMIT]       # default 50 MMLU high school CS documents, 0-shot
#
# Needs bench/.venv with lm-eval, transformers and peft, and a release build. Writes
# bench/results/peft_check.json.
set -euo pipefail
cd "$(dirname "$0")/.."
limit="${1:-50}"
py=$(bash bench/ref_python.sh)
"$py" -c "import peft" 2>/dev/null || "$py" -m pip install -q peft
work=bench/.work/peft_check
rm -rf "$work"
mkdir -p "$work" bench/results
cargo build --release -q -p assay
model=$(python3 -c "import os; print(os.path.join(os.environ.get('ASSAY_CACHE_DIR', os.path.expanduser('~/.cache/assay')), 'models', 'gemma-3-270m-q4_k_m.gguf'))")
f32=bench/.work/gemma-3-270m-f32.gguf
if [ ! -f "$f32" ]; then
  "$py" bench/dequantize_gguf.py "$model" "$f32.partial" --type f32 >&2
  mv "$f32.partial" "$f32"
fi
adapter="$PWD/$work/adapter"
"$py" bench/peft_make_adapter.py "$(dirname "$model")" "$(basename "$model")" "$adapter" > "$work/make.log" 2>&1
task=mmlu_hscs_local
"$py" -m lm_eval --model hf \
  --model_args "pretrained=$(dirname "$model"),gguf_file=$(basename "$model"),dtype=float32,peft=$adapter" \
  --tasks "$task" --include_path bench/lm_eval_tasks --limit "$limit" --batch_size 8 --device cpu \
  --log_samples --output_path "$work/lm_eval" > "$work/lm_eval.log" 2>&1
export ASSAY_CACHE_DIR="$PWD/$work/cache"
mkdir -p "$ASSAY_CACHE_DIR/models"
ln -sf "$model" "$ASSAY_CACHE_DIR/models/"
# The task file names its CSV files relative to the repository root, as lm-eval reads them.
common=(--data-dir . --include-path bench/lm_eval_tasks --tasks "$task" --limit "$limit" --log-samples --no-record --no-cache)
target/release/assay run --model "$f32" --lora "$adapter" "${common[@]}" --output-path "$work/runtime" > "$work/runtime.log" 2>&1
target/release/assay lora merge --model "$f32" --lora "$adapter" -o "$work/merged.gguf" > "$work/merge.log" 2>&1
target/release/assay run --model "$work/merged.gguf" "${common[@]}" --output-path "$work/merged" > "$work/merged.log" 2>&1
target/release/assay run --model "$f32" "${common[@]}" --output-path "$work/base" > "$work/base.log" 2>&1
{
  echo "### assay --lora DIR (run time) vs lm-eval hf + peft"
  "$py" bench/lm_eval_native_compare.py --same-model "$work/lm_eval" "$work/runtime" "$task"
  echo "### assay lora merge --lora DIR vs lm-eval hf + peft"
  "$py" bench/lm_eval_native_compare.py --same-model "$work/lm_eval" "$work/merged" "$task"
  echo "### assay without the adapter vs lm-eval hf + peft (how far the adapter moves the scores)"
  "$py" bench/lm_eval_native_compare.py --same-model "$work/lm_eval" "$work/base" "$task"
} | tee "$work/table.txt"
"$py" - "$work/table.txt" "$limit" > bench/results/peft_check.json <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
names = ["assay --lora DIR (run time)", "assay lora merge --lora DIR", "assay, no adapter"]
print(json.dumps({"reference": "lm-eval 0.4 hf backend, float32, peft=ADAPTER (PeftModel forward)",
                  "assay_model": "gemma-3-270m F32 copy of the default GGUF", "limit": int(sys.argv[2]),
                  "adapter": "peft LoraConfig r=8, alpha=16, q/k/v/o/gate/up/down, B ~ N(0, 0.02)",
                  "rows": [dict(side=n, **r) for n, r in zip(names, rows)]}, indent=1))
PY
echo "wrote bench/results/peft_check.json"
