# Sourced by the served-model benchmarks: start and stop `assay-standin` in the background.
# start_standin PORT [ARGS...]: starts it on PORT and waits until it answers.
start_standin() {
  local port=$1; shift
  ./target/release/assay-standin --port "$port" "$@" > "bench/.work/standin_$port.log" 2>&1 &
  standin_pids+=($!)
  for _ in $(seq 300); do
    curl -sf "localhost:$port/v1/models" > /dev/null && return 0
    sleep 0.2
  done
  echo "the stand-in on port $port did not start: see bench/.work/standin_$port.log" >&2
  return 1
}
# stop_standins: stops every stand-in started so far.
stop_standins() {
  for p in "${standin_pids[@]}"; do kill "$p" 2> /dev/null || true; wait "$p" 2> /dev/null || true; done
  standin_pids=()
}
standin_pids=()
trap stop_standins EXIT
