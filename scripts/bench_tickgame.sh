#!/usr/bin/env bash
# How many bots does tickgame sustain at 20 Hz with p99 tick < half the
# budget (25 ms), bots on the same machine?
#
# For each step (a fresh tickgame each time) it runs tickbots for STEP_SECONDS,
# reads the server's /stats at the end of the sending phase, and prints a
# table. The result is the largest step that passed; the search stops at the
# first failing step.
#
#   bash scripts/bench_tickgame.sh                 # steps 100 200 400 800 1600
#   STEPS="300 600" STEP_SECONDS=5 bash scripts/bench_tickgame.sh
#
# Env: BIN_DIR (default build/bin), STEPS, STEP_SECONDS (10), TICK_HZ (20),
#      TLS_FRACTION (0), BOT_THREADS (1), PORT/TLS_PORT/ADMIN_PORT.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN_DIR=${BIN_DIR:-build/bin}
STEPS=${STEPS:-"100 200 400 800 1600"}
STEP_SECONDS=${STEP_SECONDS:-10}
TICK_HZ=${TICK_HZ:-20}
TLS_FRACTION=${TLS_FRACTION:-0}
BOT_THREADS=${BOT_THREADS:-1}
PORT=${PORT:-37777}
TLS_PORT=${TLS_PORT:-37778}
ADMIN_PORT=${ADMIN_PORT:-39100}

for b in tickgame tickbots; do
  [ -x "$BIN_DIR/$b" ] || { echo "bench: $BIN_DIR/$b not found" >&2; echo "hint: bash scripts/build.sh" >&2; exit 1; }
done
command -v jq >/dev/null || { echo "bench: jq not found" >&2; echo "hint: bash scripts/bootstrap.sh" >&2; exit 1; }

budget_ns=$((1000000000 / TICK_HZ))
limit_ns=$((budget_ns / 2))
tmp=$(mktemp -d)
server_pid=""
cleanup() { [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$tmp"; }
trap cleanup EXIT

wait_port() {
  for _ in $(seq 100); do
    curl -sf "http://127.0.0.1:$1/healthz" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  return 1
}

echo "tickgame capacity: ${TICK_HZ} Hz, pass = p99 tick < $((limit_ns / 1000000)) ms and every bot connected; ${STEP_SECONDS}s per step; $(nproc) cores"
printf "%-6s %-6s %-9s %-9s %-9s %-11s %-10s %-10s %s\n" bots conn p50_ms p99_ms max_ms over_budget rtt_p99_ms srv_cpu_% result
best=0
for n in $STEPS; do
  "$BIN_DIR/tickgame" --port "$PORT" --tls-port "$TLS_PORT" --admin-port "$ADMIN_PORT" --tick-hz "$TICK_HZ" \
    >"$tmp/server.out" 2>"$tmp/server.err" &
  server_pid=$!
  wait_port "$ADMIN_PORT" || { echo "bench: tickgame did not start" >&2; cat "$tmp/server.err" >&2; exit 1; }
  cpu0=$(awk '{print $14 + $15}' "/proc/$server_pid/stat")
  "$BIN_DIR/tickbots" --port "$PORT" --tls-port "$TLS_PORT" --clients "$n" --tls-fraction "$TLS_FRACTION" \
    --threads "$BOT_THREADS" --duration "$STEP_SECONDS" --tick-hz "$TICK_HZ" --drain-timeout 5 >"$tmp/bots.json" 2>"$tmp/bots.err" &
  bots_pid=$!
  sleep "$STEP_SECONDS"  # stats at the end of the sending phase
  curl -sf "http://127.0.0.1:$ADMIN_PORT/stats" >"$tmp/stats.json"
  cpu1=$(awk '{print $14 + $15}' "/proc/$server_pid/stat")
  wait "$bots_pid" || true
  kill "$server_pid"; wait "$server_pid" 2>/dev/null || true; server_pid=""
  hz=$(getconf CLK_TCK)
  cpu_pct=$(( (cpu1 - cpu0) * 100 / hz / STEP_SECONDS ))
  p50=$(jq '.tick.duration_ns.p50' "$tmp/stats.json")
  p99=$(jq '.tick.duration_ns.p99' "$tmp/stats.json")
  max=$(jq '.tick.duration_ns.max' "$tmp/stats.json")
  over=$(jq '.tick.over_budget' "$tmp/stats.json")
  conn=$(jq '.connections.established' "$tmp/bots.json" 2>/dev/null || echo 0)
  rtt=$(jq '.rtt_us.p99' "$tmp/bots.json" 2>/dev/null || echo 0)
  result=pass
  if [ "$p99" -ge "$limit_ns" ] || [ "$conn" -ne "$n" ]; then result=FAIL; fi
  printf "%-6s %-6s %-9s %-9s %-9s %-11s %-10s %-10s %s\n" "$n" "$conn" \
    "$(awk "BEGIN{printf \"%.2f\", $p50/1e6}")" "$(awk "BEGIN{printf \"%.2f\", $p99/1e6}")" \
    "$(awk "BEGIN{printf \"%.2f\", $max/1e6}")" "$over" "$(awk "BEGIN{printf \"%.2f\", $rtt/1e3}")" "$cpu_pct" "$result"
  [ "$result" = pass ] || break
  best=$n
  sleep 1
done
echo "result: tickgame sustains ${best} bots at ${TICK_HZ} Hz with p99 tick < $((limit_ns / 1000000)) ms (bots on the same machine)"
