#!/usr/bin/env bash
# Off-CPU tracing cost, tickprobe vs libbpf-tools offcputime, in one run.
#
# Workload: pipe_pingpong (tests/fixtures/bench), two threads ping-pong one
# byte over pipes: every round trip is two blocks and two wake-ups, the
# worst case for a sched_switch tracer. Phases, each ROUNDS times, in turn:
#   untraced | offcputime -p PID | tickprobe offcpu --pid PID
# Each phase counts round trips only once its tracer runs (the fixture's
# window opens on SIGUSR1 after the tracer's sched_switch program has run).
# Printed: median round trips/s and the ratio to untraced; the sched_switch
# program's runs and average cost (bpf_stats) over the window; the share of
# off-CPU time whose stack reaches main or a thread start (last round).
#
# usage: scripts/bench_offcpu.sh [ROUNDS=4] [PHASE_SECONDS=5]
#   TICKPROBE_ARGS="..."  extra options for tickprobe offcpu
#   PINGPONG_ARGS="..."   extra options for the fixture (e.g. --two-callers)
#   CPUS=P,Q              the fixture's ping thread on CPU P, pong on CPU Q
#                         (default 1,1; CPUS= for none). On one CPU every
#                         round trip is two context switches on a busy CPU,
#                         so the rate measures the tracer's CPU cost per
#                         switch. On two (0,1) every wake-up crosses CPUs
#                         and the rate measures the tracer's work on the
#                         wake-up path (switch-in, and a switch-out the
#                         waker must wait for). Unpinned, the scheduler
#                         moves the pair between the two modes (rates
#                         differ 2x), so phases are not comparable.
#   IDLE_SPIN=1           a SCHED_IDLE spinner on every CPU for the run, so
#                         no CPU halts (a halted vCPU's wake-up costs more
#                         than any tracer; with two CPUs it dominates)
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/bench_lib.sh
BIN=${BIN:-build/bin}
ROUNDS=${1:-4}; PHASE=${2:-5}
CPUS=${CPUS-1,1}
OFFCPUTIME=${OFFCPUTIME:-$(command -v offcputime || echo /usr/sbin/offcputime)}
[ -x "$BIN/pipe_pingpong" ] && [ -x "$BIN/tickprobe" ] || { echo "build first: scripts/build.sh" >&2; exit 1; }
[ -x "$OFFCPUTIME" ] || { echo "offcputime not found" >&2; echo "hint: scripts/bootstrap.sh installs libbpf-tools" >&2; exit 1; }
W=$(mktemp -d)
bpf_stats_on
SPINNERS=()
if [ -n "${IDLE_SPIN:-}" ]; then
  for c in $(seq 0 $(($(nproc) - 1))); do
    taskset -c "$c" chrt -i 0 sh -c 'while :; do :; done' & SPINNERS+=($!)
  done
fi
trap 'bpf_stats_restore; for p in "${SPINNERS[@]}"; do kill "$p" 2> /dev/null; done; [ -n "${KEEP:-}" ] && echo "kept $W" >&2 || rm -rf "$W"' EXIT

