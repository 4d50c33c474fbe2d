#!/usr/bin/env bash
# The GPU side by side, prepared to run in about 8 minutes on the lent H200 machine (16 cores, no
# network, no Rust; nvcc, CMake, PyTorch and transformers installed).
#
#   bash bench/gpu.sh            # on the GPU machine, from the repository root
#
# What it needs there (the device tool copies the working tree; carry the rest, 64 MiB in all):
#   $ASSAY_BIN (default target/cuda/assay): assay built here with `--features cuda` for sm_90;
#       `ldd` must find every library on that machine (checked first, step 0).
#   $ASSAY_MODEL (default: the default model in the assay cache, else shared/gemma-3-270m-q4_k_m.gguf).
#   bench/.wheels/: lm-eval and the small dependencies the machine lacks (pip download here);
#       installed into a venv that sees the machine's torch and transformers.
# Steps (each bounded by `timeout`, so one slow step cannot eat the others' time):
#   0. nvidia-smi, the binary's libraries, `assay --version`.
#   1. Scores on GPU equal CPU's: 100 HellaSwag documents, default model, --gpu-layers 999 vs
#      CPU; the tolerance is --batch-size's (DESIGN: batching): same chosen answer on at least
#      97 of 100, mean |dlogprob| at most 0.05 at Q4_K_M.
#   2. Synthetic Llama-3.2-1B and Llama-3.1-8B shapes (bench/synth_models.py, written on the GPU),
#      converted by assay to Q8_0 GGUF.
#   3. assay (--gpu-layers 999, --batch-size auto) vs lm-eval hf (torch, bfloat16, --batch_size
#      auto) on HellaSwag, MMLU (high-school CS, 0-shot) and GSM8K (5-shot, first_n), default
#      model, 1B and 8B: docs/s, tokens/s (assay's own count), peak GPU memory, ratio.
# Writes $OUT/gpu.json (or bench/results/gpu.json without $OUT) and prints a table.
set -uo pipefail
cd "$(dirname "$0")/.."
out_dir="${OUT:-bench/results}"
work="${GPU_WORK:-/tmp/assay-gpu}"
mkdir -p "$work" "$out_dir"
bin="${ASSAY_BIN:-target/cuda/assay}"
model="${ASSAY_MODEL:-$HOME/.cache/assay/models/gemma-3-270m-q4_k_m.gguf}"
[ -f "$model" ] || model=shared/gemma-3-270m-q4_k_m.gguf
hs_docs="${HELLASWAG_DOCS:-200}" mmlu_docs="${MMLU_DOCS:-100}" gsm_docs="${GSM8K_DOCS:-32}"
rows="$work/rows.tsv"
: > "$rows"
log() { echo "[$(date +%T)] $*" >&2; }

# 0. The machine and the binary.
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || { log "no GPU"; exit 1; }
if ldd "$bin" | grep -q "not found"; then
  log "$bin needs libraries this machine lacks:"; ldd "$bin" | grep "not found" >&2; exit 1
fi
"$bin" --version || exit 1
[ -f "$model" ] || { log "no default model at $model (set ASSAY_MODEL)"; exit 1; }

# GPU memory: the peak of nvidia-smi's samples while a command runs.
gpu_peak() {
  local samples=$1; shift
  ( while true; do nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits; sleep 0.2; done ) > "$samples" &
  local sampler=$!
  "$@"; local rc=$?
  kill "$sampler" 2>/dev/null; wait "$sampler" 2>/dev/null
  return $rc
}

# run_assay NAME MODEL TASK DOCS [FLAGS...]: one row (docs, seconds, tokens/s, peak GPU MiB)
run_assay() {
  local name=$1 m=$2 task=$3 docs=$4; shift 4
  local o="$work/assay-$name-$task"
  log "assay $name $task ($docs docs)"
  local start end
  start=$(date +%s.%N)
  gpu_peak "$o.gpu" timeout 240 "$bin" run --model "$m" --tasks "$task" --limit "$docs" --no-cache \
    --no-record --include-path bench/assay_tasks --output-path "$o" --log-samples "$@" > "$o.out" 2> "$o.err" \
    || { log "failed: see $o.err"; tail -3 "$o.err" >&2; return 1; }
  end=$(date +%s.%N)
  local tps
  tps=$(grep -o '[0-9.]* tokens/s' "$o.err" | tail -1 | cut -d' ' -f1)
  printf 'assay\t%s\t%s\t%s\t%s\t%s\t%s\n' "$name" "$task" "$docs" "$(python3 -c "print($end - $start)")" \
    "${tps:-}" "$(sort -n "$o.gpu" | tail -1)" >> "$rows"
}

# 1. GPU scores vs CPU scores.
log "step 1: GPU vs CPU scores"
timeout 150 "$bin" run --model "$model" --tasks hellaswag --limit 100 --no-cache --no-record \
  --output-path "$work/cpu" --log-samples > /dev/null 2> "$work/cpu.err" || log "CPU run failed (see $work/cpu.err)"
timeout 60 "$bin" run --model "$model" --tasks hellaswag --limit 100 --no-cache --no-record --gpu-layers 999 \
  --output-path "$work/gpu" --log-samples > /dev/null 2> "$work/gpu.err" || log "GPU run failed (see $work/gpu.err)"
python3 - "$work" > "$work/agreement.json" <<'EOF' || log "no agreement figures"
import glob, json, sys
def load(d):
    f = glob.glob(f"{d}/*/samples_*.jsonl")[0]
    return {s["doc_id"]: [float(r[0][0]) for r in s["resps"]] for s in map(json.loads, open(f))}
