#!/usr/bin/env bash
# Checks that the stand-in Hub is a faithful Hub, not just a server for assay: Python's
# `datasets.load_dataset` reads each of its repositories (with bench/.venv's datasets) and gets
# the real split sizes and fields (every built-in task's dataset); the gated repositories refuses without the token and opens
# with it; then assay reads offline the cache Python filled.
#
#   bash bench/standin_datasets_check.sh
set -euo pipefail
cd "$(dirname "$0")/.."
py=$(bash bench/ref_python.sh)
work=bench/.work/standin_datasets
rm -rf "$work"
mkdir -p "$work"
[ -n "${SKIP_BUILD:-}" ] || cargo build --release -q -p assay -p assay-hub-standin
source bench/hub_standin_lib.sh
start_hub_standin "$work"
export HF_HOME="$PWD/$work/hf"
"$py" - <<'PY'
import datasets
checks = [("openai/gsm8k", "main", "test", 1319), ("allenai/ai2_arc", "ARC-Easy", "test", 2376),
          ("allenai/ai2_arc", "ARC-Challenge", "test", 1172),
          ("cais/mmlu", "high_school_computer_science", "test", 100),
          ("baber/piqa", None, "validation", 1838), ("allenai/winogrande", "winogrande_xl", "validation", 1267),
          ("truthfulqa/truthful_qa", "multiple_choice", "validation", 817),
          ("truthfulqa/truthful_qa", "generation", "validation", 817),
          ("Rowan/hellaswag", None, "validation", 10042), ("aps/super_glue", "boolq", "validation", 3270),
          ("allenai/openbookqa", "main", "test", 500), ("openai/openai_humaneval", None, "test", 164),
          ("EleutherAI/hendrycks_math", "algebra", "test", 1187), ("HuggingFaceH4/MATH-500", None, "test", 500),
          ("juletxara/mgsm", "de", "test", 250), ("juletxara/mgsm", "de", "train", 8),
          ("EleutherAI/drop", None, "validation", 9536)]
for repo, config, split, n in checks:
    ds = datasets.load_dataset(repo, config, split=split)
    status = "ok" if len(ds) == n else f"WRONG (expected {n})"
    print(f"{repo:26} {str(config):30} {split:10} {len(ds):5} {status}  {list(ds.features)}")
    assert len(ds) == n
try:
    datasets.load_dataset("assay-standin/gated-gsm8k", "main", split="test")
    raise SystemExit("the gated repository opened without a token")
except Exception as e:
    print("gated without a token:", type(e).__name__)
ds = datasets.load_dataset("assay-standin/gated-gsm8k", "main", split="test", token="hf_standin_gated_token")
print("gated with the token:", len(ds), "rows")
ds = datasets.load_dataset("Idavidrein/gpqa", "gpqa_diamond", split="train", token="hf_standin_gated_token")
print("Idavidrein/gpqa gpqa_diamond with the token:", len(ds), "rows")
assert len(ds) == 198
PY
HF_HUB_OFFLINE=1 HF_ENDPOINT=http://127.0.0.1:9 target/release/assay run --no-record --no-cache \
  --include-path bench/hub_tasks --tasks arc_easy_hub --limit 4 2>&1 | grep -E "note:|arc_easy_hub"
echo "assay read, offline, the files Python's datasets downloaded"
