#!/usr/bin/env bash
# Builds the portable assay once and packs it two ways, into dist/:
#   assay-VERSION-x86_64-linux.tar.gz   bin/assay and lib/assay/*.so, unpack anywhere
#   assay_eval-VERSION-py3-none-manylinux_2_N_x86_64.whl   pip install it (scripts/wheel.py)
#
#   bash scripts/dist.sh
#
# The binary is built for the x86-64 baseline (no -C target-cpu=native) with llama.cpp's CPU
# backend as one loadable library per instruction-set level (GGML_BACKEND_DL with
# GGML_CPU_ALL_VARIANTS: the `portable` feature), so the same files run with or without AVX2 and
# use AVX-512 where there is one. llama.cpp's libraries, the CPU backends and the system
# libraries a manylinux wheel may not assume (OpenMP, OpenSSL) go to lib/assay, found through
# the binary's run path. The build has its own target folder (target/dist), apart from the
# native build of scripts/setup.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
say() { printf '[dist] %s\n' "$*"; }

version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
target=target/dist
say "building assay $version (portable, release) in $target"
# RUSTFLAGS replaces .cargo/config.toml's target-cpu=native. The old-style run path (DT_RPATH)
# also serves the libraries' own dependencies (libllama.so needs libggml.so).
RUSTFLAGS='-C link-arg=-Wl,--disable-new-dtags,-rpath,$ORIGIN/../lib/assay' \
  CARGO_TARGET_DIR=$target cargo build --release --locked -p assay --features portable 2>&1 \
  | grep -E '^(error|warning: unused)|Finished' || true
test -x $target/release/assay || { echo "dist: the build failed; rerun the cargo command above to see why" >&2; exit 1; }

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
root="$stage/assay-$version-x86_64-linux"
mkdir -p "$root/bin" "$root/lib/assay" dist
cp $target/release/assay "$root/bin/"
strip "$root/bin/assay"
# llama.cpp's libraries under their sonames (libllama.so.0...), and its CPU backends.
out=$(ls -d $target/release/build/llama-cpp-sys-2-*/out/backends | head -1 | xargs dirname)
cp -L "$out"/lib/lib*.so.0 "$root/lib/assay/"
cp -L "$out"/backends/*.so "$root/lib/assay/"
# Not the Sapphire Rapids variant: its AMX matrix products crash on Q4_K_M models (the reason
# .cargo/config.toml builds without AMX); such a CPU loads the next best, AVX-512 with BF16.
rm -f "$root/lib/assay/libggml-cpu-sapphirerapids.so"
# System libraries outside the manylinux set, as the binary resolves them here.
for lib in libgomp.so.1 libssl.so.3 libcrypto.so.3; do
  path=$(ldd "$root/bin/assay" | awk -v l="$lib" '$1 == l {print $3}')
  [ -n "$path" ] && cp -L "$path" "$root/lib/assay/"
done
strip --strip-unneeded "$root"/lib/assay/*.so
cp README.md "$root/"
# A check that the packed binary loads its libraries from the package, not from the build.
missing=$(ldd "$root/bin/assay" | grep 'not found' || true)
[ -z "$missing" ] || { echo "dist: unresolved libraries: $missing" >&2; exit 1; }

tar -C "$stage" -czf "dist/assay-$version-x86_64-linux.tar.gz" "assay-$version-x86_64-linux"
say "wrote dist/assay-$version-x86_64-linux.tar.gz"
wheel=$(python3 scripts/wheel.py "$root" "$version" dist)
say "wrote $wheel"
