#!/usr/bin/env bash
# Check outside CI: assay's scores through a real third-party OpenAI-compatible server,
# llama-cpp-python's (`llama_cpp.server`, which builds llama.cpp from source: slow), serving the
# same GGUF, against the embedded backend's. Compares ARC-Easy and HellaSwag log-likelihoods and
# greedy GSM8K texts, request by request.
# Usage: bash bench/served_check.sh [DOCS=8] [MODEL=default]
#   (llama-cpp-python's echo path is slow: it sorts the whole vocabulary in Python for every
#   echoed token, 10-20 s per request with Gemma's 262k-token vocabulary on 2 cores, so the
#   documents are few and requests go one at a time.)
#   MODEL: a GGUF path; an F32 copy (bench/dequantize_gguf.py) isolates the engines from
#   quantisation (Q4_K kernels round activations, differently across llama.cpp versions).
# Needs llama-cpp-python[server]: set LCP_PYTHON to an interpreter that has it, or one is
# installed into bench/.work/venv-lcp on first use. Writes bench/results/served_check_<model>.json.
set -euo pipefail
cd "$(dirname "$0")/.."
docs="${1:-8}"
model_arg="${2:-default}"
model=$([ "$model_arg" = default ] && echo "$HOME/.cache/assay/models/gemma-3-270m-q4_k_m.gguf" || echo "$model_arg")
py="${LCP_PYTHON:-bench/.work/venv-lcp/bin/python}"
if ! "$py" -c "import llama_cpp.server" 2>/dev/null; then
  python3 -m venv bench/.work/venv-lcp
  CMAKE_ARGS="-DGGML_NATIVE=ON" bench/.work/venv-lcp/bin/pip install 'llama-cpp-python[server]'
  py=bench/.work/venv-lcp/bin/python
fi
cargo build --quiet --release
port=18231
"$py" -m llama_cpp.server --model "$model" --model_alias served --logits_all true \
  --n_ctx 2048 --port "$port" > bench/.work/served_check_server.log 2>&1 &
server=$!
trap 'kill $server 2>/dev/null' EXIT
for _ in $(seq 120); do curl -sf "localhost:$port/v1/models" >/dev/null && break; sleep 1; done
out=bench/.work/served_check
rm -rf "$out"
name=$(basename "$model" .gguf)
declare -A limit=([arc_easy]=$docs [hellaswag]=$(( (docs + 1) / 2 )) [gsm8k]=$(( (docs + 3) / 4 )))
rows=()
for task in arc_easy hellaswag gsm8k; do
  extra=()
  [ "$task" = gsm8k ] && extra=(--gen-kwargs max_gen_toks=64)
  ./target/release/assay run --no-cache --model "$model" --tasks "$task" --limit "${limit[$task]}" \
    "${extra[@]}" --output-path "$out/embedded" --log-samples > /dev/null
  ./target/release/assay run --no-cache --backend openai --base-url "http://localhost:$port/v1" \
    --model-name served --concurrency 1 --timeout 600 --tasks "$task" --limit "${limit[$task]}" "${extra[@]}" \
    --output-path "$out/served" --log-samples > /dev/null
  row=$(python3 bench/compare_samples.py "$out"/embedded/*/samples_"${task}"_*.jsonl \
    "$out"/served/*/samples_"${task}"_*.jsonl)
  rows+=("\"$task\": $row")
done
mkdir -p bench/results
json="{\"model\": \"$name\", \"server\": \"llama-cpp-python $("$py" -c 'import llama_cpp; print(llama_cpp.__version__)')\", \"machine\": \"$(lscpu | sed -n 's/^Model name: *//p')\", $(IFS=,; echo "${rows[*]}")}"
echo "$json" | python3 -m json.tool > "bench/results/served_check_$name.json"
python3 - "bench/results/served_check_$name.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
print(f"assay embedded vs assay -> {r['server']} ({r['model']})")
print(f"| task | docs | same choice / same text | mean abs logprob diff | median | p90 | max |")
print("|---|---:|---:|---:|---:|---:|---:|")
for task in ("arc_easy", "hellaswag", "gsm8k"):
    t = r[task]
    if "abs_logprob_diff" in t:
        d = t["abs_logprob_diff"]
        print(f"| {task} | {t['documents']} | {t['same_choice']}/{t['documents']} | {d['mean']:.4f} | {d['median']:.4f} | {d['p90']:.4f} | {d['max']:.4f} |")
    else:
        print(f"| {task} | {t['documents']} | {t['same_text']}/{t['generated_texts']} | | | | |")
PY
