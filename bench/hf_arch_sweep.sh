#!/usr/bin/env bash
# One tiny random-weight Hugging Face checkpoint per architecture assay converts (llama, llama3
# (byte-level BPE + llama3 RoPE scaling), mistral, qwen2, qwen3, gemma2, gemma3, phi3, olmo2;
# bench/hf_tiny_models.py writes them with transformers), each scored by lm-eval's hf backend
# (transformers, float32) and by assay on the folder (`--model hf --model_args
# pretrained=DIR,dtype=float32`: native conversion to F32 GGUF, llama.cpp) on the same task file
# and documents; per architecture the chosen answers and per-choice log-likelihoods compared
# (bench/lm_eval_native_compare.py --same-model). An architecture assay fails on is reported with
# its error (and, where a GGUF was written, its metadata) and the sweep goes on.
#
#   bash bench/hf_arch_sweep.sh [LIMIT] [NAMES]    # default 30 HellaSwag documents, 0-shot, all
#   bash bench/hf_arch_sweep.sh 5 "llama qwen2"    # a quick look at two
#
# Needs bench/.venv with lm-eval, transformers and tokenizers, ../shared/data (HellaSwag, and
# ARC for the BPE training text), bench/.work/gemma3-hf-f32 for Gemma 3's tokenizer (written by
# bench/hf_checkpoint_check.sh), and a release build (target/release/assay; this script does not
# build). Prints a table; writes bench/results/hf_arch_sweep.json (a run of some NAMES only
# writes bench/results/hf_arch_sweep_partial.json).
set -uo pipefail
cd "$(dirname "$0")/.."
limit="${1:-30}"
all="llama llama3 mistral qwen2 qwen3 gemma2 gemma3 phi3 phi3-gemma-vocab olmo2"
names="${2:-$all}"
py=$(bash bench/ref_python.sh)
gemma_tok=bench/.work/gemma3-hf-f32
if [ ! -f "$gemma_tok/tokenizer.json" ]; then
  echo "no $gemma_tok: run bench/hf_checkpoint_check.sh first (it writes the Gemma 3 checkpoint)" >&2
  exit 2
fi
models=bench/.work/hf_tiny
work=bench/.work/hf_arch_sweep
rm -rf "$work"
mkdir -p "$work" bench/results
# shellcheck disable=SC2086
"$py" bench/hf_tiny_models.py "$models" "$gemma_tok" $names 2>&1 | grep -v "Writing model shards" >&2 || exit 1
model=$(python3 -c "import os; print(os.path.join(os.environ.get('ASSAY_CACHE_DIR', os.path.expanduser('~/.cache/assay')), 'models', 'gemma-3-270m-q4_k_m.gguf'))")
export ASSAY_CACHE_DIR="$PWD/$work/cache"
mkdir -p "$ASSAY_CACHE_DIR/models"
ln -sf "$model" "$ASSAY_CACHE_DIR/models/"
task=hellaswag_local
for name in $names; do
  dir="$PWD/$models/$name"
  out="$work/$name"
  mkdir -p "$out"
  echo "$name: lm-eval hf (float32), $limit documents" >&2
  if ! "$py" -m lm_eval --model hf --model_args "pretrained=$dir,dtype=float32" \
      --tasks "$task" --include_path bench/lm_eval_tasks --limit "$limit" --batch_size 8 --device cpu \
      --log_samples --output_path "$out/lm_eval" > "$out/lm_eval.log" 2>&1; then
    echo "lm-eval failed" > "$out/failed"
    tail -5 "$out/lm_eval.log" >&2
    continue
  fi
  echo "$name: assay --model hf --model_args pretrained=DIR,dtype=float32" >&2
  # The binary may be rebuilt while the sweep runs: each row names the one it ran.
  sha256sum target/release/assay | cut -c1-12 > "$out/assay_binary"
  # The task file names its data file relative to the repository root, as lm-eval reads it.
  if ! target/release/assay run --model hf --model_args "pretrained=$dir,dtype=float32" \
      --data-dir . --include-path bench/lm_eval_tasks --tasks "$task" --limit "$limit" \
      --log-samples --no-record --no-cache --output-path "$out/assay" > "$out/assay.log" 2> "$out/assay.err"; then
    echo "assay failed" > "$out/failed"
    tail -5 "$out/assay.err" >&2
  fi
  # The converted GGUF's metadata (not the vocabulary), for a look at what assay wrote.
  gguf=$(grep -o "converted to GGUF.*: \S*\.gguf" "$out/assay.err" | sed 's/.*: //' | tail -1)
  if [ -n "$gguf" ] && [ -f "$gguf" ]; then
    "$py" - "$gguf" > "$out/gguf_metadata.txt" 2>&1 <<'PY'
