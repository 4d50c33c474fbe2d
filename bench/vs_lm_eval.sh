#!/usr/bin/env bash
# assay vs lm-evaluation-harness on the same HellaSwag documents, alternating A B A B.
# lm-eval runs `--model hf` on the default model's GGUF, which transformers dequantises to fp32;
# assay runs the same GGUF with llama.cpp (Q4_K_M kernels).
# Usage: bash bench/vs_lm_eval.sh [DOCS=100] [ROUNDS=2]
# Needs a Python with torch, transformers, gguf, accelerate and lm-eval (REF_PYTHON, or
# bench/.venv created on first use). Prints a table; writes bench/results/vs_lm_eval.json.
set -euo pipefail
cd "$(dirname "$0")/.."
docs="${1:-100}"
rounds="${2:-2}"
py=$(bash bench/ref_python.sh)
bindir=$(dirname "$py")
cargo build --quiet --release
model=$(./target/release/assay run --help >/dev/null && python3 -c "import os; print(os.path.join(os.environ.get('ASSAY_CACHE_DIR', os.path.expanduser('~/.cache/assay')), 'models', 'gemma-3-270m-q4_k_m.gguf'))")
# lm-eval's hf backend loads the GGUF itself (transformers dequantises it to fp32).
model_dir=$(dirname "$model")
model_file=$(basename "$model")
work=bench/.work/vs_lm_eval
rm -rf "$work"
mkdir -p "$work" bench/results
peak() { grep -E "Maximum resident" "$1" | awk '{print $NF}'; }
rows=()
for round in $(seq 1 "$rounds"); do
  # Whole-process wall time for both tools (model loading included).
  start=$(date +%s.%N)
  /usr/bin/time -v ./target/release/assay run --tasks hellaswag --limit "$docs" \
    --output-path "$work/assay-$round" --log-samples > "$work/assay-$round.log" 2> "$work/assay-$round.time"
  end=$(date +%s.%N)
  a_secs=$(python3 -c "print($end - $start)")
  start=$(date +%s.%N)
  PATH="$bindir:$PATH" /usr/bin/time -v "$bindir/lm_eval" --model hf \
    --model_args "pretrained=$model_dir,gguf_file=$model_file,dtype=float32" --tasks hellaswag_local \
    --include_path bench/lm_eval_tasks --limit "$docs" --batch_size 8 --device cpu \
    --output_path "$work/lm-eval-$round" --log_samples > "$work/lm-eval-$round.log" 2> "$work/lm-eval-$round.time"
  end=$(date +%s.%N)
  l_secs=$(python3 -c "print($end - $start)")
  rows+=("$round $a_secs $(peak "$work/assay-$round.time") $l_secs $(peak "$work/lm-eval-$round.time")")
done
python3 - "$docs" "$work" "${rows[@]}" <<'PY'
import glob, json, sys
docs, work, rows = int(sys.argv[1]), sys.argv[2], [r.split() for r in sys.argv[3:]]
def picks(path):
    out = {}
    for line in open(path):
        d = json.loads(line)
        if d.get("filter", "none") != "none":
            continue
        lls = [float(r[0][0]) if isinstance(r[0], list) else float(r[0]) for r in d["resps"]]
        out[d["doc_id"]] = lls
    return out
a = picks(glob.glob(f"{work}/assay-1/*/samples_hellaswag_*.jsonl")[0])
l = picks(glob.glob(f"{work}/lm-eval-1/**/samples_hellaswag_local_*.jsonl", recursive=True)[0])
same = sum(1 for k in a if k in l and a[k].index(max(a[k])) == l[k].index(max(l[k])))
print(f"HellaSwag, {docs} docs, 2 cores")
print("| round | assay s | assay docs/s | assay peak RSS MB | lm-eval s | lm-eval docs/s | lm-eval peak RSS MB | speed ratio |")
print("|---:|---:|---:|---:|---:|---:|---:|---:|")
out = []
for r, asec, arss, lsec, lrss in rows:
    asec, lsec = float(asec), float(lsec)
    print(f"| {r} | {asec:.1f} | {docs/asec:.2f} | {int(arss)//1024} | {lsec:.1f} | {docs/lsec:.2f} | {int(lrss)//1024} | {lsec/asec:.2f}x |")
    out.append({"round": int(r), "assay_seconds": asec, "assay_peak_rss_kb": int(arss), "lm_eval_seconds": lsec, "lm_eval_peak_rss_kb": int(lrss), "ratio": lsec / asec})
print(f"same chosen answer (acc): {same}/{len(a)}")
json.dump({"benchmark": "hellaswag vs lm-eval hf", "docs": docs, "rounds": out, "same_acc_choice": same, "docs_compared": len(a)}, open("bench/results/vs_lm_eval.json", "w"), indent=2)
PY
