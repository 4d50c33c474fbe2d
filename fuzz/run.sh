#!/usr/bin/env bash
# Runs every fuzz target (or the ones named) for SECONDS each, seeded from fuzz/corpus/<target>
# (read-only: new inputs go to fuzz/.work/<target>), and prints a table of executions, corpus
# size and crashes; writes it as JSON to fuzz/.work/summary.json. A crash stops with exit 1 and
# leaves its input in fuzz/artifacts/<target>/.
#   bash fuzz/run.sh 5                  # the CI smoke run
#   bash fuzz/run.sh 600 task_yaml      # ten minutes on one target
set -euo pipefail
cd "$(dirname "$0")"
seconds=${1:-5}
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  targets=(task_yaml dataset answers extract filters grading results openai gguf hub_names)
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "cargo fuzz is missing: cargo install cargo-fuzz --locked" >&2
  exit 2
fi
# cargo fuzz passes nightly flags (-Zsanitizer=address ...): the machine's one toolchain is
# told to accept them, so that CI and a developer's machine build the same way.
export RUSTC_BOOTSTRAP=1
fuzz=(cargo fuzz)
"${fuzz[@]}" build -O
mkdir -p .work
rows=()
status=0
printf '%-10s %8s %12s %10s %8s %s\n' target seconds executions "execs/s" corpus result
for t in "${targets[@]}"; do
  mkdir -p ".work/$t"
  log=".work/$t.log"
  if "${fuzz[@]}" run -O "$t" ".work/$t" "corpus/$t" -- \
      -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 >"$log" 2>&1; then
    result=ok
  else
    result="CRASH (see $log and artifacts/$t)"
    status=1
  fi
  execs=$(grep -a -o 'stat::number_of_executed_units: [0-9]*' "$log" | tail -1 | grep -o '[0-9]*$' || echo 0)
  corpus=$(find ".work/$t" "corpus/$t" -type f | wc -l)
  rate=$(( execs / seconds ))
  printf '%-10s %8s %12s %10s %8s %s\n' "$t" "$seconds" "$execs" "$rate" "$corpus" "$result"
  rows+=("{\"target\": \"$t\", \"seconds\": $seconds, \"executions\": $execs, \"corpus\": $corpus, \"result\": \"$result\"}")
done
(IFS=,; echo "[${rows[*]}]") > .work/summary.json
exit $status