import sys
from gguf import GGUFReader
r = GGUFReader(sys.argv[1])
for f in r.fields.values():
    if f.name.startswith("GGUF.") or f.name in ("tokenizer.ggml.tokens", "tokenizer.ggml.scores",
                                                 "tokenizer.ggml.token_type", "tokenizer.ggml.merges"):
        if f.name.startswith("tokenizer.ggml."):
            print(f"{f.name}: [{len(f.data)} entries]")
        continue
    v = f.contents()
    print(f"{f.name}: {v if not isinstance(v, list) or len(v) < 40 else f'[{len(v)} entries] {v[:8]}...'}")
for t in r.tensors:
    print(f"tensor {t.name} {t.tensor_type.name} {list(t.shape)}")
PY
  fi
  "$py" bench/lm_eval_native_compare.py --same-model "$out/lm_eval" "$out/assay" "$task" > "$out/compare.txt" 2>&1
done
json=bench/results/hf_arch_sweep.json
[ "$names" = "$all" ] || json=bench/results/hf_arch_sweep_partial.json
"$py" - "$work" "$models" "$limit" "$names" > "$json" <<'PY'
import importlib.metadata as m
import glob, json, os, statistics, sys
work, models, limit, names = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4].split()
def binary():
    import datetime, hashlib
    path = "target/release/assay"
    st = os.stat(path)
    return {"path": path, "sha256_12": hashlib.sha256(open(path, "rb").read()).hexdigest()[:12],
            "mtime": datetime.datetime.fromtimestamp(st.st_mtime, datetime.timezone.utc).isoformat(timespec="seconds")}


