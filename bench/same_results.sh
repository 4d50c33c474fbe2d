#!/usr/bin/env bash
# Two assay binaries on the same documents: every per-sample line must agree (the scores, the
# filtered answers, the prompt and document hashes) and so must every metric of the results.
# For changes that must not change behaviour (a refactor): run the binary built before the
# change and the one built after.
#
#   bash bench/same_results.sh BEFORE_BINARY AFTER_BINARY [LIMIT]
#
# Writes bench/results/same_results.json and prints one line per task; exits 1 on a difference.
set -euo pipefail
cd "$(dirname "$0")/.."
before=$1 after=$2 limit=${3:-20}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
tasks="hellaswag,arc_easy,mmlu_high_school_computer_science,truthfulqa_mc2,gsm8k,truthfulqa_gen,humaneval,drop,math500"
for side in before after; do
  bin=${!side}
  "$bin" run --tasks "$tasks" --limit "$limit" --no-cache --no-record \
    --gen-kwargs max_gen_toks=64 --output-path "$work/$side" --log-samples >"$work/$side.log" 2>&1 || {
    cat "$work/$side.log"; exit 1; }
done
python3 - "$work" "$limit" "$before" "$after" <<'PY'
import glob, json, os, sys
work, limit, before, after = sys.argv[1:5]
def load(side):
    res = json.load(open(glob.glob(f"{work}/{side}/*/results_*.json")[0]))
    samples = {}
    for p in glob.glob(f"{work}/{side}/*/samples_*.jsonl"):
        task = os.path.basename(p)[len("samples_"):].rsplit("_", 1)[0]
        rows = [json.loads(l) for l in open(p)]
        for r in rows:  # timings differ run to run
            for k in ("gen_time", "tokens_per_second"):
                r.pop(k, None)
            for runs in (r.get("execution") or []):
                runs.pop("seconds", None)
        samples[task] = rows
    return res, samples
(rb, sb), (ra, sa) = load("before"), load("after")
rows, bad = [], 0
for task in sorted(rb["results"]):
    same_metrics = rb["results"][task] == ra["results"].get(task)
    same_samples = sb.get(task) == sa.get(task)
    n = len(sb.get(task, []))
    bad += (not same_metrics) + (not same_samples)
    rows.append({"task": task, "sample_lines": n, "same_metrics": same_metrics, "same_samples": same_samples})
    print(f"{task:40} lines {n:4}  metrics {'same' if same_metrics else 'DIFFERENT'}  samples {'same' if same_samples else 'DIFFERENT'}")
os.makedirs("bench/results", exist_ok=True)
json.dump({"benchmark": "same results before and after a change", "limit": int(limit),
           "before": before, "after": after, "tasks": rows, "differences": bad},
          open("bench/results/same_results.json", "w"), indent=1)
sys.exit(1 if bad else 0)
PY
