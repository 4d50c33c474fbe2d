#!/usr/bin/env bash
# How assay's cost grows with the model and with the work (CPU).
#
# 1. Models: the default model (Gemma 3 270M) and random-weight models in the exact shapes of
#    Llama-3.2-1B and Qwen2.5-3B (bench/synth_models.py; speed only), on HellaSwag 0-shot and
#    MMLU high-school CS 5-shot (the 5-shot prompt is lm-eval's first_n on both sides):
#      assay-f32   F32 GGUF (the default model: bench/.work/gemma-3-270m-f32.gguf; a synthetic
#                  one: its folder converted by assay with --dtype float32)
#      assay-q     assay at its shipped quantisation: the default model's Q4_K_M; a synthetic
#                  folder converted with --dtype q8_0
#      lm-eval     lm-eval's hf backend, float32, --batch_size 8, on the same weights
#    docs/s and peak RSS per row, A B C A B C for ROUNDS rounds; conversions are made (and
#    cached) before the timed runs.
# 2. Work: assay (default model) on ARC-Easy with 100, 1,000 and all 2,376 documents, logging
#    samples and recording the run in a scratch registry: seconds per document should stay
#    flat (no quadratic planning, logging or recording); and the harness alone (the served
#    backend against assay-standin --instant, which answers at once) on 100, 1,000 and all
#    10,042 HellaSwag documents.
#
#   bash bench/cost_growth.sh [ROUNDS=3] [MODELS="default llama-3.2-1b qwen2.5-3b"]
#   env: DOCS_default (100), DOCS_llama_3_2_1b (20), DOCS_qwen2_5_3b (8): HellaSwag documents;
#        MMLU gets half as many. GROWTH=0 skips part 2; LM_EVAL=0 skips lm-eval;
#        GROWTH_DOCS, HARNESS_DOCS: the document counts of part 2. MODELS="" runs part 2 only.
#        Rows already in the JSON that this run does not measure are kept.
#
# Needs bench/.venv (bench/ref_python.sh), ../shared/data, a release build (copied first).
# Prints tables; writes bench/results/cost_growth.json.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds="${1:-3}"
names="${2-default llama-3.2-1b qwen2.5-3b}"
py=$(bash bench/ref_python.sh)
bindir=$(dirname "$py")
work=bench/.work/cost_growth
rm -rf "$work"
mkdir -p "$work" bench/results
cp target/release/assay "$work/assay"
export ASSAY_REGISTRY="$PWD/$work/registry.sqlite"
gguf=$(python3 -c "import os; print(os.path.join(os.environ.get('ASSAY_CACHE_DIR', os.path.expanduser('~/.cache/assay')), 'models', 'gemma-3-270m-q4_k_m.gguf'))")
f32=bench/.work/gemma-3-270m-f32.gguf
if [ ! -f "$f32" ]; then
  "$py" bench/dequantize_gguf.py "$gguf" "$f32.partial" --type f32 >&2
  mv "$f32.partial" "$f32"
fi
synth="${ASSAY_SYNTH_DIR:-$HOME/.cache/assay/synthetic}"
rows="$work/rows.tsv"
: > "$rows"

# timed TOOL NAME TASK DOCS ROUND COMMAND...: one row of rows.tsv
timed() {
  local tool=$1 name=$2 task=$3 docs=$4 round=$5
  shift 5
  local log="$work/$name-$task-$tool-$round"
  echo "round $round: $name $task ($docs docs) $tool" >&2
  local start end
  start=$(date +%s.%N)
  /usr/bin/time -f "%M" -o "$log.rss" "$@" > "$log.out" 2> "$log.err" \
    || { echo "failed: $* (see $log.err)" >&2; tail -5 "$log.err" >&2; exit 1; }
  end=$(date +%s.%N)
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$name" "$task" "$tool" "$round" \
    "$(python3 -c "print($end - $start)")" "$(cat "$log.rss")" "$docs" >> "$rows"
}

for name in $names; do
  if [ "$name" = default ]; then
    q_model=$gguf f32_model=$f32 q_dtype= f32_dtype=
    lm_args="pretrained=$(dirname "$gguf"),gguf_file=$(basename "$gguf"),dtype=float32"
  else
    dir="$synth/$name-synthetic-speed-only"
    "$py" bench/synth_models.py --out "$synth" "$name" >&2
    q_model=$dir f32_model=$dir q_dtype="--dtype q8_0" f32_dtype="--dtype float32"
    lm_args="pretrained=$dir,dtype=float32"
    # Convert (and cache) both GGUFs before anything is timed.
    for d in q8_0 float32; do
      "$work/assay" run --model "$dir" --dtype "$d" --tasks arc_easy --limit 1 --no-cache --no-record \
        > /dev/null 2> "$work/$name-convert-$d.err" \
        || { echo "conversion failed: see $work/$name-convert-$d.err" >&2; exit 1; }
    done
  fi
  var="DOCS_${name//[.-]/_}"
  case "$name" in default) fallback=100 ;; llama-3.2-1b) fallback=20 ;; *) fallback=8 ;; esac
  hs_docs=${!var:-$fallback}
  mmlu_docs=$(( (hs_docs + 1) / 2 ))
  for round in $(seq 1 "$rounds"); do
    for task in hellaswag mmlu5; do
      if [ "$task" = hellaswag ]; then
        docs=$hs_docs a_task=(--tasks hellaswag) l_task=(--tasks hellaswag_local)
      else
        docs=$mmlu_docs a_task=(--tasks mmlu_high_school_computer_science --num-fewshot 5)
        l_task=(--tasks mmlu_hscs_local --num_fewshot 5)
      fi
      # shellcheck disable=SC2086
      timed assay-q "$name" "$task" "$docs" "$round" "$work/assay" run --model "$q_model" $q_dtype \
        "${a_task[@]}" --limit "$docs" --no-cache --no-record --output-path "$work/out" --log-samples
      # shellcheck disable=SC2086
      timed assay-f32 "$name" "$task" "$docs" "$round" "$work/assay" run --model "$f32_model" $f32_dtype \
        "${a_task[@]}" --limit "$docs" --no-cache --no-record --output-path "$work/out" --log-samples
      if [ "${LM_EVAL:-1}" != 0 ]; then
        timed lm-eval "$name" "$task" "$docs" "$round" env PATH="$bindir:$PATH" "$bindir/lm_eval" \
          --model hf --model_args "$lm_args" "${l_task[@]}" --include_path bench/lm_eval_tasks \
          --limit "$docs" --batch_size 8 --device cpu --output_path "$work/lm-eval-out" --log_samples
      fi
    done
  done
