#!/usr/bin/env bash
# Kill-and-resume: a run is killed with SIGKILL part-way, then started again with the same
# command; it must ask for no answer it had received and end with the answers of an
# uninterrupted run. Done for the OpenAI-compatible backend (stand-in server backed by the real
# model; the server counts what it is asked) and for the embedded engine.
# Usage: bash bench/kill_resume.sh [DOCS=200]   (HellaSwag, 4 requests per document)
# Writes bench/results/kill_resume.json.
set -euo pipefail
cd "$(dirname "$0")/.."
docs="${1:-200}"
requests=$((4 * docs))
cargo build --quiet --release
mkdir -p bench/.work bench/results
source bench/standin_lib.sh
out=bench/.work/kill_resume
rm -rf "$out"
mkdir -p "$out"
port=18261
start_standin "$port" --model-name gemma-3-270m
cached() { python3 -c "import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute('select count(*) from answers').fetchone()[0])" "$1" 2>/dev/null || echo 0; }
answered() { curl -s "localhost:$port/stats" | python3 -c 'import json,sys; print(json.load(sys.stdin)["answered"])'; }
results=()
for backend in openai llama; do
  args=(--tasks hellaswag --limit "$docs" --log-samples)
  [ "$backend" = openai ] && args+=(--backend openai --base-url "http://localhost:$port/v1"
                                    --model-name gemma-3-270m --tokenizer default --concurrency 8)
  cache="$out/$backend.sqlite"
  ./target/release/assay run "${args[@]}" --cache "$cache" --output-path "$out/$backend-resumed" > /dev/null 2>&1 &
  pid=$!
  until [ "$(cached "$cache")" -ge $((requests * 2 / 5)) ]; do sleep 0.1; done
  kill -9 "$pid"; wait "$pid" 2> /dev/null || true
  # Requests in flight at the kill still finish on the server: wait until it is idle.
  before=$(answered)
  while sleep 1.5; now=$(answered); [ "$now" != "$before" ]; do before=$now; done
  kept=$(cached "$cache")
  ./target/release/assay run "${args[@]}" --cache "$cache" --output-path "$out/$backend-resumed" > /dev/null 2> "$out/$backend-resume.log"
  asked=$(( $(answered) - before ))
  ./target/release/assay run "${args[@]}" --no-cache --output-path "$out/$backend-whole" > /dev/null 2>&1
  # The killed run left its own (partial) log beside the resumed run's: take the newest.
  resumed=$(ls -t "$out/$backend-resumed"/*/samples_*.jsonl | head -1)
  compare=$(python3 bench/compare_samples.py "$resumed" "$out/$backend-whole"/*/samples_*.jsonl)
  summary=$(grep -o "cache [^;]*" "$out/$backend-resume.log" | head -1)
  results+=("{\"backend\": \"$backend\", \"requests\": $requests, \"answers_kept_at_kill\": $kept, \"resume_summary\": \"$summary\", \"server_requests_on_resume\": $([ "$backend" = openai ] && echo "$asked" || echo null), \"vs_uninterrupted\": $compare}")
done
python3 - "[$(IFS=,; echo "${results[*]}")]" <<'PY'
import json, sys
rows = json.loads(sys.argv[1])
json.dump(rows, open("bench/results/kill_resume.json", "w"), indent=2)
# The openai backend sends one probe request at connection (does the server take token ids?).
print("| backend | requests | answers stored at the kill | resumed run | server asked on resume (+1 probe) | finished requests redone | answers identical to an uninterrupted run |")
print("|---|---:|---:|---|---:|---:|---:|")
for r in rows:
    asked = r["server_requests_on_resume"]
    redone = "" if asked is None else asked - 1 - (r["requests"] - r["answers_kept_at_kill"])
    c = r["vs_uninterrupted"]
    print(f"| {r['backend']} | {r['requests']} | {r['answers_kept_at_kill']} | {r['resume_summary']} | {'' if asked is None else asked} | {redone} | {c['identical_answers']}/{c['requests']} |")
PY
