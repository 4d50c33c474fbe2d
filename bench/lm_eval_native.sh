#!/usr/bin/env bash
# lm-eval's own task files, unchanged, run by lm-eval 0.4.x and by assay against the same
# stand-in Hub (assay-hub-standin, repositories built from ../shared/data in the real layouts),
# same --limit, per-sample logs on; then every document's rendered request arguments (context
# and continuation strings) and target compared byte for byte (bench/lm_eval_native_compare.py).
#
#   bash bench/lm_eval_native.sh [LIMIT]      # default 20 documents per task (GSM8K: 10)
#   LM_EVAL_MODEL=hf bash bench/lm_eval_native.sh 20
#   GROUP=leaderboard [GEN_KWARGS=max_gen_toks=64] [LM_EVAL_MODEL=hf] bash bench/lm_eval_native.sh 5
#
# By default lm-eval runs its `dummy` model (prompts and targets do not depend on the model) and
# assay the default model. With LM_EVAL_MODEL=hf both score the same weights at F32 (lm-eval's hf
# backend on the default GGUF dequantised by transformers, assay on an F32 copy made by
# bench/dequantize_gguf.py), and the table adds how often both choose the same answer.
# Needs bench/.venv (bench/ref_python.sh creates it) and a release build.
# Writes bench/results/lm_eval_native[_hf].json and prints the table.
set -euo pipefail
cd "$(dirname "$0")/.."
limit="${1:-20}"
py=$(bash bench/ref_python.sh)
work=bench/.work/lm_eval_native
rm -rf "$work"
mkdir -p "$work" bench/results
cargo build --release -q -p assay -p assay-hub-standin
mode="${LM_EVAL_MODEL:-dummy}"
model=$(python3 -c "import os; print(os.path.join(os.environ.get('ASSAY_CACHE_DIR', os.path.expanduser('~/.cache/assay')), 'models', 'gemma-3-270m-q4_k_m.gguf'))")
lm_model=(--model dummy)
assay_model=(--model default)
compare_flags=()
suffix=""
if [ "$mode" = hf ]; then
  f32=bench/.work/gemma-3-270m-f32.gguf
  if [ ! -f "$f32" ]; then
    "$py" bench/dequantize_gguf.py "$model" "$f32.partial" --type f32 >&2
    mv "$f32.partial" "$f32"
  fi
  lm_model=(--model hf --model_args "pretrained=$(dirname "$model"),gguf_file=$(basename "$model"),dtype=float32" --batch_size 8 --device cpu)
  assay_model=(--model "$f32")
  compare_flags=(--same-model)
  suffix=_hf
fi

source bench/hub_standin_lib.sh
start_hub_standin "$work"
export HF_HOME="$PWD/$work/hf" HF_HUB_DISABLE_TELEMETRY=1 HF_DATASETS_TRUST_REMOTE_CODE=0
# `!function` hooks run in the Python that has lm-eval and its dependencies.
export ASSAY_PYTHON="$py"
echo "stand-in Hub at $HF_ENDPOINT"

tasks_dir=$("$py" -c 'import lm_eval, os; print(os.path.join(os.path.dirname(lm_eval.__file__), "tasks"))')
lm_version=$("$py" -c 'import importlib.metadata as m; print(m.version("lm_eval"))')
# The last four use few-shot samples listed in the file (gsm8k_cot, gsm8k_cot_llama), a
# gen_prefix ("The best answer is": arc_challenge_chat, arc_challenge_llama) and hooks.
tasks=(arc_easy arc_challenge gsm8k mmlu_high_school_computer_science mmlu_astronomy
       mmlu_college_physics piqa winogrande truthfulqa_mc2
       gsm8k_cot gsm8k_cot_llama arc_challenge_chat arc_challenge_llama)
# TASKS="a b" runs only those.
[ -n "${TASKS:-}" ] && read -r -a tasks <<< "$TASKS"

