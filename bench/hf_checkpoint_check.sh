#!/usr/bin/env bash
# A Hugging Face checkpoint folder (config.json + model.safetensors + tokenizer files, as
# save_pretrained writes them) of the default model, scored by lm-eval's hf backend (transformers,
# float32) and by assay on the folder itself (`--model hf --model_args pretrained=DIR,dtype=float32`,
# lm-eval's spelling: assay converts the checkpoint to GGUF natively, once, and caches it), on the
# same task file and documents; then the per-choice log-likelihoods and chosen answers compared
# (bench/lm_eval_native_compare.py --same-model).
#
#   bash bench/hf_checkpoint_check.sh [LIMIT]     # default 200 HellaSwag documents, 0-shot
#
# The checkpoint is bench/.work/gemma3-hf-f32, written by bench/hf_make_checkpoint.py from the
# default GGUF if missing. Needs bench/.venv with lm-eval and transformers, and a release build
# (target/release/assay; this script does not build). Writes bench/results/hf_checkpoint_check.json.
# The architecture sweep over tiny random checkpoints is bench/hf_arch_sweep.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
limit="${1:-200}"
py=$(bash bench/ref_python.sh)
work=bench/.work/hf_checkpoint_check
rm -rf "$work"
mkdir -p "$work" bench/results
model=$(python3 -c "import os; print(os.path.join(os.environ.get('ASSAY_CACHE_DIR', os.path.expanduser('~/.cache/assay')), 'models', 'gemma-3-270m-q4_k_m.gguf'))")
ckpt="$PWD/bench/.work/gemma3-hf-f32"
if [ ! -f "$ckpt/config.json" ]; then
  "$py" bench/hf_make_checkpoint.py "$(dirname "$model")" "$(basename "$model")" "$ckpt.partial" --dtype float32 \
    > "$work/make.log" 2>&1
  rm -rf "$ckpt"
  mv "$ckpt.partial" "$ckpt"
fi
task=hellaswag_local
echo "lm-eval hf (float32) on $ckpt, $limit documents" >&2
"$py" -m lm_eval --model hf --model_args "pretrained=$ckpt,dtype=float32" \
  --tasks "$task" --include_path bench/lm_eval_tasks --limit "$limit" --batch_size 8 --device cpu \
  --log_samples --output_path "$work/lm_eval" > "$work/lm_eval.log" 2>&1
export ASSAY_CACHE_DIR="$PWD/$work/cache"
mkdir -p "$ASSAY_CACHE_DIR/models"
ln -sf "$model" "$ASSAY_CACHE_DIR/models/"
echo "assay --model hf --model_args pretrained=$ckpt,dtype=float32" >&2
# The task file names its data file relative to the repository root, as lm-eval reads it.
/usr/bin/time -v target/release/assay run --model hf --model_args "pretrained=$ckpt,dtype=float32" \
  --data-dir . --include-path bench/lm_eval_tasks --tasks "$task" --limit "$limit" \
  --log-samples --no-record --no-cache --output-path "$work/assay" > "$work/assay.log" 2> "$work/assay.err"
{
  echo "### assay --model hf --model_args pretrained=DIR,dtype=float32 vs lm-eval hf (float32)"
  "$py" bench/lm_eval_native_compare.py --same-model "$work/lm_eval" "$work/assay" "$task"
} | tee "$work/table.txt"
"$py" - "$work/table.txt" "$limit" "$work/assay.err" > bench/results/hf_checkpoint_check.json <<'PY'
import json, os, re, sys
def binary():
    import datetime, hashlib
    path = "target/release/assay"
    st = os.stat(path)
    return {"path": path, "sha256_12": hashlib.sha256(open(path, "rb").read()).hexdigest()[:12],
            "mtime": datetime.datetime.fromtimestamp(st.st_mtime, datetime.timezone.utc).isoformat(timespec="seconds")}


rows = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
for r in rows:
    if r.get("compared_choices"):
        r["same_choice_fraction"] = r["same_choice"] / r["compared_choices"]
err = open(sys.argv[3]).read()
wall = re.search(r"Elapsed \(wall clock\) time.*: (\S+)", err)
rss = re.search(r"Maximum resident set size \(kbytes\): (\d+)", err)
import importlib.metadata as m
print(json.dumps({
    "reference": f"lm-eval {m.version('lm_eval')} hf backend (transformers {m.version('transformers')}), "
                 "pretrained=CHECKPOINT_DIR, dtype=float32, batch 8, cpu",
    "assay": "assay run --model hf --model_args pretrained=CHECKPOINT_DIR,dtype=float32 "
             "(native HF checkpoint -> F32 GGUF conversion, llama.cpp)",
    "checkpoint": "bench/.work/gemma3-hf-f32: gemma-3-270m written by transformers save_pretrained "
                  "(bench/hf_make_checkpoint.py, float32)",
    "assay_binary": binary(),
    "task": "hellaswag_local (bench/lm_eval_tasks), 0-shot", "limit": int(sys.argv[2]),
    "assay_wall_clock_incl_conversion": wall.group(1) if wall else None,
    "assay_max_rss_kb": int(rss.group(1)) if rss else None,
    "target": "same chosen answer 100%, mean |dlogprob| <= 0.01 nats",
    "rows": [dict(side="assay --model hf --model_args pretrained=DIR,dtype=float32", **r) for r in rows]},
    indent=1))
PY
echo "wrote bench/results/hf_checkpoint_check.json"