phase() {  # $1 = base|offcputime|tickprobe -> "rate runs avg_ns"
  local pp tp="" ids="" cost="0 0"
  "$BIN/pipe_pingpong" --window ${CPUS:+--cpus "$CPUS"} ${PINGPONG_ARGS:-} > "$W/pp.out" & pp=$!
  sleep 0.3
  prog_snapshot "$W/s0.json"
  case $1 in
    offcputime)
      "$OFFCPUTIME" -p "$pp" 600 > "$W/offcputime.txt" 2> /dev/null & tp=$!
      ids=$(wait_prog_running "$W/s0.json" sched_switch) ;;
    tickprobe)
      "$BIN/tickprobe" offcpu -q --pid "$pp" -d 600 ${TICKPROBE_ARGS:-} -o "$W/tickprobe.folded" 2> "$W/tp.err" & tp=$!
      ids=$(wait_prog_running "$W/s0.json" handle_sched_switch_btf) ;;
  esac
  sleep 0.5
  prog_snapshot "$W/s1.json"
  kill -USR1 "$pp"; sleep "$PHASE"; kill -USR2 "$pp"
  prog_snapshot "$W/s2.json"
  wait "$pp" || true
  if [ -n "$tp" ]; then
    cost=$(prog_cost "$W/s1.json" "$W/s2.json" "$ids")
    kill -INT "$tp" 2> /dev/null || true; wait "$tp" 2> /dev/null || true
  fi
  # offcputime prints frames leaf first, then "- comm (pid)", then the us.
  [ "$1" = offcputime ] && to_folded "$W/offcputime.txt" > "$W/offcputime.folded"
  echo "$(awk '/round_trips_per_s/ {print $2}' "$W/pp.out") $cost"
}

to_folded() {  # offcputime's text output -> folded "root;...;leaf ns"
  python3 - "$1" <<'PY'
import sys
frames = []
for line in open(sys.argv[1]):
    t = line.strip()
    if not t:
        frames = []
    elif t.startswith("- "):
        pass
    elif t.isdigit() and frames:
        print(";".join(reversed(frames)), int(t) * 1000)
        frames = []
    else:
        frames.append(t.split()[0])
PY
}

declare -A rate runs cost
for r in $(seq "$ROUNDS"); do
  for p in base offcputime tickprobe; do
    read -r a b c < <(phase "$p")
    rate[$p]+="$a "; runs[$p]+="$b "; cost[$p]+="$c "
    echo "round $r: $p ${a}/s${b:+, sched_switch prog $b runs avg ${c} ns}" >&2
  done
done

# Stack completeness of the last round: share of off-CPU time (ns) whose
# stack reaches main or a thread start.
complete() {  # folded file -> percent
  [ -s "$1" ] || { echo "n/a"; return; }
  awk '{v=$NF; t+=v; if ($0 ~ /(^|;)(main|start_thread|clone3)(;| )/) c+=v} END {printf "%.1f%%", t ? 100*c/t : 0}' "$1"
}
# The caller of read() in the ping thread: ping_wait (a frame-pointer walk
# through libc's read, which has none, loses it).
caller_kept() {
  [ -s "$1" ] || { echo "n/a"; return; }
  awk '/ping_via_a/ || /;main;/ {v=$NF; if ($0 ~ /;read[;\s]/ || $0 ~ /;read$/ || $0 ~ /;read /) {t+=v; if ($0 ~ /ping_wait;read/) c+=v}} END {printf "%.1f%%", t ? 100*c/t : 0}' "$1"
}

B=$(echo "${rate[base]}" | tr ' ' '\n' | grep . | median)
echo
printf '%-12s %14s %7s %14s %12s %16s\n' phase "round trips/s" ratio "prog avg (ns)" "to main" "read<-ping_wait"
for p in base offcputime tickprobe; do
  R=$(echo "${rate[$p]}" | tr ' ' '\n' | grep . | median)
  C=$(echo "${cost[$p]}" | tr ' ' '\n' | grep . | median)
  if [ "$p" = base ]; then comp="-"; kept="-"; C="-"; else comp=$(complete "$W/$p.folded"); kept=$(caller_kept "$W/$p.folded"); fi
  printf '%-12s %14.0f %7.3f %14s %12s %16s\n' "$p" "$R" "$(echo "$R $B" | awk '{print $1/$2}')" "$C" "$comp" "$kept"
done
echo "(median of $ROUNDS rounds of ${PHASE} s; fixture threads on CPUs ${CPUS:-unpinned}${IDLE_SPIN:+, SCHED_IDLE spinners on every CPU}; prog avg = the sched_switch program's run_time_ns/run_cnt over the window, all CPUs and tasks)"
