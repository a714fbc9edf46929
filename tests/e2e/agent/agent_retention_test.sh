#!/usr/bin/env bash
# e2e: series of exited processes do not pile up (issue 11.2).
# 40 short-lived tickgame processes (pairs, 1 s each) under an agent with
# --forget-exited-after 3s:
#  1. while they churn, per-process series exist only for live ones and
#     the recently exited (tickprobe_tracked_processes{state="exited"} is
#     bounded by the retention);
#  2. a few seconds after the last exit, no series of any exited pid remains
#     and /metrics is back to about its size with one live target;
#  3. the all-process totals (tickprobe_targets_ticks_total,
#     tickprobe_targets_cpu_seconds_total) never decrease across scrapes.
set -euo pipefail
BIN=${1:?usage: agent_retention_test.sh BIN_DIR}
source "$(dirname "$0")/../lib.sh"
e2e_init

game() { exec "$BIN/tickgame" --port 0 --tls-port 0 --admin-port 0 "$@" > /dev/null 2>&1; }
start_agent "$BIN" --exe "$(readlink -f "$BIN/tickgame")" --forget-exited-after 3s
game --duration 120 & PIDS+=($!); LIVE=$!
# Wait until the long-lived target has runtime series (its ticks are seen).
for _ in $(seq 50); do
  curl -sf "$AGENT_URL/metrics" | grep -q "tickprobe_ticks_total{comm=\"[^\"]*\",pid=\"$LIVE\"}" && break
  sleep 0.2
done
sleep 2
BASE=$(curl -sf "$AGENT_URL/metrics" | wc -l)
echo "measured: /metrics has $BASE lines with one live target"

value() { awk -v n="$2" '$1 == n {print $2}' "$1"; }
prev_ticks=0; prev_cpu=0; max_lines=0; short=()
check_monotonic() {
  curl -sf "$AGENT_URL/metrics" > "$WORK/m.txt"
  local t c l
  t=$(value "$WORK/m.txt" tickprobe_targets_ticks_total)
  c=$(value "$WORK/m.txt" tickprobe_targets_cpu_seconds_total)
  l=$(wc -l < "$WORK/m.txt")
  [ "$l" -gt "$max_lines" ] && max_lines=$l
  python3 -c "import sys; sys.exit(0 if $t >= $prev_ticks and $c >= $prev_cpu else 1)" \
    || fail "all-process totals decreased: ticks $prev_ticks -> $t, cpu $prev_cpu -> $c"
  prev_ticks=$t; prev_cpu=$c
}
for i in $(seq 20); do
  game --duration 1 & a=$!
  game --duration 1 & b=$!
  short+=("$a" "$b")
  wait "$a" "$b" || true
  check_monotonic
done
echo "measured: at most $max_lines lines while 40 short-lived targets came and went"

# After the retention (3 s) plus a drain, no exited pid has a series left.
gone=""
for _ in $(seq 40); do
  check_monotonic
  left=0
  for p in "${short[@]}"; do grep -q "pid=\"$p\"" "$WORK/m.txt" && left=$((left + 1)); done
  [ "$left" -eq 0 ] && { gone=1; break; }
  sleep 0.5
done
[ -n "$gone" ] || fail "$left exited targets still have series after the retention time"
END=$(wc -l < "$WORK/m.txt")
echo "measured: /metrics has $END lines after 40 exits (was $BASE with the live target alone)"
[ "$END" -le $((BASE + 40)) ] || fail "/metrics grew from $BASE to $END lines"
# Every target that was traced and went away was forgotten (a process too
# short-lived to be traced at all is not a failure here).
forgot=$(value "$WORK/m.txt" tickprobe_forgotten_processes_total)
detached=$(value "$WORK/m.txt" tickprobe_targets_detached_total)
[ "$forgot" = "$detached" ] && [ "$forgot" -ge 10 ] || fail "forgotten $forgot of $detached detached targets"
echo "measured: $forgot exited targets forgotten"

grep -q '^tickprobe_exited_process_retention_seconds 3$' "$WORK/m.txt" || fail "retention gauge"
grep -q "tickprobe_ticks_total{comm=\"[^\"]*\",pid=\"$LIVE\"}" "$WORK/m.txt" || fail "live target lost its series"
python3 -c "import sys; sys.exit(0 if $prev_ticks > 0 else 1)" || fail "no ticks counted"
echo "ok: exited targets forgotten after 3 s, totals monotonic (ticks $prev_ticks, cpu ${prev_cpu}s)"
