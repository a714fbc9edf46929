#!/usr/bin/env bash
# Runs the test suite several times with CPU pressure alongside (one busy
# loop per core at normal priority, or stress-ng when installed), to find
# tests that only pass on a quiet machine. Not part of CI; use it before
# landing.
#
#   bash scripts/test-under-load.sh [RUNS] [-- extra ctest args]
#   RUNS defaults to 3. Builds first (scripts/build.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${1:-3}
shift || true
[ "${1:-}" = "--" ] && shift
bash scripts/build.sh >/dev/null
LOG_DIR=$(mktemp -d /tmp/tickprobe-load.XXXXXX)
load_pids=()
start_load() {
  local n; n=$(nproc)
  if command -v stress-ng >/dev/null 2>&1; then
    stress-ng --cpu "$n" --cpu-method matrixprod --quiet &
    load_pids+=($!)
  else
    for _ in $(seq "$n"); do (while :; do :; done) & load_pids+=($!); done
  fi
}
stop_load() {
  for p in "${load_pids[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  load_pids=()
}
trap stop_load EXIT
clean=0
for i in $(seq "$RUNS"); do
  start_load
  if (cd build && ctest --output-on-failure --timeout 600 "$@") >"$LOG_DIR/run$i.log" 2>&1; then
    clean=$((clean + 1)); echo "run $i/$RUNS: clean"
  else
    echo "run $i/$RUNS: FAILED"; grep -E "^\s+[0-9]+ - " "$LOG_DIR/run$i.log" | sed 's/^/    /' || true
  fi
  stop_load
done
echo "under load: $clean of $RUNS runs clean (logs in $LOG_DIR)"
[ "$clean" -eq "$RUNS" ]
