#!/usr/bin/env bash
# Fault injection: DOCS HellaSwag documents (4 requests each) through the OpenAI-compatible
# backend against two stand-in servers backed by the real model, one clean and one injecting
# faults into 20% of requests (429 with Retry-After, 500, 503, resets, slow replies beyond the
# client's timeout, malformed JSON, truncated bodies). The answers must be identical.
# Usage: bash bench/faults.sh [DOCS=500] [RATE=0.2] [BACKING=engine|instant]
#   engine: the real model answers (about 0.3 s per HellaSwag request on 2 cores);
#   instant: made-up deterministic log-probabilities, for many requests quickly.
# The client's timeout (8 s) is below a slow fault's delay (12 s), so slow faults time out.
# Writes bench/results/faults_<BACKING>.json.
set -euo pipefail
cd "$(dirname "$0")/.."
docs="${1:-500}"
rate="${2:-0.2}"
backing="${3:-engine}"
instant=()
[ "$backing" = instant ] && instant=(--instant)
cargo build --quiet --release
mkdir -p bench/.work bench/results
source bench/standin_lib.sh
out=bench/.work/faults
rm -rf "$out"
start_standin 18241 --model-name gemma-3-270m "${instant[@]}"
start_standin 18242 --model-name gemma-3-270m "${instant[@]}" --fault-rate "$rate" --seed 1 \
  --retry-after 1 --slow-ms 12000
# Requests wait in the server's queue: concurrency x time per request must stay below the timeout.
common=(--backend openai --model-name gemma-3-270m --tokenizer default --tasks hellaswag
        --limit "$docs" --no-cache --concurrency 4 --timeout 8 --log-samples)
start=$(date +%s.%N)
./target/release/assay run "${common[@]}" --base-url http://localhost:18241/v1 --output-path "$out/clean" > /dev/null
clean_s=$(echo "$(date +%s.%N) - $start" | bc)
start=$(date +%s.%N)
./target/release/assay run "${common[@]}" --base-url http://localhost:18242/v1 --output-path "$out/faulty" > /dev/null
faulty_s=$(echo "$(date +%s.%N) - $start" | bc)
compare=$(python3 bench/compare_samples.py "$out"/clean/*/samples_*.jsonl "$out"/faulty/*/samples_*.jsonl)
server=$(curl -s localhost:18242/stats)
python3 - "$compare" "$server" "$clean_s" "$faulty_s" "$rate" "$out"/faulty/*/results_*.json "$backing" <<'PY'
import json, sys
compare, server = json.loads(sys.argv[1]), json.loads(sys.argv[2])
clean_s, faulty_s, rate = float(sys.argv[3]), float(sys.argv[4]), float(sys.argv[5])
client = json.load(open(sys.argv[6]))["assay"]["requests"]["http"]
result = {"backing": sys.argv[7], "documents": compare["documents"], "requests": compare["requests"], "fault_rate": rate,
          "identical_answers": compare["identical_answers"], "server": server, "client": client,
          "seconds_clean": clean_s, "seconds_with_faults": faulty_s}
json.dump(result, open(f"bench/results/faults_{sys.argv[7]}.json", "w"), indent=2)
print(f"{sys.argv[7]} backing, {compare['requests']} requests, {rate:.0%} faults: {compare['identical_answers']}/{compare['requests']} answers identical to the clean run")
print(f"clean run {clean_s:.1f}s, with faults {faulty_s:.1f}s; server received {server['requests']} requests")
print("| fault | injected by the server | retried by the client as |")
print("|---|---:|---|")
reasons = {"429": "429", "500": "5xx", "503": "503", "reset": "connection", "slow": "timeout",
           "malformed": "malformed", "truncated": "malformed"}
for k, n in server["faults"].items():
    print(f"| {k} | {n} | {reasons[k]} |")
print("client retries:", ", ".join(f"{k} {v}" for k, v in client["retries"].items()), "; failed:", client["failed"])
PY
