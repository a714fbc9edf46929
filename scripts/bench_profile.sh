#!/usr/bin/env bash
# CPU profiling at 99 Hz on tickgame under bots: tickprobe (with and without
# kernel stacks) vs a bpftrace `profile` script vs `perf record --call-graph
# dwarf`, in one run.
#
# Each phase: a fresh tickgame + BOTS tickbots, WARM s of warm-up, then one
# tracer on the server for PHASE s. Reported per tracer (median of ROUNDS):
#  - the sampling program's average cost (bpf_stats run_time_ns/run_cnt) and
#    its total as % of the server's CPU time in the window (BPF tracers);
#  - the tracer process's own CPU as % of the server's CPU time;
#  - stack completeness: the share of samples whose stack reaches main or a
#    thread start (start_thread / clone3 / _start).
#
# usage: scripts/bench_profile.sh [BOTS=200] [ROUNDS=2] [PHASE_SECONDS=10]
#   TRACERS="tickprobe bpftrace"  a subset of the phases (default: all of
#   tickprobe tickprobe-user tickprobe-threv bpftrace perf)
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/bench_lib.sh
BIN=${BIN:-build/bin}
BOTS=${1:-200}; ROUNDS=${2:-2}; PHASE=${3:-10}; WARM=3
for b in tickgame tickbots tickprobe; do
  [ -x "$BIN/$b" ] || { echo "bench_profile: $BIN/$b not found" >&2; echo "hint: make -C build tickgame tickbots tickprobe" >&2; exit 1; }
