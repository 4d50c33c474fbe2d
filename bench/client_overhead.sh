#!/usr/bin/env bash
# Client overhead: requests per second that assay's OpenAI-compatible client sustains against a
# stand-in that answers at once (made-up log-probabilities), at concurrency 1, 16 and 128, side
# by side with lm-eval's `local-completions` client against the same stand-in, on DOCS
# HellaSwag documents (4 log-likelihood requests each, token-id prompts for both). Throughput
# is measured by the server: answers / (last answer - first request), so task loading is not
# counted for either tool. Runs alternate A B A B.
# Usage: bash bench/client_overhead.sh [DOCS=500] [ROUNDS=2]
# Needs lm-eval (LM_EVAL_PYTHON, default /work/venv-ref/bin/python) and the Hugging Face
# tokenizer of the model in bench/.work/gemma-3-270m-hf (bench/ref_python.sh's reference setup).
# Writes bench/results/client_overhead.json.
set -euo pipefail
cd "$(dirname "$0")/.."
docs="${1:-500}"
rounds="${2:-2}"
py="${LM_EVAL_PYTHON:-/work/venv-ref/bin/python}"
cargo build --quiet --release
mkdir -p bench/.work bench/results
source bench/standin_lib.sh
port=18251
rows=()
measure() { # TOOL CONCURRENCY -> prints "answered seconds"
  local tool=$1 c=$2
  start_standin "$port" --model-name gemma-3-270m --instant
  if [ "$tool" = assay ]; then
    ./target/release/assay run --backend openai --base-url "http://localhost:$port/v1" \
      --model-name gemma-3-270m --tokenizer default --tasks hellaswag --limit "$docs" \
      --no-cache --concurrency "$c" > /dev/null 2>&1
  else
    HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 "$py" -m lm_eval --model local-completions \
      --model_args "model=gemma-3-270m,base_url=http://localhost:$port/v1/completions,num_concurrent=$c,max_retries=3,tokenizer_backend=huggingface,tokenizer=bench/.work/gemma-3-270m-hf" \
      --tasks hellaswag_local --include_path bench/lm_eval_tasks --limit "$docs" > /dev/null 2>&1
  fi
  curl -s "localhost:$port/stats" | python3 -c 'import json,sys; s=json.load(sys.stdin); print(s["answered"], s["seconds_first_request_to_last_answer"])'
  stop_standins
}
for round in $(seq "$rounds"); do
  for c in 1 16 128; do
    for tool in assay lm-eval; do
      read -r answered seconds < <(measure "$tool" "$c")
      echo "round $round, concurrency $c, $tool: $answered answers in ${seconds}s" >&2
      rows+=("{\"round\": $round, \"concurrency\": $c, \"tool\": \"$tool\", \"answered\": $answered, \"seconds\": $seconds}")
    done
  done
done
python3 - "[$(IFS=,; echo "${rows[*]}")]" "$(lscpu | sed -n 's/^Model name: *//p')" <<'PY'
import json, statistics, sys
rows, machine = json.loads(sys.argv[1]), sys.argv[2]
for r in rows:
    r["requests_per_second"] = r["answered"] / max(r["seconds"], 1e-9)
table = []
print("| concurrency | assay req/s | lm-eval local-completions req/s | ratio |")
print("|---:|---:|---:|---:|")
for c in (1, 16, 128):
    med = lambda tool: statistics.median(r["requests_per_second"] for r in rows if r["concurrency"] == c and r["tool"] == tool)
    a, l = med("assay"), med("lm-eval")
    table.append({"concurrency": c, "assay": a, "lm_eval": l, "ratio": a / l})
    print(f"| {c} | {a:.0f} | {l:.0f} | {a / l:.1f}x |")
json.dump({"machine": machine, "median": table, "runs": rows}, open("bench/results/client_overhead.json", "w"), indent=2)
PY
