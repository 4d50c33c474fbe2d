#!/usr/bin/env bash
# What reading a task's data from the Hub costs: `assay run --limit 1` of ARC-Easy read from the
# data folder (built-in task), from the stand-in Hub with the files already cached, and offline
# (HF_HUB_OFFLINE=1, cache only); plus the first, uncached read of all of cais/mmlu (57 configs,
# 14k test rows) with its peak memory. Rounds A B C A B C ... (default 3).
#
#   bash bench/hub_overhead.sh [ROUNDS]
#
# Prints a table and writes bench/results/hub_overhead.json.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds="${1:-3}"
work=bench/.work/hub_overhead
rm -rf "$work"
mkdir -p "$work/tasks" bench/results
cargo build --release -q -p assay -p assay-hub-standin
source bench/hub_standin_lib.sh
start_hub_standin "$work"
url=$HF_ENDPOINT
cp bench/hub_tasks/arc_easy_hub.yaml "$work/tasks/"
{
  echo "task: mmlu_all_hub"
  echo "dataset_path: cais/mmlu"
  echo "dataset_kwargs: {data_files: {test: '*/test-*'}}"
  echo "output_type: multiple_choice"
  echo "test_split: test"
  echo "doc_to_text: \"{{question}}\""
  echo "doc_to_target: answer"
  echo "doc_to_choice: [A, B, C, D]"
} > "$work/tasks/mmlu_all_hub.yaml"
export HF_HOME="$PWD/$work/hf"
run() { # label, task, extra env...
  local label=$1 task=$2; shift 2
  local start end
  start=$(date +%s.%N)
  env "$@" target/release/assay run --no-record --no-cache --include-path "$work/tasks" \
    --tasks "$task" --limit 1 > "$work/$label.log" 2>&1
  end=$(date +%s.%N)
  echo "$end - $start" | bc
}
# Fill the cache once.
run warm arc_easy_hub HF_ENDPOINT="$url" > /dev/null
declare -A times
for r in $(seq 1 "$rounds"); do
  times[local]+="$(run local arc_easy) "
  times[hub_cached]+="$(run hub arc_easy_hub HF_ENDPOINT="$url") "
  times[offline]+="$(run offline arc_easy_hub HF_HUB_OFFLINE=1 HF_ENDPOINT=http://127.0.0.1:9) "
done
# Peak memory of a run on the data folder, for reference (the model dominates it).
/usr/bin/time -f "%e %M" -o "$work/local.time" target/release/assay run --no-record --no-cache \
  --tasks arc_easy --limit 1 > /dev/null 2>&1
# The first read of all of MMLU's test rows, uncached: wall time and peak memory.
rm -rf "$HF_HOME"
/usr/bin/time -f "%e %M" -o "$work/mmlu.time" env HF_ENDPOINT="$url" target/release/assay run \
  --no-record --no-cache --include-path "$work/tasks" --tasks mmlu_all_hub --limit 1 \
  > "$work/mmlu.log" 2>&1
python3 - "$rounds" "${times[local]}" "${times[hub_cached]}" "${times[offline]}" "$(cat "$work/mmlu.time")" "$(cat "$work/local.time")" <<'PY'
import json, statistics, sys
rounds = int(sys.argv[1])
series = {name: [float(x) for x in sys.argv[i].split()] for i, name in
          [(2, "local (data folder)"), (3, "hub, cached"), (4, "hub, offline")]}
mmlu_s, mmlu_kb = sys.argv[5].split()
_, local_kb = sys.argv[6].split()
print(f"| run (arc_easy, --limit 1, {rounds} rounds A B C) | median s | min s | max s |")
print("|---|---:|---:|---:|")
for name, xs in series.items():
    print(f"| {name} | {statistics.median(xs):.2f} | {min(xs):.2f} | {max(xs):.2f} |")
base = statistics.median(series["local (data folder)"])
for name in ["hub, cached", "hub, offline"]:
    print(f"{name}: +{statistics.median(series[name]) - base:.2f} s over the data folder")
print(f"cais/mmlu, 57 configs, first read (download + parse, --limit 1): {float(mmlu_s):.1f} s, "
      f"peak RSS {int(mmlu_kb)/1024:.0f} MiB (a data-folder run: {int(local_kb)/1024:.0f} MiB)")
json.dump({"rounds": rounds, "seconds": series, "mmlu_first_read_seconds": float(mmlu_s),
           "mmlu_first_read_peak_rss_kib": int(mmlu_kb), "local_run_peak_rss_kib": int(local_kb)},
          open("bench/results/hub_overhead.json", "w"), indent=1)
PY
echo "wrote bench/results/hub_overhead.json"
