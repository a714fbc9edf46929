#!/usr/bin/env bash
# Cost of tickprobe's Go probes on the Go fixture, as ratios to untraced in
# one run: per GC cycle (runtime.GC() via /gc?n=N: two stop-the-world
# pauses, gcStart, gcMarkTermination, plus the goroutine parks of the GC
# workers when a tick is traced) and per goroutine created and exited
# (/spawn?n=N: newproc1's RETs + goexit0). Phases alternate untraced /
# traced so machine load hits both alike. A benchmark, not a test.
#
#   bash scripts/bench_go.sh [build-dir] [rounds]
set -euo pipefail
BUILD=${1:-build}
ROUNDS=${2:-3}
GC_N=${GC_N:-200}
SPAWN_N=${SPAWN_N:-20000}
TP="$BUILD/bin/tickprobe"
GS="$BUILD/bin/go_gameserver_stripped"
[ -x "$TP" ] && [ -x "$GS" ] || { echo "build tickprobe and go_gameserver first" >&2; exit 2; }

out=$(mktemp)
"$GS" -duration 600s >"$out" 2>&1 &
gs=$!
tp=""
cleanup() {
  [ -n "$tp" ] && kill "$tp" 2>/dev/null || true
  kill "$gs" 2>/dev/null || true
  rm -f "$out"
}
trap cleanup EXIT
for _ in $(seq 100); do grep -q ready "$out" && break; sleep 0.1; done
port=$(awk '/ready/ {print $2}' "$out")

timed() { curl -s -o /dev/null -w '%{time_total}' "http://127.0.0.1:$port$1"; }

# One measurement: seconds for N collections, N goroutines.
measure() {
  local gc spawn
  gc=$(timed "/gc?n=$GC_N")
  spawn=$(timed "/spawn?n=$SPAWN_N")
  echo "$gc $spawn"
}

attach() { # $1: tickprobe subcommand line; waits until its uprobes are in place
  "$TP" $1 --pid "$gs" -d 0 -q --json >/dev/null 2>&1 &
  tp=$!
  local last=-1 n stable=0
  for _ in $(seq 600); do
    n=$(ls -l /proc/$tp/fd 2>/dev/null | grep -c 'perf_event' || true)
    if [ "$n" = "$last" ] && [ "$n" -gt 0 ]; then stable=$((stable + 1)); else stable=0; fi
    last=$n
    [ $stable -ge 10 ] && break
    sleep 0.1
  done
}
detach() { kill -TERM "$tp"; wait "$tp" 2>/dev/null || true; tp=""; }

measure >/dev/null  # warm up
declare -a base_gc base_sp tr_gc tr_gct tr_sp
for r in $(seq "$ROUNDS"); do
  read -r g s < <(measure); base_gc+=("$g"); base_sp+=("$s")
  attach "pauses"
  read -r g _ < <(measure); tr_gc+=("$g")
  detach
  attach "pauses --tick-function main.tick --tick-id rdi"
  read -r g _ < <(measure); tr_gct+=("$g")
  detach
  attach "coro"
  read -r _ s < <(measure); tr_sp+=("$s")
  detach
done

python3 - "$GC_N" "$SPAWN_N" "${base_gc[*]}" "${tr_gc[*]}" "${base_sp[*]}" "${tr_sp[*]}" "${tr_gct[*]}" <<'EOF'
import statistics, sys
gc_n, sp_n = int(sys.argv[1]), int(sys.argv[2])
bg, tg, bs, ts, tgt = ([float(x) for x in a.split()] for a in sys.argv[3:8])
m = statistics.median
print(f"{'':26}{'untraced':>12}{'traced':>12}{'ratio':>8}   (median of {len(bg)} rounds)")
print(f"{'per GC cycle (runtime.GC)':26}{m(bg)/gc_n*1e6:10.1f}us{m(tg)/gc_n*1e6:10.1f}us{m(tg)/m(bg):8.2f}   tickprobe pauses (STW, GC cycles)")
print(f"{'per GC cycle (runtime.GC)':26}{m(bg)/gc_n*1e6:10.1f}us{m(tgt)/gc_n*1e6:10.1f}us{m(tgt)/m(bg):8.2f}   tickprobe pauses --tick-function (+ every gopark)")
print(f"{'per goroutine (spawn+exit)':26}{m(bs)/sp_n*1e6:10.2f}us{m(ts)/sp_n*1e6:10.2f}us{m(ts)/m(bs):8.2f}   tickprobe coro")
EOF