done

if [ "${GROWTH:-1}" != 0 ]; then
  for docs in ${GROWTH_DOCS:-100 1000 2376}; do
    timed assay-q growth arc_easy "$docs" 1 "$work/assay" run --tasks arc_easy --limit "$docs" \
      --no-cache --output-path "$work/growth-$docs" --log-samples
  done
  # The harness alone: the served backend against a stand-in that answers at once, so what is
  # timed is loading, planning, requests, logging and recording, on up to all of HellaSwag.
  source bench/standin_lib.sh
  start_standin 18252 --model-name gemma-3-270m --instant
  for docs in ${HARNESS_DOCS:-100 1000 10042}; do
    timed served-instant growth hellaswag "$docs" 1 "$work/assay" run --backend openai \
      --base-url http://localhost:18252/v1 --model-name gemma-3-270m --tokenizer default \
      --tasks hellaswag --limit "$docs" --no-cache --output-path "$work/harness-$docs" --log-samples
  done
  stop_standins
fi

python3 - "$rows" bench/results/cost_growth.json "$rounds" <<'EOF'
import collections, json, os, statistics, sys

rows_path, out, rounds = sys.argv[1], sys.argv[2], int(sys.argv[3])


def key(r):
    """A row's identity: a model row per model, task and tool; a growth row also per count."""
    return (r["model"], r["task"], r["tool"]) + ((r["docs"],) if r["model"] == "growth" else ())


runs = collections.defaultdict(list)
for line in open(rows_path):
    name, task, tool, rnd, secs, rss_kb, docs = line.rstrip("\n").split("\t")
    runs[(name, task, tool, int(docs))].append((float(secs), int(rss_kb)))
table = []
for (name, task, tool, docs), xs in runs.items():
    secs = [x[0] for x in xs]
    table.append({"model": name, "task": task, "tool": tool, "docs": docs, "rounds": len(xs),
                  "seconds_median": statistics.median(secs), "seconds_all": secs,
                  "docs_per_s": docs / statistics.median(secs),
                  "seconds_per_doc": statistics.median(secs) / docs,
                  "peak_rss_mb": max(x[1] for x in xs) // 1024})
by = {key(r): r for r in table}
for r in table:
    lm = by.get((r["model"], r["task"], "lm-eval"))
    if r["model"] != "growth":
        r["ratio_vs_lm_eval"] = lm["seconds_median"] / r["seconds_median"] if lm else None
# Rows of an earlier run that this one did not measure are kept (a model added later, say).
if os.path.exists(out):
    table += [r for r in json.load(open(out))["rows"] if key(r) not in by]
print("Models (wall time per process, model load included; median of rounds)")
print(f"{'model':<14}{'task':<11}{'tool':<11}{'docs':>5}{'docs/s':>9}{'RSS MB':>8}{'vs lm-eval':>11}")
for r in table:
    if r["model"] == "growth":
        continue
    ratio = f"{r['ratio_vs_lm_eval']:.2f}x" if r.get("ratio_vs_lm_eval") and r["tool"] != "lm-eval" else ""
    print(f"{r['model']:<14}{r['task']:<11}{r['tool']:<11}{r['docs']:>5}{r['docs_per_s']:>9.2f}"
          f"{r['peak_rss_mb']:>8}{ratio:>11}")
growth = sorted((r for r in table if r["model"] == "growth"), key=lambda r: (r["tool"], r["docs"]))
if growth:
    print("\nWork (default model on ARC-Easy; the harness alone on HellaSwag; samples logged, run recorded)")
    print(f"{'tool':<16}{'task':<11}{'docs':>6}{'seconds':>10}{'ms/doc':>9}{'RSS MB':>8}")
    for r in growth:
        print(f"{r['tool']:<16}{r['task']:<11}{r['docs']:>6}{r['seconds_median']:>10.1f}"
              f"{1000 * r['seconds_per_doc']:>9.1f}{r['peak_rss_mb']:>8}")
json.dump({"rounds": rounds, "cpu": os.cpu_count(), "rows": table}, open(out, "w"), indent=1)
print(f"wrote {out}")
EOF
