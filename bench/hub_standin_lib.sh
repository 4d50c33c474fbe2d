# Sourced by the Hub benchmarks: build the stand-in Hub's repositories from ../shared/data into
# WORK/hub, serve them in the background, and export HF_ENDPOINT (stopped on exit).
# start_hub_standin WORK
start_hub_standin() {
  local work=$1
  target/release/assay-hub-standin --data-dir ../shared/data --root "$work/hub" --port 0 \
    > "$work/hub.url" 2> "$work/hub.log" &
  hub_standin_pid=$!
  trap 'kill $hub_standin_pid 2>/dev/null || true' EXIT
  for _ in $(seq 1 120); do [ -s "$work/hub.url" ] && break; sleep 0.5; done
  [ -s "$work/hub.url" ] || { echo "the stand-in Hub did not start: see $work/hub.log" >&2; return 1; }
  HF_ENDPOINT=$(head -1 "$work/hub.url")
  export HF_ENDPOINT
}
