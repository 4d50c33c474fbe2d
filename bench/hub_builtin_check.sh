#!/usr/bin/env bash
# Every built-in task read two ways, on every document (or the first LIMIT): from the data folder
# and, with no data folder, from the stand-in Hub's repositories in the real layouts. A server
# answering at once (assay-standin --instant) stands in for the model: what is compared is the
# prompts (the requests' texts) and the gold request or target of each document. Prints a table
# per task and writes bench/results/hub_builtin_check.json. CI runs the same comparison on 2
# documents per task (crates/assay/tests/hub.rs).
#
#   bash bench/hub_builtin_check.sh [LIMIT] [TASKS]
set -euo pipefail
cd "$(dirname "$0")/.."
limit=${1:-}
tasks=${2:-}
work=bench/.work/hub_builtin_check
rm -rf "$work"
mkdir -p "$work/no/data"
cargo build --release -q -p assay -p assay-hub-standin -p assay-standin
source bench/hub_standin_lib.sh
start_hub_standin "$work"
target/release/assay-standin --instant --model-name stand-in --port 0 > "$work/server.url" 2> "$work/server.log" &
server_pid=$!
trap 'kill $hub_standin_pid $server_pid 2>/dev/null || true' EXIT
for _ in $(seq 1 120); do [ -s "$work/server.url" ] && break; sleep 0.5; done
url=$(grep -o 'http://[^ ]*' "$work/server.url" | head -1)
if [ -z "$tasks" ]; then
  tasks=$(grep -rh '^task: ' tasks | sed 's/^task: //' | sort | paste -sd, -)
fi
args=(run --no-cache --no-record --log-samples --tasks "$tasks" --backend openai
  --model-name stand-in --base-url "$url")
[ -n "$limit" ] && args+=(--limit "$limit")
data=$PWD/../shared/data
bin=$PWD/target/release/assay
start=$(date +%s.%N)
(cd "$work/no/data" && env -u ASSAY_DATA_DIR HF_HOME="$PWD/../../hf" HF_TOKEN=hf_standin_gated_token \
  "$bin" "${args[@]}" --output-path "$PWD/../../hub_out" > ../../hub.stdout 2> ../../hub.stderr)
mid=$(date +%s.%N)
"$bin" "${args[@]}" --data-dir "$data" --output-path "$work/folder_out" > "$work/folder.stdout" 2> "$work/folder.stderr"
end=$(date +%s.%N)
python3 bench/hub_builtin_compare.py "$work/hub_out" "$work/folder_out" "$work/hub_out"/*/results_*.json \
  "$(echo "$mid - $start" | bc)" "$(echo "$end - $mid" | bc)" bench/results/hub_builtin_check.json
