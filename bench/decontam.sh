#!/usr/bin/env bash
# Contamination-check throughput: GSM8K's train split repeated into a training file of about
# SIZE_MB megabytes (default 1000), checked against the GSM8K test set and all of MMLU's test
# set (assay tasks), on 1 thread and on every core. Prints a table (MB/s, peak memory) and
# writes bench/results/decontam.json.
# Usage: bash bench/decontam.sh [SIZE_MB=1000]
set -euo pipefail
cd "$(dirname "$0")/.."
size_mb="${1:-1000}"
cargo build --quiet --release
work=bench/.work/decontam
mkdir -p "$work" bench/results
data="${ASSAY_DATA_DIR:-../shared/data}"
train="$work/train_${size_mb}mb.jsonl"
if [ ! -f "$train" ]; then
  python3 - "$data/gsm8k/train.jsonl" "$train" "$size_mb" <<'PY'
import sys
src, dst, mb = sys.argv[1], sys.argv[2], int(sys.argv[3])
lines = open(src).read().splitlines()
written = 0
with open(dst, "w") as out:
    copy = 0
    while written < mb * 1_000_000:
        for l in lines:
            # A copy number keeps lines distinct without touching the text that is checked.
            s = l[:-1] + f', "copy": {copy}}}\n'
            out.write(s)
            written += len(s)
        copy += 1
PY
fi
cores=$(nproc)
rows=()
for threads in 1 "$cores"; do
  log="$work/run_$threads.log"
  /usr/bin/time -v ./target/release/assay decontam --train "$train" --tasks gsm8k,mmlu \
    --data-dir "$data" --threads "$threads" --json "$work/report_$threads.json" > "$log" 2> "$work/time_$threads.log"
  rss=$(awk -F: '/Maximum resident/ {gsub(/ /, "", $2); print $2}' "$work/time_$threads.log")
  rows+=("$threads:$rss")
done
python3 - "$train" "$work" "${rows[@]}" <<'PY'
import json, os, sys
train, work = sys.argv[1], sys.argv[2]
results = []
for row in sys.argv[3:]:
    threads, rss = row.split(":")
    r = json.load(open(f"{work}/report_{threads}.json"))
    sets = {s["name"]: {"items": s["items"], "contaminated": len(s["contaminated"]), "rate": s["rate"]} for s in r["test_sets"]}
    mmlu = [s for n, s in sets.items() if n.startswith("mmlu_")]
    results.append({
        "threads": int(threads),
        "train_mb": r["scan"]["bytes"] / 1e6,
        "train_lines": r["scan"]["lines"],
        "seconds": r["scan"]["seconds"],
        "mb_per_second": r["mb_per_second"],
        "peak_rss_mb": int(rss) / 1024,
        "gsm8k": sets["gsm8k"],
        "mmlu": {"items": sum(s["items"] for s in mmlu), "contaminated": sum(s["contaminated"] for s in mmlu)},
    })
print(f"| threads | train MB | lines | seconds | MB/s | peak RSS MB | gsm8k contaminated | mmlu contaminated |")
print(f"|---|---|---|---|---|---|---|---|")
for x in results:
    print(f"| {x['threads']} | {x['train_mb']:.0f} | {x['train_lines']} | {x['seconds']:.1f} | {x['mb_per_second']:.1f} | {x['peak_rss_mb']:.0f} | "
          f"{x['gsm8k']['contaminated']}/{x['gsm8k']['items']} | {x['mmlu']['contaminated']}/{x['mmlu']['items']} |")
json.dump({"benchmark": "decontam", "ngram": 13, "runs": results}, open("bench/results/decontam.json", "w"), indent=2)
print("wrote bench/results/decontam.json")
PY
