#!/usr/bin/env bash
# lm-eval's own task files, unchanged, run by lm-eval 0.4.x and by assay against the same
# stand-in Hub (assay-hub-standin, repositories built from ../shared/data in the real layouts),
# same --limit, per-sample logs on; then every document's rendered request arguments (context
# and continuation strings) and target compared byte for byte (bench/lm_eval_native_compare.py).
#
#   bash bench/lm_eval_native.sh [LIMIT]      # default 20 documents per task (GSM8K: 10)
#
# lm-eval runs its `dummy` model (prompts and targets do not depend on the model); assay runs the
# default model. Needs bench/.venv (bench/ref_python.sh creates it) and a release build.
# Writes bench/results/lm_eval_native.json and prints the table.
set -euo pipefail
cd "$(dirname "$0")/.."
limit="${1:-20}"
py=$(bash bench/ref_python.sh)
work=bench/.work/lm_eval_native
rm -rf "$work"
mkdir -p "$work" bench/results
cargo build --release -q -p assay -p assay-hub-standin

target/release/assay-hub-standin --data-dir ../shared/data --root "$work/hub" --port 0 \
  > "$work/hub.url" 2> "$work/hub.log" &
hub_pid=$!
trap 'kill $hub_pid 2>/dev/null || true' EXIT
for _ in $(seq 1 120); do [ -s "$work/hub.url" ] && break; sleep 0.5; done
export HF_ENDPOINT
HF_ENDPOINT=$(head -1 "$work/hub.url")
export HF_HOME="$PWD/$work/hf" HF_HUB_DISABLE_TELEMETRY=1 HF_DATASETS_TRUST_REMOTE_CODE=0
# `!function` hooks run in the Python that has lm-eval and its dependencies.
export ASSAY_PYTHON="$py"
echo "stand-in Hub at $HF_ENDPOINT"

tasks_dir=$("$py" -c 'import lm_eval, os; print(os.path.join(os.path.dirname(lm_eval.__file__), "tasks"))')
lm_version=$("$py" -c 'import importlib.metadata as m; print(m.version("lm_eval"))')
tasks=(arc_easy arc_challenge gsm8k mmlu_high_school_computer_science mmlu_astronomy
       mmlu_college_physics piqa winogrande truthfulqa_mc2)

for task in "${tasks[@]}"; do
  n=$limit
  [ "$task" = gsm8k ] && n=$(( limit < 10 ? limit : 10 ))
  echo "== $task (limit $n)"
  "$py" -m lm_eval --model dummy --tasks "$task" --limit "$n" --log_samples \
    --output_path "$work/lm_eval" > "$work/lm_eval_$task.log" 2>&1 \
    || echo "   lm-eval failed: see $work/lm_eval_$task.log"
  # One task per run: a task assay refuses (a Python hook) does not stop the others.
  target/release/assay run --include-path "$tasks_dir" --tasks "$task" --limit "$n" \
    --log-samples --output-path "$work/assay" --no-record --no-cache \
    > "$work/assay_$task.log" 2>&1 \
    || echo "   assay: $(grep -m1 '^error' "$work/assay_$task.log" || tail -1 "$work/assay_$task.log")"
done

"$py" bench/lm_eval_native_compare.py "$work/lm_eval" "$work/assay" "${tasks[@]}" | tee "$work/table.txt"
"$py" - "$work/table.txt" "$lm_version" "$limit" > bench/results/lm_eval_native.json <<'PY'
import json, sys
lines = open(sys.argv[1]).read().splitlines()
rows = [json.loads(l) for l in lines if l.startswith("{")]
print(json.dumps({"lm_eval_version": sys.argv[2], "limit": int(sys.argv[3]),
                  "lm_eval_model": "dummy", "assay_model": "gemma-3-270m Q4_K_M", "tasks": rows}, indent=1))
PY
echo "wrote bench/results/lm_eval_native.json"
