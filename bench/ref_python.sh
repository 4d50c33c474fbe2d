#!/usr/bin/env bash
# Prints the Python interpreter the reference scripts use: $REF_PYTHON, else bench/.venv's,
# created on first use with torch, transformers, gguf, accelerate and lm-eval.
set -euo pipefail
cd "$(dirname "$0")/.."
py="${REF_PYTHON:-bench/.venv/bin/python}"
if [ ! -x "$py" ]; then
  python3 -m venv bench/.venv >&2
  bench/.venv/bin/pip install -q torch transformers gguf numpy accelerate lm-eval >&2
  py=bench/.venv/bin/python
fi
echo "$py"
