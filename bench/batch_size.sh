#!/usr/bin/env bash
# Cross-document batching (`--batch-size`) on this machine: speed and how far scores move.
#
# For each --batch-size (default "1 4 16 auto"), the same documents are scored with a fresh
# process (no request cache), the sizes interleaved A B C D A B C D for ROUNDS rounds, on
# HellaSwag 0-shot and MMLU (high-school CS) 5-shot with the default model (Q4_K_M). Each size's
# per-choice log-likelihoods are compared with --batch-size 1 (same chosen answer, mean and max
# |dlogprob|). With an F32 GGUF (bench/.work/gemma-3-270m-f32.gguf, written by
# bench/reference_check.sh), its HellaSwag drift is measured too (one round).
#
#   bash bench/batch_size.sh [LIMIT=100] [ROUNDS=3] [SIZES="1 4 16 auto"]
#
# Extra assay flags go in ASSAY_FLAGS (e.g. "--gpu-layers 999" on a CUDA build). Needs a
# release build (target/release/assay; copied first, so a rebuild during the run changes
# nothing) and ../shared/data. Prints a table; writes bench/results/batch_size.json (or
# $BATCH_RESULT).
set -euo pipefail
cd "$(dirname "$0")/.."
limit="${1:-100}"
rounds="${2:-3}"
sizes="${3:-1 4 16 auto}"
result="${BATCH_RESULT:-bench/results/batch_size.json}"
work=bench/.work/batch_size
rm -rf "$work"
mkdir -p "$work" bench/results
cp target/release/assay "$work/assay"
f32=bench/.work/gemma-3-270m-f32.gguf

# run NAME MODEL TASK SHOTS SIZE ROUND
run() {
  local out="$work/$1/$5/r$6"
  mkdir -p "$out"
  # shellcheck disable=SC2086
  /usr/bin/time -f "%e %M" -o "$out/time" "$work/assay" run --model "$2" --tasks "$3" \
    --num-fewshot "$4" --limit "$limit" --batch-size "$5" --no-cache --no-record \
    --output-path "$out" --log-samples ${ASSAY_FLAGS:-} >"$out/stdout" 2>"$out/stderr" \
    || { echo "failed: $1 --batch-size $5 (see $out/stderr)" >&2; exit 1; }
}

for r in $(seq 1 "$rounds"); do
  for s in $sizes; do
    run hellaswag default hellaswag 0 "$s" "$r"
    run mmlu_5shot default mmlu_high_school_computer_science 5 "$s" "$r"
  done
done
if [ -f "$f32" ]; then
  for s in $sizes; do run hellaswag_f32 "$f32" hellaswag 0 "$s" 1; done
fi

python3 - "$work" "$result" "$limit" "$rounds" "$sizes" <<'EOF'
import glob, json, os, statistics, sys

work, result, limit, rounds, sizes = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5].split()

def samples(d):
    f = glob.glob(os.path.join(d, "*", "samples_*.jsonl"))[0]
    out = {}
    for line in open(f):
        s = json.loads(line)
        out[s["doc_id"]] = [float(r[0][0]) for r in s["resps"]]
    return out

def seconds(d):
    for line in open(os.path.join(d, "stderr")):
        if " docs in " in line:
            return float(line.split(" docs in ")[1].split("s")[0])
    return None

rows = []
for name in sorted(os.listdir(work)):
    if not os.path.isdir(os.path.join(work, name)):
        continue
    base = samples(os.path.join(work, name, "1", "r1"))
    for size in sizes:
        runs = sorted(glob.glob(os.path.join(work, name, size, "r*")))
        if not runs:
            continue
        evals = [seconds(r) for r in runs]
        walls, rss = [], []
        for r in runs:
            wall, kb = open(os.path.join(r, "time")).read().split()
            walls.append(float(wall)); rss.append(int(kb))
        got = samples(runs[0])
        diffs = [abs(a - b) for k in base for a, b in zip(base[k], got[k])]
        same = sum(max(range(len(base[k])), key=base[k].__getitem__) ==
                   max(range(len(got[k])), key=got[k].__getitem__) for k in base)
        rows.append({
            "set": name, "batch_size": size, "docs": len(base), "rounds": len(runs),
            "eval_s_median": statistics.median(evals), "eval_s_all": evals,
            "docs_per_s": len(base) / statistics.median(evals),
            "wall_s_median": statistics.median(walls), "peak_rss_mb": max(rss) // 1024,
            "same_choice": same, "mean_abs_dlogprob": sum(diffs) / len(diffs),
            "max_abs_dlogprob": max(diffs),
            "identical_scores": sum(d == 0 for d in diffs), "scores": len(diffs),
        })

by = {(r["set"], r["batch_size"]): r for r in rows}
print(f"{'set':<16}{'--batch-size':>13}{'docs/s':>9}{'x vs 1':>8}{'RSS MB':>8}{'same':>9}{'mean|d|':>10}{'max|d|':>9}")
for r in rows:
    one = by[(r["set"], "1")]
    r["speedup_vs_1"] = one["eval_s_median"] / r["eval_s_median"]
    print(f"{r['set']:<16}{r['batch_size']:>13}{r['docs_per_s']:>9.2f}{r['speedup_vs_1']:>8.2f}"
          f"{r['peak_rss_mb']:>8}{r['same_choice']:>5}/{r['docs']:<3}{r['mean_abs_dlogprob']:>10.4f}{r['max_abs_dlogprob']:>9.4f}")
json.dump({"limit": limit, "rounds": rounds, "cpu": os.cpu_count(),
           "flags": os.environ.get("ASSAY_FLAGS", ""), "rows": rows}, open(result, "w"), indent=1)
print(f"wrote {result}")
EOF