rows = []
for name in names:
    out = os.path.join(work, name)
    cfg = json.load(open(os.path.join(models, name, "config.json")))
    tok = json.load(open(os.path.join(models, name, "tokenizer.json")))
    pre = tok.get("pre_tokenizer") or {}
    tokenizer = ("byte-level BPE" if "ByteLevel" in json.dumps(pre) else "Gemma 3 (SentencePiece-style BPE)")
    if "Gemma" in tokenizer and any(t["content"] == "<|endoftext|>" for t in tok.get("added_tokens", [])):
        tokenizer += " + Phi-3's specials"
    row = {"arch": name, "architecture": cfg["architectures"][0], "vocab_size": cfg["vocab_size"],
           "tokenizer": tokenizer}
    if os.path.exists(os.path.join(out, "failed")):
        row["failed"] = open(os.path.join(out, "failed")).read().strip()
        err = os.path.join(out, "assay.err" if row["failed"].startswith("assay") else "lm_eval.log")
        row["error"] = "".join(open(err).readlines()[-8:]).strip() if os.path.exists(err) else None
    compare = os.path.join(out, "compare.txt")
    if os.path.exists(compare):
        for line in open(compare):
            if line.startswith("{"):
                r = json.loads(line)
                if r.get("compared_choices"):
                    row.update(docs=r["docs"], identical_prompts=r["identical_prompts"],
                               same_choice=r["same_choice"], compared_choices=r["compared_choices"],
                               same_choice_fraction=r["same_choice"] / r["compared_choices"],
                               mean_abs_logprob_delta=r["mean_abs_logprob_delta"],
                               max_abs_logprob_delta=r["max_abs_logprob_delta"])
                elif r.get("missing"):
                    row["missing_log"] = r["missing"]
    # How far apart the choices are (lm-eval's log-likelihoods): random weights and choices of
    # different token counts put them tens of nats apart, so the chosen answer is a weak test
    # here and |delta| the strong one.
    spreads = []
    for path in glob.glob(os.path.join(out, "lm_eval", "**", "samples_*.jsonl"), recursive=True)[:1]:
        for line in open(path):
            lls = [float(r[0][0] if isinstance(r[0], list) else r[0]) for r in json.loads(line)["filtered_resps"]]
            spreads.append(max(lls) - min(lls))
    if spreads:
        row["median_choice_spread_nats"] = statistics.median(spreads)
    if "unordered_map::at" in (row.get("error") or "") and cfg["architectures"][0] == "Phi3ForCausalLM":
        row["hint"] = ("llama.cpp's vocabulary loader sets Phi-3's token attributes when general.name contains "
                       "'phi3'/'phi-3' and then looks up '</s>', '<unk>', '<s>', '<|endoftext|>' with "
                       "unordered_map::at; this vocabulary lacks '<|endoftext|>'")
    if os.path.exists(os.path.join(out, "assay_binary")):
        row["assay_binary_sha256_12"] = open(os.path.join(out, "assay_binary")).read().strip()
    gguf_meta = os.path.join(out, "gguf_metadata.txt")
    if os.path.exists(gguf_meta):
        row["gguf_arch"] = next((l.split(": ", 1)[1].strip() for l in open(gguf_meta)
                                 if l.startswith("general.architecture:")), None)
        row["gguf_pre_tokenizer"] = next((l.split(": ", 1)[1].strip() for l in open(gguf_meta)
                                          if l.startswith("tokenizer.ggml.pre:")), None)
    rows.append(row)
lines = ["| arch | HF class | tokenizer | docs | same prompts | same chosen answer | mean |Δ logprob| | max |Δ logprob| |",
         "|---|---|---|---:|---:|---:|---:|---:|"]
for r in rows:
    if "same_choice" in r:
        lines.append(f"| {r['arch']} | {r['architecture']} | {r['tokenizer']} | {r['docs']} | "
                     f"{r['identical_prompts']}/{r['docs']} | {r['same_choice']}/{r['compared_choices']} | "
                     f"{r['mean_abs_logprob_delta']:.2e} | {r['max_abs_logprob_delta']:.2e} |")
    else:
        lines.append(f"| {r['arch']} | {r['architecture']} | {r['tokenizer']} | - | - | "
                     f"{r.get('failed', 'no comparison')} | | |")
sys.stderr.write("\n".join(lines) + "\n")
print(json.dumps({
    "reference": f"lm-eval {m.version('lm_eval')} hf backend (transformers {m.version('transformers')}), "
                 "pretrained=DIR, dtype=float32, batch 8, cpu",
    "assay": "assay run --model hf --model_args pretrained=DIR,dtype=float32 (native conversion to F32 GGUF)",
    "models": "bench/hf_tiny_models.py: random weights (matrices N(0, 0.15)), hidden 128, 4 heads, 2 KV heads, "
              "intermediate 256; see its docstring",
    "assay_binary": binary(),
    "task": "hellaswag_local (bench/lm_eval_tasks), 0-shot", "limit": limit,
    "note": "random weights put the choices tens of nats apart (median_choice_spread_nats), so the same "
            "chosen answer is a weak test; mean/max |dlogprob| is the strong one (a wrong Q row order "
            "in a Llama-family conversion gave mean 6-7 nats)",
    "rows": rows}, indent=1))
PY
cat "$work"/*/failed 2>/dev/null | grep -q . && echo "some architectures failed: see $work/NAME/" >&2
echo "wrote $json" >&2
