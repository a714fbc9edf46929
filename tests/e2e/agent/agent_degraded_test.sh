#!/usr/bin/env bash
# e2e: no silent loss of features, and no log floods (issues 11.3, 11.4).
#  1. a target without the runtime's USDT probes (cpu_fixture): the runtime
#     family's failure is logged once at default verbosity with its reason,
#     counted in tickprobe_attach_failures_total{family,reason}, and /healthz
#     answers 200 "degraded: runtime ...";
#  2. if no family can attach to any matching process, the agent fails at
#     start (exit 1, one error line and a hint);
#  3. an exec storm (thousands of short processes matching --comm) prints
#     a handful of lines plus "... and N more like this" summaries, counted in
#     tickprobe_log_messages_suppressed_total.
set -euo pipefail
BIN=${1:?usage: agent_degraded_test.sh BIN_DIR}
source "$(dirname "$0")/../lib.sh"
e2e_init

"$BIN/cpu_fixture" 120 > /dev/null & PIDS+=($!); FIX=$!
start_agent "$BIN" --pid "$FIX"
health=$(curl -sf "$AGENT_URL/healthz")
case "$health" in "degraded: runtime family not attached (no_runtime_probes x1)") ;;
  *) fail "healthz: '$health'";; esac
curl -sf "$AGENT_URL/metrics" > "$WORK/m.txt"
grep -q '^tickprobe_attach_failures_total{family="runtime",reason="no_runtime_probes"} 1$' "$WORK/m.txt" \
  || { grep attach_failures "$WORK/m.txt"; fail "attach failure not counted"; }
[ "$(grep -c "process $FIX (.*): runtime family not attached (no_runtime_probes)" "$WORK/agent.log")" -eq 1 ] \
  || { cat "$WORK/agent.log"; fail "attach failure not logged exactly once"; }
echo "ok: runtime attach failure logged once, counted, /healthz: $health"

rc=0
"$BIN/tickprobe" agent --pid "$FIX" --disable profile --disable offcpu --disable tls --disable growth --listen "127.0.0.1:$(free_port)" \
  > /dev/null 2> "$WORK/err" || rc=$?
[ "$rc" -eq 1 ] || { cat "$WORK/err"; fail "nothing attachable: exit $rc, want 1"; }
grep -q "^error: nothing could be attached to any of the 1 matching process(es)" "$WORK/err" && grep -q "^hint: " "$WORK/err" \
  || { cat "$WORK/err"; fail "nothing attachable: message"; }
echo "ok: nothing attachable fails at start: $(grep '^error' "$WORK/err")"

# Exec storm: every `true` matches, most are gone before they can be traced.
cp /bin/true "$WORK/stormy"
start_agent "$BIN" --comm stormy
for _ in $(seq 3000); do "$WORK/stormy"; done
sleep 1
curl -sf "$AGENT_URL/metrics" > "$WORK/m.txt"
supp=$(awk '$1 == "tickprobe_log_messages_suppressed_total" {print $2}' "$WORK/m.txt")
lines=$(wc -l < "$WORK/agent.log")
echo "measured: exec storm of 3000 processes: $lines log lines, $supp messages suppressed"
[ "$lines" -le 100 ] || { head -50 "$WORK/agent.log"; fail "exec storm printed $lines lines"; }
python3 -c "import sys; sys.exit(0 if float('$supp') > 0 else 1)" || { cat "$WORK/agent.log"; fail "nothing suppressed"; }
# The summary line shows up once its window closes (10 s).
ok=""
for _ in $(seq 30); do grep -q "more like this in the last 10 s" "$WORK/agent.log" && { ok=1; break; }; sleep 0.5; done
[ -n "$ok" ] || { cat "$WORK/agent.log"; fail "no summary line"; }
echo "ok: $(grep -m1 'more like this' "$WORK/agent.log")"
