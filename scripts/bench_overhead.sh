#!/usr/bin/env bash
# Overhead of tickprobe on tickgame, measured side by side in one run.
#
# Phases alternate A (no tracing) and B (tickprobe profile at 99 Hz), each
# with a fresh tickgame under the same bot load, so the server's p99 window
# covers one phase only. Reported: tick p50/p99, server CPU per tick, and
# frame throughput, as B/A ratios. A final phase runs `tickprobe agent`
# (CPU + off-CPU) and reports its own CPU, RSS and BPF map memory.
#
# usage: scripts/bench_overhead.sh [BOTS=200] [ROUNDS=2] [PHASE_SECONDS=12]
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=build/bin
BOTS=${1:-200}; ROUNDS=${2:-2}; PHASE=${3:-12}; WARM=3
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
HZ=$(getconf CLK_TCK)

run_phase() {  # $1 = mode (base|profile|agent); prints "p50 p99 cpu_ms_per_tick frames_per_s [agent stats]"
  local mode=$1 port admin game bots tp="" t0 t1 s0 s1 c0 c1
  port=$(free_port); admin=$(free_port)
  "$BIN/tickgame" --port "$port" --admin-port "$admin" --duration $((PHASE + WARM + 5)) > /dev/null 2>&1 &
  game=$!
  for _ in $(seq 50); do curl -sf "http://127.0.0.1:$admin/healthz" > /dev/null && break; sleep 0.1; done
  "$BIN/tickbots" --port "$port" --clients "$BOTS" --duration $((PHASE + WARM + 2)) > /dev/null 2>&1 &
  bots=$!
  sleep "$WARM"
  local aport=""
  case $mode in
    profile) "$BIN/tickprobe" profile -q --pid "$game" -d "$PHASE" -F 99 -o /dev/null -f folded & tp=$! ;;
    agent) aport=$(free_port); "$BIN/tickprobe" agent -q --pid "$game" --listen 127.0.0.1:$aport & tp=$! ;;
  esac
  sleep 1  # attach time is not part of the steady state
  s0=$(curl -sf "http://127.0.0.1:$admin/stats"); c0=$(cpu_ticks $game)
  local a0=0; [ -n "$tp" ] && a0=$(cpu_ticks $tp)
  sleep $((PHASE - 2))
  s1=$(curl -sf "http://127.0.0.1:$admin/stats"); c1=$(cpu_ticks $game)
  local a1=0 extra=""
  if [ -n "$tp" ]; then a1=$(cpu_ticks $tp); fi
  if [ "$mode" = agent ]; then
    local m; m=$(curl -sf "http://127.0.0.1:$aport/metrics")
    extra="$(echo "$m" | awk '/^process_resident_memory_bytes/{r=$2} /^tickprobe_bpf_map_bytes/{b=$2} END{printf "%.1f %.1f", r/1048576, b/1048576}')"
  fi
  [ -n "$tp" ] && { kill "$tp" 2>/dev/null || true; wait "$tp" 2>/dev/null || true; }
  kill "$bots" "$game" 2>/dev/null || true; wait "$bots" "$game" 2>/dev/null || true
  python3 - "$s0" "$s1" "$c0" "$c1" "$HZ" "$a0" "$a1" "$extra" <<'PY'
import json, sys
s0, s1 = json.loads(sys.argv[1]), json.loads(sys.argv[2])
c0, c1, hz, a0, a1 = (float(x) for x in sys.argv[3:8])
ticks = s1["tick"]["count"] - s0["tick"]["count"]
dt = (s1["uptime_ns"] - s0["uptime_ns"]) / 1e9
frames = (s1["net"]["frames_in"] + s1["net"]["frames_out"]) - (s0["net"]["frames_in"] + s0["net"]["frames_out"])
d = s1["tick"]["duration_ns"]
print(f'{d["p50"]/1e6:.3f} {d["p99"]/1e6:.3f} {(c1-c0)/hz*1000/max(ticks,1):.3f} {frames/dt:.0f} {(a1-a0)/hz/dt*100:.2f} {sys.argv[8]}')
PY
}

echo "tickgame overhead benchmark: $BOTS bots, $ROUNDS rounds of A/B, ${PHASE}s phases ($(nproc) CPUs)"
printf "%-8s %9s %9s %14s %10s %8s\n" phase p50_ms p99_ms cpu_ms/tick frames/s tool_cpu%
declare -a A B
for r in $(seq "$ROUNDS"); do
  a=$(run_phase base); printf "%-8s %9s %9s %14s %10s %8s\n" base $a | cut -c1-66; A+=("$a")
  b=$(run_phase profile); printf "%-8s %9s %9s %14s %10s %8s\n" profile $b | cut -c1-66; B+=("$b")
done
ag=$(run_phase agent)
python3 - "${A[*]}" "${B[*]}" "$ag" <<'PY'
import sys
def rows(s):
    v = [float(x) for x in s.split()]
    return [v[i:i+5] for i in range(0, len(v), 5)]
A, B = rows(sys.argv[1]), rows(sys.argv[2])
mean = lambda rs, i: sum(r[i] for r in rs) / len(rs)
print()
print("ratio B/A (tickprobe profile -F 99 vs untraced; 1.00 = no cost):")
for name, i in (("tick p50", 0), ("tick p99", 1), ("server CPU per tick", 2), ("throughput (frames/s)", 3)):
    print(f"  {name:24s} {mean(B, i) / mean(A, i):.3f}   ({mean(A, i):.3f} -> {mean(B, i):.3f})")
print(f"  tickprobe profile CPU     {mean(B, 4):.2f}% of one core")
ag = sys.argv[3].split()
print()
print("default agent (CPU + off-CPU at 99 Hz, coroutines, ticks, pauses, hitches) on the same load:")
print(f"  tick p99 {float(ag[1]):.3f} ms, server CPU/tick {float(ag[2]):.3f} ms "
      f"({float(ag[2]) / mean(A, 2):.3f} x untraced)")
print(f"  throughput {float(ag[3]):.0f} frames/s ({float(ag[3]) / mean(A, 3):.3f} x untraced)")
print(f"  agent CPU {float(ag[4]):.2f}% of one core, RSS {ag[5]} MiB, BPF maps {ag[6]} MiB")
PY
