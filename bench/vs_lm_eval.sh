#!/usr/bin/env bash
# assay vs lm-evaluation-harness on the same documents and prompts, alternating A B A B.
# lm-eval runs `--model hf` on the default model's GGUF, which transformers dequantises to fp32
# (batch 8). assay runs the same weights with llama.cpp at each precision of ASSAY_PRECISIONS:
#   q4_k_m  the default model as shipped (Q4_K_M kernels): the ratio a user of the defaults gets
#   f32     an F32 copy of the same weights (bench/dequantize_gguf.py): the same precision as
#           lm-eval's fp32, the like-for-like ratio
#   f16     an F16 copy
# Per round and task: every assay precision, then lm-eval once.
#
# Usage: bash bench/vs_lm_eval.sh [ROUNDS=3] [TASKS="hellaswag mmlu gsm8k"]
#   ASSAY_PRECISIONS ("q4_k_m f32 f16"), HELLASWAG_DOCS (100), MMLU_DOCS (100), GSM8K_DOCS (10).
# Tasks: hellaswag (0-shot); mmlu = mmlu_high_school_computer_science (0-shot, lm-eval's
# default); gsm8k = 5-shot with the first 5 train examples (first_n) on both sides, so the
# prompts are identical (bench/assay_tasks, bench/lm_eval_tasks).
# Needs a Python with torch, transformers, gguf, accelerate and lm-eval (REF_PYTHON, or
# bench/.venv created on first use). Prints a table; writes bench/results/vs_lm_eval.json.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds="${1:-3}"
tasks="${2:-hellaswag mmlu gsm8k}"
py=$(bash bench/ref_python.sh)
bindir=$(dirname "$py")
cargo build --quiet --release
model=$(python3 -c "import os; print(os.path.join(os.environ.get('ASSAY_CACHE_DIR', os.path.expanduser('~/.cache/assay')), 'models', 'gemma-3-270m-q4_k_m.gguf'))")
precisions="${ASSAY_PRECISIONS:-q4_k_m f32 f16}"
declare -A models=([q4_k_m]="$model")
for p in $precisions; do
  case "$p" in
    q4_k_m) ;;
    f32|f16)
      models[$p]=bench/.work/gemma-3-270m-$p.gguf
      if [ ! -f "${models[$p]}" ]; then
        mkdir -p bench/.work
        "$py" bench/dequantize_gguf.py "$model" "${models[$p]}.partial" --type "$p" >&2
        mv "${models[$p]}.partial" "${models[$p]}"
      fi ;;
    *) echo "unknown precision $p (use q4_k_m, f32, f16)" >&2; exit 2 ;;
  esac
done
work=bench/.work/vs_lm_eval
rm -rf "$work"
mkdir -p "$work" bench/results
rows="$work/rows.tsv"
: > "$rows"

for round in $(seq 1 "$rounds"); do
  for task in $tasks; do
    case "$task" in
      hellaswag) docs=${HELLASWAG_DOCS:-100}; a_task=hellaswag; l_task=hellaswag_local ;;
      mmlu) docs=${MMLU_DOCS:-100}; a_task=mmlu_high_school_computer_science; l_task=mmlu_hscs_local ;;
      gsm8k) docs=${GSM8K_DOCS:-10}; a_task=gsm8k_first_n; l_task=gsm8k_first_n_local ;;
      *) echo "unknown task $task (use hellaswag, mmlu, gsm8k)" >&2; exit 2 ;;
    esac
    for p in $precisions; do
      tool=assay-$p
      echo "round $round: $task ($docs docs), $tool" >&2
      start=$(date +%s.%N)
      /usr/bin/time -v ./target/release/assay run --no-cache --model "${models[$p]}" --tasks "$a_task" \
        --include-path bench/assay_tasks --limit "$docs" --output-path "$work/$tool-$task-$round" --log-samples \
        > "$work/$tool-$task-$round.log" 2> "$work/$tool-$task-$round.time"
      end=$(date +%s.%N)
      printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$task" "$round" "$tool" "$(python3 -c "print($end - $start)")" \
        "$(grep -E 'Maximum resident' "$work/$tool-$task-$round.time" | awk '{print $NF}')" "$docs" >> "$rows"
    done
    echo "round $round: $task ($docs docs), lm-eval" >&2
    start=$(date +%s.%N)
    PATH="$bindir:$PATH" /usr/bin/time -v "$bindir/lm_eval" --model hf \
      --model_args "pretrained=$(dirname "$model"),gguf_file=$(basename "$model"),dtype=float32" \
      --tasks "$l_task" --include_path bench/lm_eval_tasks --limit "$docs" --batch_size 8 \
      --device cpu --output_path "$work/lm-eval-$task-$round" --log_samples \
      > "$work/lm-eval-$task-$round.log" 2> "$work/lm-eval-$task-$round.time"
    end=$(date +%s.%N)
    printf '%s\t%s\tlm-eval\t%s\t%s\t%s\n' "$task" "$round" "$(python3 -c "print($end - $start)")" \
      "$(grep -E 'Maximum resident' "$work/lm-eval-$task-$round.time" | awk '{print $NF}')" "$docs" >> "$rows"
  done
done
"$py" bench/vs_lm_eval_report.py "$work" bench/results/vs_lm_eval.json "$("$py" -c 'import lm_eval, importlib.metadata as m; print(m.version("lm_eval"))')"