done
# CPU time of a process's live threads in ns (schedstat: exact, where
# /proc/PID/stat counts 10 ms ticks, too coarse for a tracer's few ms).
cpu_ns() { cat /proc/"$1"/task/*/schedstat 2> /dev/null | awk '{s+=$1} END {print s+0}'; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
W=$(mktemp -d)
bpf_stats_on
trap 'bpf_stats_restore; [ -n "${KEEP:-}" ] && echo "kept $W" >&2 || rm -rf "$W"' EXIT

phase() {  # $1 = tickprobe|bpftrace|perf -> "prog_avg_ns prog_pct tool_pct complete_pct"
  local port admin game bots tp name="" ids="" c0 c1 a0 a1 cost="0 0"
  port=$(free_port); admin=$(free_port)
  "$BIN/tickgame" --port "$port" --admin-port "$admin" --duration $((PHASE + WARM + 30)) > /dev/null 2>&1 & game=$!
  for _ in $(seq 50); do curl -sf "http://127.0.0.1:$admin/healthz" > /dev/null && break; sleep 0.1; done
  "$BIN/tickbots" --port "$port" --clients "$BOTS" --duration $((PHASE + WARM + 28)) > /dev/null 2>&1 & bots=$!
  sleep "$WARM"
  prog_snapshot "$W/s0.json"
  case $1 in
    tickprobe) "$BIN/tickprobe" profile -q --pid "$game" -F 99 -d $((PHASE + 20)) -f folded -o "$W/tickprobe.folded" 2> /dev/null & tp=$!; name=handle_cpu_sample ;;
    tickprobe-threv) TICKPROBE_PROFILE_EVENTS=thread "$BIN/tickprobe" profile -q --pid "$game" -F 99 -d $((PHASE + 20)) -f folded -o "$W/tickprobe.folded" 2> /dev/null & tp=$!; name=handle_cpu_sample ;;
    tickprobe-user) "$BIN/tickprobe" profile -q --no-kernel --pid "$game" -F 99 -d $((PHASE + 20)) -f folded -o "$W/tickprobe.folded" 2> /dev/null & tp=$!; name=handle_cpu_sample ;;
    bpftrace) bpftrace -e "profile:hz:99 /pid == $game/ { @[ustack(perf, 127)] = count(); }" > "$W/bpftrace.txt" 2> /dev/null & tp=$!; name="*" ;;
    perf) perf record -q -F 99 --call-graph dwarf -p "$game" -o "$W/perf.data" > /dev/null 2>&1 & tp=$! ;;
  esac
  if [ -n "$name" ]; then
    ids=$(wait_prog_running "$W/s0.json" "$name" 30 || true)
    # Only the tracer's own programs: on a shared machine other tools load
    # programs of the same name meanwhile.
    ids=$(own_prog_ids "$tp" "$ids")
  else
    sleep 2
  fi
  sleep 0.5
  prog_snapshot "$W/s1.json"; c0=$(cpu_ns "$game"); a0=$(cpu_ns "$tp")
  sleep "$PHASE"
  prog_snapshot "$W/s2.json"; c1=$(cpu_ns "$game"); a1=$(cpu_ns "$tp")
  [ -n "$ids" ] && cost=$(prog_cost "$W/s1.json" "$W/s2.json" "$ids")
  kill -INT "$tp" 2> /dev/null || true; wait "$tp" 2> /dev/null || true
  kill "$bots" "$game" 2> /dev/null || true; wait "$bots" "$game" 2> /dev/null || true
  local complete
  case $1 in
    tickprobe|tickprobe-user|tickprobe-threv) complete=$(awk '{v=$NF; t+=v; if ($0 ~ /(^|;)(_start|main|start_thread|clone3|clone)(;| )/) c+=v} END {printf "%.1f", t ? 100*c/t : 0}' "$W/tickprobe.folded") ;;
    bpftrace) complete=$(awk '/^@\[/ {st=""; next} /^\]: / {t+=$2; if (st ~ /(^| )(_start|main|start_thread|clone3|clone)\+/) c+=$2; next} {st = st " " $2} END {printf "%.1f", t ? 100*c/t : 0}' "$W/bpftrace.txt") ;;
    perf) complete=$(perf script -i "$W/perf.data" -F ip,sym 2> /dev/null | awk 'NF==0 {if (n) {t++; if (ok) c++}; n=0; ok=0; next} {n++; if ($2 ~ /^(_start|main|start_thread|clone3|clone)$/) ok=1} END {if (n) {t++; if (ok) c++}; printf "%.1f", t ? 100*c/t : 0}') ;;
  esac
  read -r runs avg <<< "$cost"
  python3 - "$c0" "$c1" "$a0" "$a1" "$runs" "$avg" "$complete" <<'PY'
import sys
c0, c1, a0, a1, runs, avg, comp = (float(x) for x in sys.argv[1:8])
server_ns = c1 - c0
prog_pct = 100 * runs * avg / server_ns if server_ns else 0
tool_pct = 100 * (a1 - a0) / (c1 - c0) if c1 > c0 else 0
print(f"{avg:.0f} {prog_pct:.3f} {tool_pct:.2f} {comp:.1f} {runs:.0f} {(c1-c0)/1e9:.2f}")
PY
}

declare -A res
for r in $(seq "$ROUNDS"); do
  for t in ${TRACERS:-tickprobe tickprobe-user tickprobe-threv bpftrace perf}; do
    out=$(phase "$t"); res[$t]+="$out;"
    echo "round $r: $t prog_avg_ns prog%server tool%server complete% runs server_cpu_s = $out" >&2
  done
done
echo
echo "CPU profile at 99 Hz, tickgame + $BOTS bots, $ROUNDS rounds of ${PHASE} s (median):"
printf '%-14s %14s %18s %18s %16s\n' tracer "prog avg (ns)" "prog % server CPU" "tool % server CPU" "stack to main"
for t in ${TRACERS:-tickprobe tickprobe-user tickprobe-threv bpftrace perf}; do
  python3 - "$t" "${res[$t]}" <<'PY'
import statistics, sys
rows = [[float(x) for x in r.split()] for r in sys.argv[2].split(";") if r.strip()]
med = lambda i: statistics.median(r[i] for r in rows)
bpf = sys.argv[1] != "perf"
print(f"{sys.argv[1]:14s} {(f'{med(0):.0f}' if bpf else '-'):>14s} {(f'{med(1):.3f}%' if bpf else '-'):>18s} {med(2):17.2f}% {med(3):15.1f}%")
PY
done
echo "(tickprobe-user: --no-kernel, user stacks only, as the bpftrace script records)"
echo "(tickprobe-threv: TICKPROBE_PROFILE_EVENTS=thread, one event per target thread, inherited: the program never runs on other processes' ticks; biased towards run-slice starts with cpu-clock, see collector/probes/profile.cpp)"
echo "(perf samples through perf_event without BPF; its cost is its own process CPU plus the kernel's copy of 8 KiB of stack per sample)"