cpu, gpu = load(sys.argv[1] + "/cpu"), load(sys.argv[1] + "/gpu")
d = [abs(a - b) for k in cpu for a, b in zip(cpu[k], gpu[k])]
same = sum(max(range(len(cpu[k])), key=cpu[k].__getitem__) == max(range(len(gpu[k])), key=gpu[k].__getitem__) for k in cpu)
r = {"docs": len(cpu), "same_choice": same, "mean_abs_dlogprob": sum(d) / len(d), "max_abs_dlogprob": max(d)}
r["within_tolerance"] = same >= 0.97 * len(cpu) and r["mean_abs_dlogprob"] <= 0.05
print(json.dumps(r))
EOF
cat "$work/agreement.json" >&2

# 2. Synthetic models, written on the GPU, converted once.
log "step 2: synthetic models"
venv="$work/venv"
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv --system-site-packages "$venv"
  "$venv/bin/pip" install -q --no-index --find-links bench/.wheels lm_eval 2> "$work/pip.err" \
    || log "lm-eval not installed from bench/.wheels (see $work/pip.err)"
fi
synth="$work/synth"
SYNTH_DEVICE=cuda timeout 200 "$venv/bin/python" bench/synth_models.py --out "$synth" llama-3.2-1b llama-3.1-8b >&2 \
  || log "synthetic models not written"
declare -A hf=([default]="" [llama-1b]="$synth/llama-3.2-1b-synthetic-speed-only" [llama-8b]="$synth/llama-3.1-8b-synthetic-speed-only")
declare -A gg=([default]="$model")
for name in llama-1b llama-8b; do
  if [ -d "${hf[$name]}" ]; then
    timeout 120 "$bin" run --model "${hf[$name]}" --dtype q8_0 --tasks arc_easy --limit 1 --no-cache --no-record \
      > /dev/null 2> "$work/convert-$name.err" && gg[$name]=$(grep -o '/[^ ]*\.gguf' "$work/convert-$name.err" | tail -1)
  fi
done
# The default model for lm-eval: transformers reads the GGUF itself (dequantised), as bench/vs_lm_eval.sh.
default_args="pretrained=$(dirname "$model"),gguf_file=$(basename "$model"),dtype=bfloat16"

# 3. assay vs lm-eval hf.
log "step 3: assay vs lm-eval"
for name in default llama-1b llama-8b; do
  [ -n "${gg[$name]:-}" ] || { log "skipping $name (no GGUF)"; continue; }
  for task in hellaswag mmlu gsm8k; do
    case $task in
      hellaswag) docs=$hs_docs a=hellaswag l=hellaswag_local ;;
      mmlu) docs=$mmlu_docs a=mmlu_high_school_computer_science l=mmlu_hscs_local ;;
      gsm8k) docs=$gsm_docs a=gsm8k_first_n l=gsm8k_first_n_local ;;
    esac
    run_assay "$name" "${gg[$name]}" "$a" "$docs" --gpu-layers 999 --batch-size auto --parallel 16
    if [ -x "$venv/bin/lm_eval" ]; then
      if [ "$name" = default ]; then args=$default_args; else args="pretrained=${hf[$name]},dtype=bfloat16"; fi
      o="$work/lm-eval-$name-$task"
      log "lm-eval $name $task ($docs docs)"
      start=$(date +%s.%N)
      gpu_peak "$o.gpu" timeout 300 "$venv/bin/lm_eval" --model hf --model_args "$args" --tasks "$l" \
        --include_path bench/lm_eval_tasks --limit "$docs" --batch_size auto --device cuda:0 \
        --output_path "$o" > "$o.out" 2> "$o.err" || { log "lm-eval failed: see $o.err"; continue; }
      end=$(date +%s.%N)
      printf 'lm-eval\t%s\t%s\t%s\t%s\t\t%s\n' "$name" "$task" "$docs" "$(python3 -c "print($end - $start)")" \
        "$(sort -n "$o.gpu" | tail -1)" >> "$rows"
    fi
  done
done

python3 - "$rows" "$work/agreement.json" "$out_dir/gpu.json" <<'EOF'
import json, sys
rows, agreement, out = sys.argv[1:4]
table = {}
for line in open(rows):
    tool, name, task, docs, secs, tps, mem = line.rstrip("\n").split("\t")
    table[(tool, name, task)] = {"tool": tool, "model": name, "task": task, "docs": int(docs),
                                 "seconds": float(secs), "docs_per_s": int(docs) / float(secs),
                                 "tokens_per_s": float(tps) if tps else None,
                                 "peak_gpu_mib": int(mem) if mem else None}
print(f"{'model':<10}{'task':<11}{'assay docs/s':>13}{'lm-eval docs/s':>15}{'ratio':>7}{'assay GPU MiB':>14}{'lm-eval GPU MiB':>16}")
for (tool, name, task), r in table.items():
    if tool != "assay":
        continue
    lm = table.get(("lm-eval", name, task))
    r["ratio_vs_lm_eval"] = lm and lm["seconds"] / r["seconds"]
    print(f"{name:<10}{task:<11}{r['docs_per_s']:>13.2f}{(lm or {}).get('docs_per_s', float('nan')):>15.2f}"
          f"{r['ratio_vs_lm_eval'] or float('nan'):>7.2f}{r['peak_gpu_mib'] or 0:>14}{(lm or {}).get('peak_gpu_mib') or 0:>16}")
try:
    agree = json.load(open(agreement))
except Exception:
    agree = None
json.dump({"gpu_vs_cpu": agree, "rows": list(table.values())}, open(out, "w"), indent=1)
print(f"wrote {out}")
EOF
