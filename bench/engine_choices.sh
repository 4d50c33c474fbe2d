#!/usr/bin/env bash
# Which compute path is fastest on this machine: the format of the output projection (the tied
# token_embd.weight, 262,144 x 640: Q8_0 in the default GGUF, or converted to F16 / F32) and the
# thread count, measured with assay itself, A B A B. HellaSwag is log-likelihood scoring (one
# vocabulary-sized logit row per scored token); GSM8K is generation (one row per new token).
# Usage: bash bench/engine_choices.sh [HELLASWAG_DOCS=30] [GSM8K_DOCS=3] [ROUNDS=2]
# Needs the reference Python (bench/ref_python.sh) for the gguf package. Prints a table; writes
# bench/results/engine_choices.json.
set -euo pipefail
cd "$(dirname "$0")/.."
hs_docs="${1:-30}"
gsm_docs="${2:-3}"
rounds="${3:-2}"
py=$(bash bench/ref_python.sh)
cargo build --quiet --release
model=$(python3 -c "import os; print(os.path.join(os.environ.get('ASSAY_CACHE_DIR', os.path.expanduser('~/.cache/assay')), 'models', 'gemma-3-270m-q4_k_m.gguf'))")
work=bench/.work/engine_choices
mkdir -p "$work"
for t in f16 f32; do
  [ -f "$work/embd-$t.gguf" ] || "$py" bench/dequantize_gguf.py "$model" "$work/embd-$t.gguf" \
    --tensor token_embd.weight --type "$t"
done
rm -rf "$work/out"
threads_list="1 $(nproc)"
for round in $(seq 1 "$rounds"); do
  for variant in q8_0 f16 f32; do
    path="$model"
    [ "$variant" = q8_0 ] || path="$work/embd-$variant.gguf"
    for threads in $threads_list; do
      echo "round $round: $variant, $threads threads" >&2
      ./target/release/assay run --no-cache --model "$path" --tasks hellaswag --limit "$hs_docs" \
        --threads "$threads" --output-path "$work/out/$round-$variant-$threads-hellaswag" > /dev/null 2>&1
      ./target/release/assay run --no-cache --model "$path" --tasks gsm8k --limit "$gsm_docs" \
        --threads "$threads" --gen-kwargs max_gen_toks=64 \
        --output-path "$work/out/$round-$variant-$threads-gsm8k" > /dev/null 2>&1
    done
  done
done
python3 - "$work/out" <<'PY'
import glob, json, os, statistics, sys
runs = {}
for path in glob.glob(f"{sys.argv[1]}/*/*/results_*.json"):
    rnd, variant, threads, task = os.path.basename(os.path.dirname(os.path.dirname(path))).split("-")
    r = json.load(open(path))
    a = r["assay"]
    name = next(iter(r["results"]))
    docs = r["n-samples"][name]["effective"]
    timing = (a.get("generation_timing") or {}).get(name)
    score = {k: v for k, v in r["results"][name].items()
             if "stderr" not in k and isinstance(v, (int, float))}
    runs.setdefault((task, variant, int(threads)), []).append({
        "docs_per_s": docs / a["wall_seconds"],
        "tokens_per_s": a["tokens_processed"] / a["wall_seconds"],
        "generated_tokens_per_s": timing["tokens_per_second"] if timing else None,
        "score": score,
    })
print("| task | output projection | threads | docs/s (median) | tokens/s | generated tokens/s | score |")
print("|---|---|---:|---:|---:|---:|---|")
out = []
for (task, variant, threads), rs in sorted(runs.items()):
    med = lambda k: statistics.median(r[k] for r in rs) if rs[0][k] is not None else None
    row = {"task": task, "output_projection": variant, "threads": threads, "rounds": len(rs),
           "docs_per_s": med("docs_per_s"), "tokens_per_s": med("tokens_per_s"),
           "generated_tokens_per_s": med("generated_tokens_per_s"), "score": rs[0]["score"]}
    out.append(row)
    gen = f"{row['generated_tokens_per_s']:.1f}" if row["generated_tokens_per_s"] else "-"
    score = ", ".join(f"{k} {v:.3f}" for k, v in row["score"].items())
    print(f"| {task} | {variant} | {threads} | {row['docs_per_s']:.2f} | {row['tokens_per_s']:.0f} | {gen} | {score} |")
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "")
avx2 = " avx2" in next((l for l in open("/proc/cpuinfo") if l.startswith("flags")), "")
json.dump({"benchmark": "engine choices: output projection format and threads",
           "machine": {"cpu": cpu, "cores": os.cpu_count(), "avx2": avx2}, "results": out},
          open("bench/results/engine_choices.json", "w"), indent=2)
print("wrote bench/results/engine_choices.json")
PY
