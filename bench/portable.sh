#!/usr/bin/env bash
# The portable build (scripts/dist.sh: x86-64 baseline, llama.cpp's CPU backend chosen at run
# time) against the native one (scripts/setup.sh: -C target-cpu=native), A B A B, on the same
# documents with the default model (Q4_K_M); then the portable binary on an emulated CPU without
# AVX (qemu-x86_64 -cpu Nehalem, SSE4.2), where the native one cannot start.
#
#   bash bench/portable.sh [DOCS=100] [ROUNDS=3]
#
# Needs target/release/assay, dist/assay-*-x86_64-linux.tar.gz, qemu-user (apt) for the last
# part. Prints a table; writes bench/results/portable.json.
set -euo pipefail
cd "$(dirname "$0")/.."
docs="${1:-100}"
rounds="${2:-3}"
work=bench/.work/portable
rm -rf "$work"
mkdir -p "$work" bench/results
tar -C "$work" -xzf dist/assay-*-x86_64-linux.tar.gz
portable=$(ls -d "$work"/assay-*-x86_64-linux)/bin/assay
native=target/release/assay
export ASSAY_REGISTRY="$PWD/$work/registry.sqlite"
rows="$work/rows.tsv"
: > "$rows"
for round in $(seq "$rounds"); do
  for side in native portable; do
    bin=$native
    [ "$side" = portable ] && bin=$portable
    echo "round $round: $side" >&2
    "$bin" run --tasks hellaswag --limit "$docs" --no-cache --no-record \
      --output-path "$work/out-$side" > "$work/$side.out" 2> "$work/$side.err"
    # The engine's own time, from the summary line ("N docs in S s").
    secs=$(sed -n 's/^[0-9]* docs in \([0-9.]*\)s.*/\1/p' "$work/$side.err" | tail -1)
    printf '%s\t%s\t%s\n' "$side" "$round" "$secs" >> "$rows"
  done
done
variant=$(RUST_LOG=debug "$portable" run --tasks hellaswag --limit 1 --no-cache --no-record 2>&1 \
  | grep -o 'libggml-cpu-[a-z0-9_]*\.so' | head -1 || true)
emulated=skipped
if command -v qemu-x86_64 > /dev/null; then
  if RUST_LOG=debug qemu-x86_64 -cpu Nehalem "$portable" run --tasks hellaswag --limit 2 --no-cache \
    --no-record --output-path "$work/out-nehalem" > "$work/nehalem.out" 2> "$work/nehalem.err"; then
    emulated="ran, $(grep -o 'libggml-cpu-[a-z0-9_]*\.so' "$work/nehalem.err" | head -1)"
  else
    emulated="failed (see $work/nehalem.err)"
  fi
  if qemu-x86_64 -cpu Nehalem "$native" run --tasks hellaswag --limit 1 --no-cache --no-record \
    > /dev/null 2> "$work/nehalem-native.err"; then
    native_emulated=ran
  else
    native_emulated="failed: $(tail -1 "$work/nehalem-native.err" | cut -c1-80)"
  fi
fi
python3 - "$rows" "$docs" "$variant" "$emulated" "${native_emulated:-skipped}" \
  "$(lscpu | sed -n 's/^Model name: *//p')" <<'PY'
import collections, json, statistics, sys
rows, docs, variant, emulated, native_emulated, machine = sys.argv[1:7]
secs = collections.defaultdict(list)
for line in open(rows):
    side, _, s = line.split("\t")
    secs[side].append(float(s))
med = {k: statistics.median(v) for k, v in secs.items()}
print(f"| build | engine seconds (median of {len(secs['native'])}) | docs/s | vs native |")
print("|---|---:|---:|---:|")
for side in ("native", "portable"):
    print(f"| {side} | {med[side]:.1f} | {int(docs) / med[side]:.2f} | {med['native'] / med[side]:.2f}x |")
print(f"portable build's CPU backend here: {variant}")
print(f"portable build on qemu -cpu Nehalem (no AVX): {emulated}; native build there: {native_emulated}")
json.dump({"machine": machine, "docs": int(docs), "task": "hellaswag", "model": "default (Q4_K_M)",
           "seconds": secs, "median": med, "portable_vs_native": med["native"] / med["portable"],
           "portable_cpu_backend": variant, "nehalem_portable": emulated,
           "nehalem_native": native_emulated},
          open("bench/results/portable.json", "w"), indent=1)
PY