# GROUP=leaderboard: the whole group in one run per tool, each timed; then compared on every
# task the group holds. IFEval's checker splits sentences with NLTK's punkt_tab, written from
# a package registry (scripts/punkt_tab.py); the gated GPQA opens with the stand-in's token.
if [ -n "${GROUP:-}" ]; then
  export NLTK_DATA="$PWD/bench/.work/nltk_data" HF_TOKEN=hf_standin_gated_token
  "$py" scripts/punkt_tab.py "$NLTK_DATA"
  t0=$(date +%s.%N)
  # GEN_KWARGS=max_gen_toks=64 caps generations for both tools alike (CPU time).
  gen=(); agen=()
  [ -n "${GEN_KWARGS:-}" ] && gen=(--gen_kwargs "$GEN_KWARGS") && agen=(--gen-kwargs "$GEN_KWARGS")
  "$py" -m lm_eval "${lm_model[@]}" --tasks "$GROUP" --limit "$limit" --log_samples "${gen[@]}" \
    --output_path "$work/lm_eval" > "$work/lm_eval_$GROUP.log" 2>&1 \
    || echo "   lm-eval failed: see $work/lm_eval_$GROUP.log"
  t1=$(date +%s.%N)
  target/release/assay run "${assay_model[@]}" --include-path "$tasks_dir" --tasks "$GROUP" --limit "$limit" \
    "${agen[@]}" --log-samples --output-path "$work/assay" --no-record --no-cache \
    > "$work/assay_$GROUP.log" 2>&1 \
    || echo "   assay failed: see $work/assay_$GROUP.log"
  t2=$(date +%s.%N)
  read -r -a tasks <<< "$(find "$work/lm_eval" -name 'samples_*.jsonl' | sed -E 's|.*/samples_(.*)_[0-9T:.-]+\.jsonl|\1|' | sort -u | tr '\n' ' ')"
  printf 'wall time, --tasks %s --limit %s: lm-eval %.1f s, assay %.1f s\n' "$GROUP" "$limit" \
    "$(echo "$t1 - $t0" | bc)" "$(echo "$t2 - $t1" | bc)" | tee "$work/times.txt"
  suffix="${suffix}_$GROUP"
else
for task in "${tasks[@]}"; do
  n=$limit
  case "$task" in gsm8k*) n=$(( limit < 10 ? limit : 10 ));; esac
  echo "== $task (limit $n)"
  "$py" -m lm_eval "${lm_model[@]}" --tasks "$task" --limit "$n" --log_samples \
    --output_path "$work/lm_eval" > "$work/lm_eval_$task.log" 2>&1 \
    || echo "   lm-eval failed: see $work/lm_eval_$task.log"
  # One task per run: a task assay refuses (a Python hook) does not stop the others.
  target/release/assay run "${assay_model[@]}" --include-path "$tasks_dir" --tasks "$task" --limit "$n" \
    --log-samples --output-path "$work/assay" --no-record --no-cache \
    > "$work/assay_$task.log" 2>&1 \
    || echo "   assay: $(grep -m1 '^error' "$work/assay_$task.log" || tail -1 "$work/assay_$task.log")"
done

fi

"$py" bench/lm_eval_native_compare.py "${compare_flags[@]}" "$work/lm_eval" "$work/assay" "${tasks[@]}" | tee "$work/table.txt"
"$py" - "$work/table.txt" "$lm_version" "$limit" "$mode" "$work/times.txt" > "bench/results/lm_eval_native$suffix.json" <<'PY'
import json, os, sys
lines = open(sys.argv[1]).read().splitlines()
rows = [json.loads(l) for l in lines if l.startswith("{")]
same = sys.argv[4] == "hf"
times = open(sys.argv[5]).read().strip() if os.path.exists(sys.argv[5]) else None
print(json.dumps({"lm_eval_version": sys.argv[2], "limit": int(sys.argv[3]),
                  "lm_eval_model": "hf, gemma-3-270m GGUF dequantised to float32" if same else "dummy",
                  "assay_model": "gemma-3-270m F32 copy" if same else "gemma-3-270m Q4_K_M",
                  "wall_time": times, "tasks": rows}, indent=1))
PY
echo "wrote bench/results/lm_eval_native$suffix.json"
