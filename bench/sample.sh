#!/usr/bin/env bash
# Sampling throughput of `assay sample` on the default model: PROMPTS fictional "first mayor
# of <city>" prompts (the customer's example, cities invented here) x N completions, at
# --parallel 1 and at the default, each followed by `assay grade` with the name rule.
# Prints a table (completions/s, tokens/s, counts at each stage) and writes
# bench/results/sample.json.
# Usage: bash bench/sample.sh [N=200] [PROMPTS=10] [MAX_NEW_TOKENS=8]
set -euo pipefail
cd "$(dirname "$0")/.."
n="${1:-200}"
prompts="${2:-10}"
max_new="${3:-8}"
cargo build --quiet --release
work=bench/.work/sample
rm -rf "$work" && mkdir -p "$work" bench/results
python3 - "$work/mayors.jsonl" "$work/mayors_grader.json" "$prompts" <<'PY'
import json, sys
path, grader, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
cities = ["Veldria", "Oskarn", "Pellmoor", "Trisk", "Hallowmere", "Brannock", "Quill Harbor",
          "Estvale", "Morrowgate", "Kestrel Falls", "Dunmarrow", "Ashcombe"]
mayors = ["Ilse Varnholt", "Tomas Brenn", "Mara Quelling", "Joss Arden", "Edda Lorne",
          "Piet Kalloway", "Runa Sable", "Aldo Fenwick", "Corra Vint", "Hollis Drake",
          "Wenna Strade", "Oren Pask"]
with open(path, "w") as f:
    for city, mayor in list(zip(cities, mayors))[:count]:
        f.write(json.dumps({"prompt": f"Q: Who was the first mayor of {city}?\nA:",
                            "metadata": {"city": city, "reference": mayor}}) + "\n")
json.dump({"grader_instructions": "Equivalent when the completion names the same person as the reference, by first or last name.",
           "rule": "name"}, open(grader, "w"))
PY
rows=()
for parallel in 1 default; do
  flag=(); [ "$parallel" = default ] || flag=(--parallel "$parallel")
  out="$work/completions_$parallel.jsonl"
  ./target/release/assay sample --no-cache --prompts "$work/mayors.jsonl" --num-generations "$n" \
    --temperature 1.0 --max-new-tokens "$max_new" --until $'\n' "${flag[@]}" -o "$out" > "$work/sample_$parallel.txt"
  ./target/release/assay grade --completions "$out" --grader "$work/mayors_grader.json" \
    -o "$work/dataset_$parallel" > "$work/grade_$parallel.txt"
  rows+=("$parallel")
done
python3 - "$work" "$n" "$prompts" "$max_new" "${rows[@]}" <<'PY'
import json, re, sys
work, n, prompts, max_new = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
results = []
for parallel in sys.argv[5:]:
    s = open(f"{work}/sample_{parallel}.txt").read()
    m = re.search(r"(\d+) completions of \d+ prompts in ([\d.]+)s: ([\d.]+) completions/s, ([\d.]+) tokens/s", s)
    g = open(f"{work}/grade_{parallel}.txt").read()
    stage = lambda name: int(re.search(re.escape(name) + r"\s*\|\s*(\d+)", g).group(1))
    results.append({
        "parallel": parallel, "prompts": prompts, "num_generations": n, "max_new_tokens": max_new,
        "completions": int(m.group(1)), "seconds": float(m.group(2)),
        "completions_per_s": float(m.group(3)), "tokens_per_s": float(m.group(4)),
        "unique_exact": stage("unique (exact)"), "unique_normalised": stage("unique (normalised), graded"),
        "equivalent": stage("equivalent (kept)"), "different": stage("different"),
    })
print("| parallel | completions | seconds | completions/s | tokens/s | unique exact | unique normalised | equivalent |")
print("|---|---|---|---|---|---|---|---|")
for r in results:
    print(f"| {r['parallel']} | {r['completions']} | {r['seconds']:.1f} | {r['completions_per_s']:.1f} | {r['tokens_per_s']:.1f} | {r['unique_exact']} | {r['unique_normalised']} | {r['equivalent']} |")
json.dump({"benchmark": "sample", "results": results}, open("bench/results/sample.json", "w"), indent=2)
PY
